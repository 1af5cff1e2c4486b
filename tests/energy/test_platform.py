"""The platform peer: every return code of table 3 produced on purpose, and the protocol's answer to bad input."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp
import orjson
import pytest

from twin.energy.platform import Platform
from twin.energy.spec import load_energy_spec

SPEC = load_energy_spec()


async def post(platform: Platform, path: str, body: Any) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as s, s.post(platform.url + path, data=data) as resp:
        assert resp.status == 200  # the status lives in responseCode (EN-21)
        answer = await resp.json()
    op = next((o for o in SPEC.profile if o.path == path), SPEC.op("Register"))
    assert op.check_response(answer)[1] == [], answer
    return answer


async def registered(platform: Platform) -> str:
    answer = await post(platform, "/register", {"region": "320600", "ascription": "province"})
    assert answer["responseCode"] == "0"
    return str(answer["provinceId"])


def energy_body(pid: str, **item: Any) -> dict[str, Any]:
    value = {
        "dataCode": "01-01-00-00-023300-11",
        "dataValue": 12.5,
        "inputType": 2,
        "statType": 0,
        "statDate": "2026-11-23 08:00:00",
        "uploadDate": "2026-11-23 08:31:00",
        "scope": 3,
        "valid": True,
    }
    return {"provinceId": pid, "enterpriseCode": "91320612MA1XTWNB8Q", "data": [{**value, **item}]}


async def test_register_returns_every_service_address_on_this_platform(platform: Platform) -> None:
    answer = await post(platform, "/", {"region": "320600", "ascription": "province"})  # the bare domain (EN-2)
    assert answer["responseCode"] == "0" and len(answer["provinceId"]) == 32
    for op_id, field in SPEC.url_fields.items():
        assert answer[field] == platform.url + SPEC.op(op_id).path


async def test_0_and_the_values_are_stored_once_however_often_received(platform: Platform) -> None:
    pid = await registered(platform)
    for _ in range(3):
        assert (await post(platform, "/uploadEnergyData", energy_body(pid)))["responseCode"] == "0"
    assert platform.store.values() == {("01-01-00-00-023300-11", 0, "2026-11-23 08:00:00"): (12.5, 3)}
    assert platform.stats()["received_again"] == 2
    got = await post(
        platform,
        "/downloadEnergyData",
        {"provinceId": pid, "enterpriseCode": "91320612MA1XTWNB8Q", "statType": 0, "statDate": "2026-11-23"},
    )
    assert [d["dataValue"] for d in got["data"]] == [12.5]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/register", {"region": "320600"}, "ascription: required field is missing"),
        ("/versionCheck", {}, "provinceId: required field is missing"),
        ("/uploadEnergyData", "no-valid", "data[0].valid: required field is missing"),
    ],
)
async def test_E2001_a_required_item_is_missing(platform: Platform, path: str, body: Any, says: str) -> None:
    if body == "no-valid":
        body = energy_body(await registered(platform))
        del body["data"][0]["valid"]
    answer = await post(platform, path, body)
    assert answer["responseCode"] == "E2001" and says in answer["responseMessage"]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/register", {"region": "32", "ascription": "province"}, "region: expected pattern"),
        ("/register", b"{region: 320600}", "JSON"),
        ("/register", b"[1]", "JSON对象"),
        ("/versionCheck", {"provinceId": "0" * 32}, "was not issued"),
        ("/uploadEnergyData", "bad-date", "data[0].statDate: expected pattern"),
        ("/uploadEnergyData", "bad-code", "data[0].dataCode: expected pattern"),
        ("/downloadConfigData", "unknown-enterprise", "has no configuration"),
    ],
)
async def test_E2002_a_parameter_has_an_illegal_format(platform: Platform, path: str, body: Any, says: str) -> None:
    if isinstance(body, str):
        pid = await registered(platform)
        body = {
            "bad-date": energy_body(pid, statDate="2026-11-23T08:00:00Z"),
            "bad-code": energy_body(pid, dataCode="0101"),
            "unknown-enterprise": {"provinceId": pid, "enterpriseCode": "91330000573973053F"},
        }[body]
    answer = await post(platform, path, body)
    assert answer["responseCode"] == "E2002" and says in answer["responseMessage"], answer


async def test_E1002_when_the_database_fails(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await registered(platform)

    def broken(*args: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(platform.store, "save_values", broken)
    monkeypatch.setattr("twin.energy.platform.log.exception", lambda *a, **k: None)
    answer = await post(platform, "/uploadEnergyData", energy_body(pid))
    assert answer["responseCode"] == "E1002" and "database is locked" in answer["responseMessage"]


async def test_E1001_when_the_service_fails(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await registered(platform)

    async def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("queue full")

    monkeypatch.setitem(platform._handlers, "VersionCheck", broken)
    monkeypatch.setattr("twin.energy.platform.log.exception", lambda *a, **k: None)
    answer = await post(platform, "/versionCheck", {"provinceId": pid})
    assert answer["responseCode"] == "E1001" and "queue full" in answer["responseMessage"]


async def test_faults_injected_at_run_time_over_http(platform: Platform) -> None:
    pid = await registered(platform)
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{platform.url}/twin/faults", json={"operation": "VersionCheck", "code": "E1002", "count": 2}
        ):
            pass
        codes = []
        for _ in range(3):
            async with s.post(f"{platform.url}/versionCheck", json={"provinceId": pid}) as resp:
                codes.append((await resp.json())["responseCode"])
        async with s.get(f"{platform.url}/twin/stats") as resp:
            stats = await resp.json()
    assert codes == ["E1002", "E1002", "0"]
    assert stats["calls"]["VersionCheck E1002"] == 2 and stats["registrations"] == 1


async def test_an_outage_refuses_connections_and_ends(platform: Platform) -> None:
    pid = await registered(platform)
    await platform.outage(True)
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with s.post(f"{platform.url}/versionCheck", json={"provinceId": pid}):
                pass
    await platform.outage(False)
    assert (await post(platform, "/versionCheck", {"provinceId": pid}))["responseCode"] == "0"
