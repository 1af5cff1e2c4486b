"""Loading: any OpenAPI 3.x document, variants, building requests, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twin.errors import ProfileError, UnknownOperation
from twin.profile import Profile, format_time, load_profile


def test_operations_by_id_section_and_path(tiny: Profile) -> None:
    report = tiny.operation("Report")
    assert tiny.operation("report") is report
    assert tiny.operation("9.1") is report
    assert tiny.operation("/api/Report") is report
    assert report.needs_auth


def test_unknown_operation_suggests_a_close_name(tiny: Profile) -> None:
    with pytest.raises(UnknownOperation, match="did you mean Report"):
        tiny.operation("Reprt")


def test_variants_become_two_operations_on_one_path(tiny: Profile) -> None:
    assert {op.operation_id for op in tiny.operations_at("/api/Shared")} == {"Plain", "Plus"}
    with pytest.raises(UnknownOperation, match="several operations"):
        tiny.operation("/api/Shared")


def test_match_picks_the_variant_the_payload_satisfies(tiny: Profile) -> None:
    op, _, found = tiny.match("/api/Shared", {"sfc": "C1", "operationType": "2"})
    assert (op.operation_id, found) == ("Plus", [])
    op, _, found = tiny.match("/api/Shared", {"sfc": "C1"})
    assert (op.operation_id, found) == ("Plain", [])


def test_build_request_fills_context_and_encodes_camel_case(tiny: Profile) -> None:
    now = datetime(2026, 11, 23, 6, 0, 1, 234000, tzinfo=UTC)
    body = tiny.build_request(
        "Report",
        {"SfcList": [{"Sfc": "C1", "UriList": [{"Passed": 1, "IDCard": "x"}]}]},
        context={"now": now, "equipment_code": "EQ-9"},
        validate=True,
    )
    assert body == {
        "sfcList": [{"sfc": "C1", "uriList": [{"passed": 1, "idCard": "x"}]}],
        "localTime": "2026-11-23T06:00:01.234Z",
        "equipmentCode": "EQ-9",
    }


def test_build_request_in_pascal_case(tmp_path: Path) -> None:
    prof = load_profile(Path(__file__).parent.parent / "data" / "tiny.openapi.yaml", casing="PascalCase")
    body = prof.build_request("Plus", {"sfc": "C1", "operationType": "1"})
    assert body == {"Sfc": "C1", "OperationType": "1"}


def test_format_time_is_utc_with_milliseconds() -> None:
    assert format_time(datetime(2024, 3, 1, 1, 45, 11, 344999, tzinfo=UTC)) == "2024-03-01T01:45:11.344Z"


def test_a_swagger_2_document_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "old.json"
    f.write_text(json.dumps({"swagger": "2.0", "paths": {}}))
    with pytest.raises(ProfileError, match=r"must be an OpenAPI 3.x document \(found swagger 2.0\)"):
        load_profile(f)


def test_invalid_yaml_is_refused_with_the_file_name(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("openapi: [3.1\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml is not valid YAML"):
        load_profile(f)


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="qingke-mes-v1"):
        load_profile("no-such-profile")


def test_a_plain_aspnet_style_swagger_json_loads(tmp_path: Path) -> None:
    doc = {
        "openapi": "3.0.1",
        "info": {"title": "MES", "version": "v1"},
        "paths": {
            "/api/v1/Heartbeat": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Hb"}}}},
                    "responses": {"200": {"description": "Success"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Hb": {
                    "type": "object",
                    "properties": {
                        "equipmentCode": {"type": "string", "nullable": True},
                        "isOnline": {"type": "boolean"},
                    },
                }
            }
        },
    }
    f = tmp_path / "swagger.json"
    f.write_text(json.dumps(doc))
    prof = load_profile(f)
    op = prof.operation("Heartbeat")  # no operationId: named after the path
    assert op.check_request({"EquipmentCode": None, "IsOnline": True})[1] == []
    assert [str(i) for i in op.check_request({"isOnline": "yes"})[1]] == ['isOnline: expected boolean, got "yes"']


def test_casing_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_CASING", "PascalCase")
    prof = load_profile(Path(__file__).parent.parent / "data" / "tiny.openapi.yaml")
    assert prof.build_request("Plain", {"sfc": "C1"}) == {"Sfc": "C1"}
    monkeypatch.setenv("TWIN_CASING", "kebab")
    with pytest.raises(ProfileError, match="casing must be one of camelCase, PascalCase, got 'kebab'"):
        load_profile(Path(__file__).parent.parent / "data" / "tiny.openapi.yaml")
