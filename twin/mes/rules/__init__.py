"""The business rules of the embedded MES, one function per interface of section 2.

``RULES`` maps an operation id of the profile to its rule. ``ANYWHERE`` are the interfaces whose rules
do not depend on where the equipment stands, so an equipment code the line does not know is accepted
for them (the operator, presence, state, alarm, time, parameters, tool life, inventory, mixing at a
feeding port, which names its mixer, trays before they enter an equipment); every other interface
needs a station of the line, and one whose station list (or the spec's processes) has it.
"""

from __future__ import annotations

from collections.abc import Callable

from twin.mes.rules import codes, common, flow, materials, setup, sorting, trays
from twin.mes.rules.base import CODES, Refused, RuleAnswer, RuleCall

Rule = Callable[[RuleCall], RuleAnswer]

RULES: dict[str, Rule] = {
    "OperatorLogin": common.operator_login,
    "Heartbeat": common.heartbeat,
    "State": common.state,
    "Alarm": common.alarm,
    "TimeSynch": common.time_synch,
    "CcdFileUploadComplete": common.ccd_upload,
    "GetRecipeList": setup.get_recipe_list,
    "GetRecipeDetail": setup.get_recipe_detail,
    "Recipe": setup.verify_recipe,
    "Feeding": materials.feeding,
    "HalfFeeding": materials.half_feeding,
    "AgvUpMaterial": common.agv,
    "AgvDownMaterial": common.agv,
    "FormulaListGet": setup.formula_list,
    "FormulaDetailGet": setup.formula_detail,
    "FormulaVersionExamine": setup.formula_examine,
    "ConsumeEquBeforeCheck": materials.consume_before_check,
    "ConsumeEqu": materials.consume,
    "FeedingCompleted": materials.feeding_completed,
    "OutputEqu": materials.output_batch,
    "BatchMove": materials.batch_move,
    "ConsumeInNonProductionEqu": materials.non_production,
    "GenerateSfc": codes.generate_sfc,
    "OutboundMetersReport": codes.outbound_meters,
    "CcdGetBarcode": codes.ccd_get_barcode,
    "EquipmentProcessParam": common.process_param,
    "Inbound": flow.inbound,
    "Outbound": flow.outbound,
    "BoundOutbound": flow.outbound,
    "InboundMore": flow.inbound_more,
    "OutboundMore": flow.outbound_more,
    "OutboundMultPolar": flow.outbound_mult_polar,
    "OutboundSfcPolar": flow.outbound_sfc_polar,
    "GenerateCellSfc": codes.generate_cell_sfc,
    "FillingData": flow.filling_data,
    "EmptyContainerCheck": trays.empty_check,
    "ContainerSfcCheck": trays.cell_check,
    "BindContainer": trays.bind,
    "UnBindContainer": trays.unbind,
    "ContainerNgReport": trays.ng_report,
    "InboundInContainer": trays.tray_in,
    "OutboundInContainer": trays.tray_out,
    "ToolLife": common.tool_life,
    "ProductParam": trays.product_param,
    "CollingPolar": flow.colling_polar,
    "SortingRule": sorting.sorting_rule,
    "ProductParamSameMultSfc": trays.product_param_same,
    "MaterialInventory": materials.material_inventory,
    "ToolBindMaterialAsync": materials.tool_bind,
    "InboundBindJzSingleAsync": flow.inbound,
    "GetSfcInfo": sorting.sfc_info,
    "SortingUnBind": sorting.sorting_unbind,
    "SortingOutbound": sorting.sorting_outbound,
    "EquFileUpload": common.file_upload,
    "Receive24DxCode": codes.receive_cell_codes,
    "OutboundForCoverplateBind": flow.outbound_coverplate_bind,
    "GetInjectionVolume": flow.injection_volume,
    "OutboundForCellBindTopCover": flow.outbound_cell_top_cover,
}

ANYWHERE = frozenset(
    {
        "OperatorLogin",
        "Heartbeat",
        "State",
        "Alarm",
        "TimeSynch",
        "EquipmentProcessParam",
        "ToolLife",
        "AgvUpMaterial",
        "AgvDownMaterial",
        "MaterialInventory",
        "ToolBindMaterialAsync",
        "ConsumeEquBeforeCheck",
        "ConsumeEqu",
        "ConsumeInNonProductionEqu",
        "FeedingCompleted",
        "BatchMove",
        "CcdFileUploadComplete",
        "EquFileUpload",
        "EmptyContainerCheck",
        "ContainerSfcCheck",
        "BindContainer",
        "UnBindContainer",
        "ContainerNgReport",
        "ProductParam",
        "ProductParamSameMultSfc",
        "GetSfcInfo",
        "GetInjectionVolume",
    }
)

__all__ = ["ANYWHERE", "CODES", "RULES", "Refused", "Rule", "RuleAnswer", "RuleCall"]
