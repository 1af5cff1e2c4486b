"""Which MES interfaces each archetype of equipment calls, and the options it takes.

The line file lists the interfaces of every station; this table is how the loader checks that list against
the behaviour that will run: every interface an archetype must call is listed, every listed interface is
called by someone, and where the spec offers alternatives (2.44 or 2.28 for jelly rolls) exactly one is
chosen. Kept apart from the behaviour code so that loading a line file does not import SimPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Called by the shared equipment base when the station (or the line's common list) names them.
BASE = (
    "OperatorLogin",
    "Heartbeat",
    "State",
    "Alarm",
    "TimeSynch",
    "GetRecipeList",
    "GetRecipeDetail",
    "Recipe",
    "EquipmentProcessParam",
    "ToolLife",
)
# Loading interfaces: raw material with 2.10 (stations that ``consume:`` lots), semi-finished rolls and batches
# with 2.11, and the AGV calls of the roll-to-roll stations.
_FEED = ("Feeding",)
_ROLLS = ("Feeding", "HalfFeeding", "AgvUpMaterial", "AgvDownMaterial")


@dataclass(frozen=True, slots=True)
class Role:
    """An archetype: what it needs, what it may call, which alternatives it chooses from, its options."""

    name: str
    doc: str
    needs: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def callable(self) -> set[str]:
        return {*BASE, *self.needs, *self.may, *(n for group in self.one_of for n in group)}


_FILES = ("CcdFileUploadComplete", "EquFileUpload")

ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "warehouse",
            "receives raw-material lots into MES inventory, binds them to AGV tooling, calls the AGV",
            needs=("MaterialInventory",),
            may=("ToolBindMaterialAsync", "AgvUpMaterial"),
            options={"lots_per_delivery": 2, "tooling_slots": 4},
        ),
        Role(
            "mixing",
            "glue making / slurry mixing: formula, per-bag checks, feeding, batch code from the MES, transfer",
            needs=(
                "FormulaListGet",
                "FormulaDetailGet",
                "FormulaVersionExamine",
                "ConsumeEquBeforeCheck",
                "ConsumeEqu",
                "OutputEqu",
            ),
            may=("FeedingCompleted", "BatchMove", "ConsumeInNonProductionEqu"),
            options={
                "batch_kg": 1500.0,
                "glue_kg": 400.0,
                "glue_lanes": [],  # lanes whose formula takes glue from the input (empty: every lane)
                "wash_every": 4,
                "wash_kg": 120.0,
                "kind": "slurry",
            },
        ),
        Role(
            "coating",
            "coats a slurry batch onto foil: one mother roll per cycle, roll code from the MES (2.23, 2.24)",
            needs=("GenerateSfc", "OutboundMetersReport"),
            may=("CcdGetBarcode", *_FILES, *_ROLLS),
            options={
                "roll_m": 4800.0,
                "slurry_kg_per_roll": 400.0,
                "meter_ng_rate": 0.01,
                "ccd_anomaly_rate": 0.02,
                "output_type": "3",
            },
        ),
        Role(
            "converting",
            "rolling + slitting or die cutting: one roll in, `split` rolls out, codes from the MES",
            needs=("GenerateSfc", "OutboundMetersReport"),
            may=(*_FILES, *_ROLLS),
            options={"split": 1, "meter_ng_rate": 0.01, "output_type": "4"},
        ),
        Role(
            "winding",
            "winds a jelly roll from cathode, anode and separator; reports it with 2.44 or 2.28",
            one_of=(("CollingPolar", "Outbound"),),
            may=_ROLLS,
            options={"m_per_unit": 6.0},
        ),
        Role(
            "unit",
            "one unit at a time: inbound, process, outbound with parameters and NG",
            one_of=(
                ("Inbound", "InboundBindJzSingleAsync"),
                ("Outbound", "BoundOutbound", "OutboundForCellBindTopCover"),
            ),
            may=(*_FILES, *_FEED),
            options={"operation_type": "3", "ccd_every": 20, "file_type": 1},
        ),
        Role(
            "pairing",
            "welds two jelly rolls to the adapter and binds them (2.31)",
            needs=("OutboundMultPolar",),
            one_of=(("InboundMore", "Inbound"),),
            may=(*_FILES, *_FEED),
            options={"ccd_every": 20},
        ),
        Role(
            "cell_code",
            "adapter-to-cover welding with the cell code issued by the MES (2.33, 2.32)",
            needs=("GenerateCellSfc", "OutboundSfcPolar"),
            may=("InboundBindJzSingleAsync", *_FILES, *_FEED),
            options={"ccd_every": 20},
        ),
        Role(
            "cover_bind",
            "adapter-to-cover welding that engraves its own 24-digit cell code (2.55) and binds the cover (2.56)",
            needs=("Receive24DxCode", "OutboundForCoverplateBind"),
            may=("InboundBindJzSingleAsync", *_FEED),
            options={},
        ),
        Role(
            "chamber",
            "tray process (baking, pre-formation, formation, OCV): tray life-cycle, slots in parallel",
            needs=("InboundInContainer", "OutboundInContainer"),
            may=(
                "EmptyContainerCheck",
                "ContainerSfcCheck",
                "BindContainer",
                "UnBindContainer",
                "ContainerNgReport",
                "ProductParam",
                "ProductParamSameMultSfc",
            ),
            options={"measure": ""},
        ),
        Role(
            "rack",
            "cells in racks for hours (high-temperature aging): several barcodes in and out at once",
            needs=("InboundMore", "OutboundMore"),
            options={},
        ),
        Role(
            "filling",
            "electrolyte injection: inbound, inject, outbound or top-up data; batch switch on 3.2",
            needs=("Inbound", "Outbound"),
            may=("FillingData", "GetInjectionVolume", *_FEED),
            options={"topup_rate": 0.05, "dose_g": 380.0, "tank_kg": 600.0},
        ),
        Role(
            "sorting",
            "sorting: rules, downgrade info, tray unbinding, grading into grade trays",
            needs=("SortingUnBind", "SortingOutbound"),
            may=("SortingRule", "GetSfcInfo", "ContainerNgReport"),
            options={"grade_tray_size": 24, "grade_timeout_s": 900.0},
        ),
    )
}

# The archetype a station gets when the line file does not name one.
DEFAULT_BY_PROCESS = {
    "all": "warehouse",
    "material_receiving": "warehouse",
    "glue_making": "mixing",
    "slurry_mixing": "mixing",
    "coating": "coating",
    "roll_slitting": "converting",
    "rolling": "converting",
    "slitting": "converting",
    "die_cutting": "converting",
    "winding": "winding",
    "tab_adapter_welding": "pairing",
    "adapter_cover_welding": "cell_code",
    "baking": "chamber",
    "pre_formation": "chamber",
    "formation": "chamber",
    "ocv": "chamber",
    "high_temp_aging": "rack",
    "injection_1": "filling",
    "injection_2": "filling",
    "sorting": "sorting",
}


def role_for(process: str, archetype: str | None) -> Role | None:
    """The role of a station, from its archetype or else its process; None when neither names one."""
    name = archetype or DEFAULT_BY_PROCESS.get(process, "unit")
    return ROLES.get(name)
