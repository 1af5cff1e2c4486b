"""Section 3 served per equipment on its own loopback address, answered as the spec says."""

from __future__ import annotations

import socket

import aiohttp

from tests.conftest import MES_PROFILE
from twin.profile import load_profile
from twin.transport.equipment_server import Endpoint, EquipmentServer, loopback_endpoints

PROFILE = load_profile(MES_PROFILE)


def test_loopback_addresses_follow_line_order_and_carry_over() -> None:
    eps = loopback_endpoints([f"E{i}" for i in range(300)])
    assert (eps[0].host, eps[1].host, eps[253].host, eps[254].host) == (
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.254",
        "127.0.2.1",
    )
    assert {e.port for e in eps} == {6868}


async def test_interlock_and_batch_reach_the_addressed_equipment() -> None:
    got: list[tuple] = []

    async def interlock(eq: str, code: str, msg: str) -> str | None:
        got.append(("interlock", eq, code, msg))
        return None

    async def batch(eq: str, sfc: str) -> str | None:
        got.append(("batch", eq, sfc))
        return "tank still full" if sfc == "BAD" else None

    server = EquipmentServer(PROFILE, on_interlock=interlock, on_batch=batch)
    urls = await server.start([Endpoint("A02-XR-01", "127.0.1.21", 0), Endpoint("A02-INJ1-01", "127.0.1.22", 0)])
    try:
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                urls["A02-XR-01"] + "/api/SendInterLock",
                json={"InterlockCode": "500203", "InterlockMessage": "X-Ray NG", "EquipmentCode": "A02-XR-01"},
            )
            assert r.status == 200
            r = await http.post(
                urls["A02-INJ1-01"] + "/api/SendBatchSfc",
                json={"batchSfc": "EL-2026-11-23-01", "equipmentCode": "A02-INJ1-01"},
            )
            assert r.status == 200
            r = await http.post(
                urls["A02-INJ1-01"] + "/api/SendBatchSfc", json={"batchSfc": "BAD", "equipmentCode": "A02-INJ1-01"}
            )
            assert (r.status, await r.json()) == (400, {"Msg": "tank still full"})
            # addressed to the wrong host: refused, as a real host would
            r = await http.post(
                urls["A02-XR-01"] + "/api/SendBatchSfc", json={"BatchSfc": "EL-1", "EquipmentCode": "A02-INJ1-01"}
            )
            assert r.status == 400 and "A02-XR-01" in (await r.json())["Msg"]
            # malformed: the field path is named
            r = await http.post(urls["A02-XR-01"] + "/api/SendInterLock", json={"InterlockCode": "500201"})
            assert r.status == 400 and "required field is missing" in (await r.json())["Msg"]
    finally:
        await server.close()
    assert got == [
        ("interlock", "A02-XR-01", "500203", "X-Ray NG"),
        ("batch", "A02-INJ1-01", "EL-2026-11-23-01"),
        ("batch", "A02-INJ1-01", "BAD"),
    ]


async def test_unbindable_address_falls_back_to_one_router_by_equipment_code() -> None:
    async def ok(*args: str) -> None:
        return None

    server = EquipmentServer(PROFILE, on_interlock=ok, on_batch=ok)
    with socket.socket() as taken:  # another program holds the address the equipment should listen on
        taken.bind(("127.0.1.30", 0))
        taken.listen()
        port = taken.getsockname()[1]
        urls = await server.start([Endpoint("A", "127.0.1.30", port), Endpoint("B", "127.0.1.30", port)])
    try:
        assert urls["A"] == urls["B"] and urls["A"].startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                urls["B"] + "/api/SendInterLock",
                json={"InterlockCode": "500301", "InterlockMessage": "tool", "EquipmentCode": "B"},
            )
            assert r.status == 200
    finally:
        await server.close()
