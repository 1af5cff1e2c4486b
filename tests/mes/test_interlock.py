"""Interlocks of 3.1 against a real equipment-side listener on a loopback address, and the timeout path."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.mes.conftest import (
    ASSEMBLY,
    CORE,
    HOT_PRESS,
    MYLAR,
    WINDER,
    WINDER_2,
    XRAY,
    Host,
    Listener,
    assembled_cell,
    get_json,
    verified,
    wait_for,
)
from twin.mes import RunningMes
from twin.profile import Profile

ALIGN = ["NG-XRAY-ALIGN"]
SHORT = ["NG-HIPOT-SHORT"]


async def _setup(
    make_mes: Callable[..., Awaitable[RunningMes]], session: aiohttp.ClientSession, profile: Profile,
    listener: Listener, **settings: Any,
) -> Host:
    running = await make_mes(addresses={WINDER: listener.address, WINDER_2: listener.address}, **settings)
    host = Host(session, running.url, profile, running.admin_headers)
    await host.login()
    await verified(host, WINDER, WINDER_2, HOT_PRESS, XRAY)
    return host


async def _xray(host: Host, passed: int, winder: str = WINDER, ng: list[str] | None = None) -> str:
    jr = await host.jelly_roll(winder)
    await host.move(jr, HOT_PRESS)
    await host.move(jr, XRAY, passed=passed, ng=ng if ng is not None else ([] if passed else ALIGN))
    return jr


async def _interlocks(host: Host) -> list[dict[str, Any]]:
    return (await get_json(host, "/admin/interlocks"))["interlocks"]


async def _settled(host: Host, n: int) -> list[dict[str, Any]]:
    async def done() -> bool:
        rows = await _interlocks(host)
        return len(rows) >= n and all(r["outcome"] != "pending" for r in rows)

    await wait_for(done)
    return await _interlocks(host)


async def test_500201_fires_at_the_third_consecutive_alignment_ng_of_one_winder(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    host = await _setup(make_mes, session, profile, listener)
    await _xray(host, 0)
    await _xray(host, 0)
    await _xray(host, 1)  # an OK result of the same winder breaks the series
    host.tick(2000)  # (and time passes, so that 500203's five in an hour does not fire here)
    await _xray(host, 0)
    await _xray(host, 0, WINDER_2)  # another winder's NG does not count for this one
    await _xray(host, 0, ng=["NG-XRAY-FOREIGN"])  # an NG that is not alignment breaks it too
    host.tick(2000)
    await _xray(host, 0)
    await _xray(host, 0)
    assert await _interlocks(host) == []
    await _xray(host, 0)
    rows = await _settled(host, 1)
    assert [(r["code"], r["equipment"], r["detector"], r["outcome"]) for r in rows] == [
        ("500201", WINDER, XRAY, "delivered")
    ]
    path, body = listener.received[0]
    assert path == "/api/SendInterLock"
    assert body == {
        "InterlockCode": "500201",
        "InterlockMessage": "一次X-Ray检测同一台叠片机极组连续出现3次NG（对齐度NG）报警，检测设备编码【A02-XR-01】，"
        "叠片机设备编码【A02-WIND-01】；",
        "EquipmentCode": WINDER,
    }


async def test_500203_needs_five_alignment_ng_within_an_hour(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    host = await _setup(make_mes, session, profile, listener)
    for _ in range(4):  # spread over more than an hour: never five within one
        await _xray(host, 0)
        await _xray(host, 1)
        host.tick(1000)
    assert await _interlocks(host) == []
    for _ in range(2):
        await _xray(host, 0)
        await _xray(host, 1)
    rows = await _settled(host, 1)
    assert [r["code"] for r in rows] == ["500203"] and "一小时内" in rows[0]["message"]


async def test_hipot_shorts_escalate_500202_then_500204(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    host = await _setup(make_mes, session, profile, listener)

    async def short() -> None:
        jr = await host.jelly_roll()
        await host.move(jr, HOT_PRESS, passed=0, ng=SHORT)

    await short()
    host.tick(3700)  # the first one leaves the hour
    await short()
    assert await _interlocks(host) == []
    await short()
    assert [r["code"] for r in await _settled(host, 1)] == ["500202"]
    await short()
    rows = await _settled(host, 2)
    assert [r["code"] for r in rows] == ["500204", "500202"]  # newest first
    expected = "Hipot一小时内检测同一台叠片机极组出现3次NG（短路NG）报警，检测设备【A02-HP-01】"
    assert rows[0]["message"].startswith(expected)


async def test_a_cell_traces_to_the_winders_of_both_its_jelly_rolls(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    host = await _setup(make_mes, session, profile, listener)
    await verified(host, *ASSEMBLY, CORE, MYLAR)
    for _ in range(2):
        cell, jr1, _ = await assembled_cell(host)
        await host.ok("InboundBindJzSingleAsync", {"Sfc": jr1, "OperationType": "3"}, CORE)
        await host.ok("BoundOutbound", {"Sfc": cell, "Passed": 1, "ParamList": [], "BindFeedingCodeList": [],
                                        "NgList": [], "OperationType": "3"}, CORE)
        await host.move(cell, MYLAR, passed=0, ng=SHORT)
    rows = await _settled(host, 1)
    assert [(r["code"], r["equipment"], r["detector"]) for r in rows] == [("500202", WINDER, MYLAR)]


async def test_tool_life_fires_500301_once_until_the_tool_is_replaced(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    host = await _setup(make_mes, session, profile, listener)
    life = {"ToolCode": "GZ-WIND-NEEDLE-01", "UsedLife": 150000.0,
            "ToolLifes": [{"ToolCode": "GZ-WIND-CUTTER-02", "UsedLife": 99999.0}]}
    await host.ok("ToolLife", life)
    assert await _interlocks(host) == []
    life["ToolLifes"][0]["UsedLife"] = 100000.0
    await host.ok("ToolLife", life)
    await host.ok("ToolLife", life)  # still expired: no second interlock
    rows = await _settled(host, 1)
    assert [(r["code"], r["equipment"]) for r in rows] == [("500301", WINDER)]
    assert "工装治具寿命报警" in rows[0]["message"] and "GZ-WIND-CUTTER-02" in rows[0]["message"]
    life["ToolLifes"][0]["UsedLife"] = 10.0  # replaced
    await host.ok("ToolLife", life)
    life["ToolLifes"][0]["UsedLife"] = 100001.0
    await host.ok("ToolLife", life)
    assert len(await _settled(host, 2)) == 2


async def test_no_answer_in_time_means_the_equipment_is_offline(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    listener.delay_s = 2.0
    host = await _setup(make_mes, session, profile, listener, interlock_timeout_s=0.3)
    for _ in range(3):
        await _xray(host, 0)
    rows = await _settled(host, 1)
    assert rows[0]["outcome"] == "offline" and "no answer within 0.3 s" in rows[0]["detail"]
    stats = await get_json(host, "/admin/stats")
    assert {"code": "500201", "outcome": "offline", "count": 1} in stats["interlocks"]


async def test_a_refusing_or_absent_equipment_is_recorded(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    listener.status = 400
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.1.24", 0))
        closed = f"127.0.1.24:{probe.getsockname()[1]}"
    running = await make_mes(addresses={WINDER: listener.address, WINDER_2: closed})
    host = Host(session, running.url, profile, running.admin_headers)
    await host.login()
    await verified(host, WINDER, WINDER_2, HOT_PRESS, XRAY)
    for _ in range(3):
        await _xray(host, 0)
    rows = await _settled(host, 1)
    assert rows[0]["outcome"] == "rejected" and rows[0]["detail"] == "设备忙"
    for _ in range(3):
        await _xray(host, 0, WINDER_2)
    rows = await _settled(host, 2)
    assert (rows[0]["equipment"], rows[0]["outcome"], rows[0]["address"]) == (WINDER_2, "unreachable", closed)


async def test_electrolyte_batches_are_pushed_to_filling_machines(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    running = await make_mes(addresses={"*": listener.address})
    async with session.post(running.url + "/admin/electrolyte-batch", json={}, headers=running.admin_headers) as resp:
        pushes = (await resp.json())["pushes"]
    assert {p["equipment"] for p in pushes} == {"A02-INJ1-01", "A02-INJ2-01"}
    assert all(p["outcome"] == "delivered" and p["batchSfc"].startswith("DJY-") for p in pushes)
    assert sorted(b["EquipmentCode"] for _, b in listener.received) == ["A02-INJ1-01", "A02-INJ2-01"]
    async with session.post(running.url + "/admin/electrolyte-batch",
                            json={"batchSfc": "DJY-MANUAL-1", "equipment": ["A02-INJ1-01"]},
                            headers=running.admin_headers) as resp:
        assert (await resp.json())["pushes"][0]["batchSfc"] == "DJY-MANUAL-1"
    async with session.post(running.url + "/admin/electrolyte-batch", json={"equipment": ["NOPE"]},
                            headers=running.admin_headers) as resp:
        assert resp.status == 400


async def test_electrolyte_batches_on_a_schedule(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    await make_mes(addresses={"*": listener.address}, batch_every_s=0.1)

    async def two_rounds() -> bool:
        return len({b["BatchSfc"] for _, b in listener.received}) >= 2

    await wait_for(two_rounds)


async def test_counts_and_interlocks_read_in_process(
    make_mes: Any, session: aiohttp.ClientSession, profile: Profile, listener: Listener
) -> None:
    """What ``twin run`` reads from the MES it embeds, without HTTP: requests per interface, interlocks."""
    running = await make_mes(addresses={WINDER: listener.address})
    host = Host(session, running.url, profile, running.admin_headers)
    await host.login()
    await verified(host, WINDER, HOT_PRESS, XRAY)
    await host.refused("Inbound", {"Sfc": "JR-NEVER-MADE"}, HOT_PRESS, "unknown to the MES")
    for _ in range(3):
        await _xray(host, 0)
    await _settled(host, 1)
    counts = running.requests_by_interface()
    assert counts["CollingPolar"] == {"requests": 3, "ok": 3, "refused": 0}
    assert counts["Inbound"] == {"requests": 7, "ok": 6, "refused": 1}
    assert counts["Outbound"]["ok"] == 6
    assert running.refusals() == {"product": 1}
    assert running.interlock_counts() == {("500201", "delivered"): 1}
    records = await running.interlocks()
    assert [(r["code"], r["equipment"], r["detector"], r["outcome"]) for r in records] == [
        ("500201", WINDER, XRAY, "delivered")
    ]
    assert records[0]["finished_at"] and "叠片机设备编码【A02-WIND-01】" in records[0]["message"]
