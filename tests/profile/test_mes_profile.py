"""The MES profile: complete, valid OpenAPI, and every spec example accounted for."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest
import yaml
from openapi_spec_validator import validate

from tests.conftest import MES_PROFILE
from twin.profile import Operation, Profile, load_profile

PROFILE = load_profile(MES_PROFILE)
SECTIONS = [f"2.{i}" for i in range(1, 59)] + ["3.1", "3.2"]
OPS = {op.section: op for op in PROFILE}
PLACEHOLDER = re.compile(r'got ("string"|0|"0")$')


def test_the_document_passes_the_openapi_validator() -> None:
    validate(copy.deepcopy(yaml.safe_load(MES_PROFILE.read_text(encoding="utf-8"))))


def test_all_58_mes_interfaces_and_both_equipment_side_ones_are_there() -> None:
    assert sorted(OPS, key=lambda s: tuple(map(int, s.split(".")))) == SECTIONS
    assert len(PROFILE) == 60
    equipment_side = {op.section for op in PROFILE if op.direction == "mes-to-equipment"}
    assert equipment_side == {"3.1", "3.2"}


@pytest.mark.parametrize("section", SECTIONS)
def test_operation_carries_its_spec_metadata(section: str) -> None:
    op = OPS[section]
    assert op.name_cn and op.summary and op.description
    assert op.trigger.get("kind") in {"periodic", "on-change", "on-event", "manual"}
    assert op.trigger.get("text")
    if op.trigger["kind"] == "periodic":
        assert op.trigger.get("period_s", 0) > 0
    assert op.processes
    assert op.method == "post" and " " not in op.path
    for c in op.contradictions:
        assert {"id", "kind", "fields", "table", "example", "choice", "why"} <= set(c)


def _uncovered(op: Operation, found: list) -> list[str]:
    """Issues of a spec example not explained by a recorded contradiction nor a Swagger placeholder."""
    covered = {str(f).lower() for c in op.contradictions for f in c.get("fields") or ()}
    out = []
    for issue in found:
        where = re.sub(r"\[\d+\]", "[]", issue.path).lower()
        if where in covered or PLACEHOLDER.search(issue.message):
            continue
        out.append(str(issue))
    return out


@pytest.mark.parametrize("section", SECTIONS)
def test_request_examples(section: str) -> None:
    op = OPS[section]
    assert "realistic" in op.request_examples
    assert op.check_request(op.request_examples["realistic"])[1] == []
    if "spec" in op.request_examples:
        assert _uncovered(op, op.check_request(op.request_examples["spec"])[1]) == []


@pytest.mark.parametrize("section", SECTIONS)
def test_response_examples(section: str) -> None:
    op = OPS[section]
    for status, examples in op.response_examples.items():
        for name, value in examples.items():
            found = op.check_response(value, status)[1]
            if name == "realistic":
                assert found == [], f"{status} {name}"
            else:
                assert _uncovered(op, found) == [], f"{status} {name}"


def test_contradictions_are_recorded_by_the_dozen() -> None:
    per_op = sum(len(op.contradictions) for op in PROFILE)
    assert len(PROFILE.contradictions) >= 5
    assert per_op >= 48
    kinds = {c["kind"] for op in PROFILE for c in op.contradictions}
    assert {"response-shape", "path", "field-name"} <= kinds


def test_stray_spaces_of_2_51_to_2_53_are_removed_and_recorded() -> None:
    for section, name in (("2.51", "GetSfcInfo"), ("2.52", "SortingUnBind"), ("2.53", "SortingOutbound")):
        op = OPS[section]
        assert op.path == f"/EquipmentService/api/v1/{name}"
        assert any(c["kind"] == "path" for c in op.contradictions), section


def test_outbound_serves_2_28_and_2_50_on_one_path() -> None:
    ops = PROFILE.operations_at("/EquipmentService/api/v1/Outbound")
    assert sorted(op.section for op in ops) == ["2.28", "2.50"]
    bound = OPS["2.50"].request_examples["realistic"]
    plain = OPS["2.28"].request_examples["realistic"]
    assert PROFILE.match("/EquipmentService/api/v1/Outbound", bound)[0].section == "2.50"
    assert PROFILE.match("/EquipmentService/api/v1/Outbound", plain)[0].section == "2.28"


def test_field_name_contradictions_are_accepted_through_aliases() -> None:
    op = OPS["2.33"]
    example = op.request_examples["spec"]
    data, _ = op.check_request(example)
    assert "productCode" not in {k for k in data}


def test_a_heartbeat_built_for_an_equipment_is_valid_camel_case(mes: Profile) -> None:
    body = mes.build_request(
        "Heartbeat",
        {"IsOnline": True},
        validate=True,
        context={
            "now": datetime(2026, 11, 23, tzinfo=UTC),
            "equipment_code": "A02-WIND-01",
            "resource_code": "R-A02-WIND-01",
        },
    )
    assert body == {
        "isOnline": True,
        "equipmentCode": "A02-WIND-01",
        "resourceCode": "R-A02-WIND-01",
        "localTime": "2026-11-23T00:00:00.000Z",
    }


def test_every_interface_but_login_and_section_3_needs_the_token() -> None:
    open_ops = {op.section for op in PROFILE if not op.needs_auth}
    assert open_ops == {"2.1", "3.1", "3.2"}
