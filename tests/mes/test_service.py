"""The request pipeline: token, schema (both casings, counted refusals), paths, equipment, envelope."""

from __future__ import annotations

from tests.mes.conftest import COATER, HOT_PRESS, WINDER, Host, get_json
from twin.profile.casing import pascal


async def test_login_gives_a_bearer_token_and_wrong_accounts_are_refused(host: Host) -> None:
    assert host.token is not None and host.token.startswith("Bearer ")
    await host.refused(
        "OperatorLogin", {"OperatorUserID": "nobody", "OperatorPassword": "x"}, WINDER, "'nobody' does not exist"
    )
    await host.refused(
        "OperatorLogin", {"OperatorUserID": "op1001", "OperatorPassword": "wrong"}, WINDER, "wrong password"
    )
    await host.refused(
        "OperatorLogin", {"OperatorUserID": "op0999", "OperatorPassword": "left-2025"}, WINDER, "disabled"
    )


async def test_every_other_interface_needs_a_known_token(host: Host) -> None:
    path = host.profile.operation("Heartbeat").path
    body = host.body("Heartbeat", {"IsOnline": True})
    status, doc = await host.post(path, body, token=False)
    assert status == 401 and doc["code"] == 1101 and "Authorization header is missing" in doc["msg"]
    host.token = "Bearer not-a-token"
    status, doc = await host.post(path, body)
    assert status == 401 and "unknown" in doc["msg"]
    host.token = "Basic abc"
    status, doc = await host.post(path, body)
    assert status == 401 and "Bearer <token>" in doc["msg"]


async def test_a_schema_violation_names_the_field_and_is_counted(host: Host) -> None:
    body = host.body(
        "Outbound", {"Sfc": "JR1", "Passed": 1, "ParamList": [], "BindFeedingCodeList": [], "NgList": []}, HOT_PRESS
    )
    body["passed"] = "yes"
    status, doc = await host.post("/EquipmentService/api/v1/Outbound", body)
    assert status == 200 and doc["code"] == 1001
    assert doc["msg"].startswith('passed: expected integer 0 or 1, got "yes"')
    del body["sfc"]
    body["passed"] = 1
    _, doc = await host.post("/EquipmentService/api/v1/Outbound", body)
    assert doc["code"] == 1001 and "sfc: required field is missing" in doc["msg"]
    stats = await get_json(host, "/admin/stats")
    fields = {(x["operation"], x["field"]): x["count"] for x in stats["invalid_fields"]}
    assert fields[("Outbound", "passed")] == 1 and fields[("Outbound", "sfc")] == 1
    assert stats["refusals"]["invalid"] == 2
    async with host.session.get(host.url + "/metrics") as resp:
        text = await resp.text()
    assert 'twin_mes_invalid_fields_total{operation="Outbound",field="passed"} 1' in text


async def test_both_casings_are_accepted(host: Host) -> None:
    camel = host.body("Heartbeat", {"IsOnline": True})
    status, doc = await host.post("/EquipmentService/api/v1/Heartbeat", {pascal(k): v for k, v in camel.items()})
    assert status == 200 and doc == {"code": 0, "msg": "Success"}


async def test_answers_use_the_profile_envelope_and_casing(host: Host) -> None:
    await host.verify(COATER)
    doc = await host.call("GenerateSfc", {"Qty": 2}, COATER)
    assert list(doc) == ["code", "msg", "data"] and doc["code"] == 0
    assert len(doc["data"]["sfcList"]) == 2  # the TABLE shape of 2.23 (2.23-1), camelCase


async def test_unknown_path_wrong_method_and_bad_json(host: Host) -> None:
    status, doc = await host.post("/EquipmentService/api/v1/NoSuchThing", {})
    assert status == 404 and doc["code"] == 404 and "NoSuchThing" in doc["msg"]
    async with host.session.get(host.url + "/EquipmentService/api/v1/Heartbeat") as resp:
        assert resp.status == 405 and "POST only" in (await resp.json())["msg"]
    status, doc = await host.post("/EquipmentService/api/v1/Heartbeat", None, raw=b'{"equipmentCode": x}')
    assert status == 400 and doc["code"] == 1002 and "not JSON" in doc["msg"] and "column" in doc["msg"]


async def test_paths_are_matched_like_asp_net(host: Host) -> None:
    """Case-insensitive, and 2.51's printed stray space (/api/v1/ GetSfcInfo) works too."""
    status, doc = await host.post("/equipmentservice/API/v1/heartbeat", host.body("Heartbeat", {"IsOnline": True}))
    assert status == 200 and doc["code"] == 0
    body = host.body("GetSfcInfo", {"SfcList": []})
    status, doc = await host.post("/EquipmentService/api/v1/%20GetSfcInfo", body)
    assert status == 200 and doc["code"] == 0 and doc["data"] == []


async def test_unknown_equipment_only_where_no_station_is_needed(host: Host) -> None:
    """Codes come from the MES: a station interface refuses a code not on the line; presence is accepted."""
    await host.ok("Heartbeat", {"IsOnline": True}, "A09-UNKNOWN-01")
    msg = await host.refused("Inbound", {"Sfc": "JR1"}, "A09-UNKNOWN-01", "'A09-UNKNOWN-01' is not on line line-A02")
    assert "A02-WIND-01" in msg


async def test_an_interface_must_belong_to_the_station(host: Host) -> None:
    await host.refused("GenerateSfc", {"Qty": 1}, HOT_PRESS, "is not an interface of station hot-press")


async def test_shared_outbound_path_reads_operation_type_as_2_50(host: Host) -> None:
    values = {
        "Sfc": "JR-X",
        "Passed": 1,
        "ParamList": [],
        "BindFeedingCodeList": [],
        "NgList": [],
        "OperationType": "3",
    }
    await host.call("BoundOutbound", values, "A02-CT-01")
    stats = await get_json(host, "/admin/stats")
    assert "BoundOutbound" in stats["operations"] and "Outbound" not in stats["operations"]
