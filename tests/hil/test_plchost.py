"""A real PLC in the line (pymodbus's and asyncua's servers stand in for it) talking to the embedded MES.

A scripted PLC runs cycles; the twin, as the station's host PC, turns them into the station's MES traffic
(login, verification with the limits written down to the PLC, state, one 2.44 per jelly roll with the PLC's
barcode). Downstream stations then report three alignment NG for its jelly rolls, so the MES itself fires
interlock 500201 at the winder (3.1): the twin writes it to the PLC and times the run bit's drop; a PLC that
ignores the interlock fails the check. A MES that is away at first gets the station's reports, in order, once
it is back.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from tests.conftest import MES_PROFILE
from tests.hil.conftest import wait_until
from twin.hil.events import Backoff
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.mes_session import MesSession, SessionConfig
from twin.hil.plchost import HostConfig, PlcHost
from twin.hil.protocols import connect_plc, serve_plc
from twin.hil.scripted import ScriptedStation
from twin.hil.watcher import PlcWatcher
from twin.mes.app import MesConfig, serve_mes
from twin.profile import load_profile

PROFILE = load_profile(MES_PROFILE)
PRODUCT = "QK-LFP-280AH"  # line-A02's product; the MES's winding set KJ-WIND-280AH-A has WD0001-WD0004
WINDER = "A02-WIND-01"
INTERLOCK_TIMEOUT_S = 1.5  # the maps say 3 s; a PLC that ignores the interlock is failed sooner here
FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.3, jitter=0.0)

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def plc_station(io_map: IoMap, *, obey: bool = True):
    """A virtual PLC with a scripted winder program: the stand-in for the real machine."""
    image = IoImage(io_map)
    plc = serve_plc(image, port=0)
    port = await plc.start()
    station = ScriptedStation(image, cycle_s=0.15, obey_interlock=obey, reaction_s=0.05)
    await station.start()
    try:
        yield image, port
    finally:
        await station.stop()
        await plc.stop()


def make_host(io_map: IoMap, port: int, mes_url: str = "") -> PlcHost:
    io_map = replace(io_map, interlock_timeout_s=INTERLOCK_TIMEOUT_S)
    watcher = PlcWatcher(connect_plc(io_map, "127.0.0.1", port, timeout_s=1.0), poll_s=0.03, backoff=FAST)
    session = MesSession(PROFILE, SessionConfig(mes_url=mes_url, equipment=WINDER, timeout_s=2.0, backoff=FAST))
    return PlcHost(watcher, session, HostConfig(product=PRODUCT, report=("CollingPolar",), heartbeat_s=0.5))


def reported(host: PlcHost) -> list[str]:
    return [s.request["sfc"] for s in host.session.sent if s.operation == "CollingPolar" and s.ok]


async def verified_station(code: str, url: str) -> MesSession:
    """A virtual downstream station: login and startup verification with the MES's own set values."""
    session = MesSession(PROFILE, SessionConfig(mes_url=url, equipment=code))
    assert (await session.login()).ok
    recipe, version, params = await session.recipe(PRODUCT)
    rows = [
        {"ParamCode": p["paramcode"], "ParamValue": p["paramvalue"], "ParamUpper": p["paramupper"],
         "ParamLower": p["paramlower"]}
        for p in params
    ]  # fmt: skip
    answer = await session.call("Recipe", {"ProductCode": PRODUCT, "RecipeCode": recipe, "Version": version,
                                           "ParamList": rows})  # fmt: skip
    assert answer.ok, answer.describe()
    return session


async def xray_ng(url: str, jelly_rolls: list[str]) -> None:
    """Hot press passes the jelly rolls, X-Ray finds each misaligned: 3 in a row from one winder is 500201."""
    press, xray = await verified_station("A02-HP-01", url), await verified_station("A02-XR-01", url)
    try:
        for sfc in jelly_rolls:
            for station, passed in ((press, 1), (xray, 0)):
                assert (await station.call("Inbound", {"Sfc": sfc})).ok
                values: dict[str, Any] = {"Sfc": sfc, "Passed": passed, "ParamList": [], "BindFeedingCodeList": []}
                values["NgList"] = [] if passed else ["NG-XRAY-ALIGN"]
                answer = await station.call("Outbound", values)
                assert answer.ok, answer.describe()
    finally:
        await press.close()
        await xray.close()


async def scenario(io_map: IoMap, *, obey: bool) -> tuple[PlcHost, IoImage, list[dict[str, Any]]]:
    async with plc_station(io_map, obey=obey) as (image, port):
        host = make_host(io_map, port)
        address = await host.listen()
        async with serve_mes(MesConfig(port=0, db=":memory:", addresses={WINDER: address})) as mes:
            host.session.config.mes_url = mes.url
            await host.start()
            try:
                await wait_until(lambda: len(reported(host)) >= 3, timeout_s=20)
                await xray_ng(mes.url, reported(host)[:3])
                await wait_until(lambda: bool(host.checks), timeout_s=20)
                if obey:
                    await wait_until(lambda: host.reported_state == "2")
                async with (
                    aiohttp.ClientSession() as client,
                    client.get(mes.url + "/admin/interlocks", headers=mes.admin_headers) as resp,
                ):
                    interlocks = (await resp.json())["interlocks"]
            finally:
                await host.stop()
    return host, image, interlocks


async def test_plc_cycles_become_the_stations_mes_traffic_and_the_interlock_stops_it(modbus_map: IoMap) -> None:
    host, image, interlocks = await scenario(modbus_map, obey=True)
    ops = [s.operation for s in host.session.sent]
    assert ops[0] == "OperatorLogin"
    assert ops.index("Recipe") < ops.index("State") < ops.index("CollingPolar")  # verified before producing
    sfcs = reported(host)
    assert sfcs == sorted(sfcs) and all(s.startswith("JR") for s in sfcs)  # the PLC's barcodes, in order
    recipe = next(s for s in host.session.sent if s.operation == "Recipe")
    assert {p["paramCode"] for p in recipe.request["paramList"]} == {"WD0001", "WD0002", "WD0003", "WD0004"}
    assert image.read_limits()["WD0002"].upper == 2200.0  # the MES's limits, written down to the PLC

    [check] = host.checks
    assert check.passed and check.code == 500201 and check.reaction_s < INTERLOCK_TIMEOUT_S
    assert image.interlocked and not image.running and image.interlock_code == 500201
    [fired] = interlocks
    assert fired["code"] == "500201" and fired["equipment"] == WINDER and fired["outcome"] == "delivered"
    states = [s.request["stateCode"] for s in host.session.sent if s.operation == "State"]
    assert states == ["1", "2"]  # run, then the stop as a fault: the PLC raised its interlock alarm with it
    alarms = [s.request for s in host.session.sent if s.operation == "Alarm"]
    assert alarms and alarms[0]["status"] == "1" and alarms[0]["alarmCode"] == "999"
    summary = host.summary()
    assert summary["interlocks_passed"] == 1 and summary["calls"]["2.44 CollingPolar"]["refused"] == 0


async def test_a_plc_that_ignores_the_mes_interlock_fails_the_check(modbus_map: IoMap) -> None:
    host, image, interlocks = await scenario(modbus_map, obey=False)
    [check] = host.checks
    assert check.status == "failed" and not check.passed and "FAILED" in check.describe()
    assert image.interlocked and image.running
    assert interlocks[0]["outcome"] == "delivered"  # the host took the call; its machine did not stop
    assert host.summary()["interlocks_failed"] == 1


async def test_an_opcua_plc_drives_the_same_traffic(opcua_map: IoMap) -> None:
    async with plc_station(opcua_map) as (image, port):
        host = make_host(opcua_map, port)
        address = await host.listen()
        async with serve_mes(MesConfig(port=0, db=":memory:", addresses={WINDER: address})) as mes:
            host.session.config.mes_url = mes.url
            async with host:
                await wait_until(lambda: len(reported(host)) >= 2, timeout_s=20)
    assert image.read_limits()["WD0001"].lower == 10.0
    assert all(s.ok for s in host.session.sent if s.operation != "Heartbeat")


async def test_a_mes_that_is_away_gets_the_reports_in_order_when_it_is_back(modbus_map: IoMap) -> None:
    mes_port = free_port()
    async with plc_station(modbus_map) as (image, port):
        host = make_host(modbus_map, port, mes_url=f"http://127.0.0.1:{mes_port}")
        await host.start()
        try:
            await wait_until(lambda: len([s for s in host.session.sent if s.error]) >= 3)
            assert host.session.token == "" and host.session.outages >= 1  # reported, retried, still running
            await asyncio.sleep(0.5)  # the winder keeps making jelly rolls meanwhile
            made_while_away = image.get("cycle_count")
            async with serve_mes(MesConfig(port=mes_port, db=":memory:", addresses={WINDER: host.address})):
                await wait_until(lambda: len(reported(host)) >= made_while_away - 1, timeout_s=20)
                await host.stop()
        finally:
            await host.stop()
    sfcs = reported(host)
    assert sfcs == sorted(sfcs) and len(set(sfcs)) == len(sfcs)
    errors = [s for s in host.session.sent if s.error]
    assert errors and all(s.operation == "OperatorLogin" and s.error == "refused" for s in errors)


async def test_section3_answers_400_when_the_plc_cannot_take_the_interlock(modbus_map: IoMap) -> None:
    host = make_host(modbus_map, free_port(), mes_url=f"http://127.0.0.1:{free_port()}")  # neither listens
    await host.start()
    try:
        url = f"http://{host.address}"
        body = {"InterlockCode": "500201", "InterlockMessage": "3 x-ray NG", "EquipmentCode": WINDER}
        async with aiohttp.ClientSession() as client:
            async with client.post(url + "/api/SendInterLock", json=body) as resp:
                refused = (resp.status, await resp.json())
            async with client.post(url + "/api/SendInterLock", data=b"not json") as resp:
                garbled = (resp.status, await resp.json())
            async with client.post(url + "/api/SendBatchSfc", json={"BatchSfc": "B1", "EquipmentCode": WINDER}) as resp:
                batch = resp.status
    finally:
        await host.stop()
    assert refused[0] == 400 and "not reachable" in refused[1]["Msg"]  # the MES learns the machine did not get it
    assert garbled[0] == 400 and host.interlocks[0]["code"] == "500201" and not host.checks
    assert batch == 200 and host.batches == ["B1"]


async def test_long_stops_bring_verification_again_and_a_down_reason(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    plc = serve_plc(image, port=0)
    port = await plc.start()
    image.set_running(True)
    host = make_host(modbus_map, port)
    host.config.long_stop_s = host.config.down_reason_after_s = 0.4  # the spec's 3 min, scaled down
    address = await host.listen()
    try:
        async with serve_mes(MesConfig(port=0, db=":memory:", addresses={WINDER: address})) as mes:
            host.session.config.mes_url = mes.url
            await host.start()
            await wait_until(lambda: host.reported_state == "1")
            image.set_running(False)  # starved: no alarm
            await wait_until(lambda: host.reported_state == "3")
            await asyncio.sleep(0.6)
            image.set("down_reason", 4)  # the operator picks "in-process inspection" on the HMI
            image.set_running(True)
            await wait_until(lambda: host.reported_state == "1")
            image.set("down_reason", 0)
            image.set_alarm(17)
            image.set_running(False)
            await wait_until(lambda: host.reported_state == "2")
            await asyncio.sleep(0.6)
            image.set_alarm(0)
            image.set_running(True)
            await wait_until(lambda: host.reported_state == "1")
            await host.stop()
    finally:
        await host.stop()
        await plc.stop()
    sent = list(host.session.sent)
    states = [(s.request["stateCode"], s.request["downReason"]) for s in sent if s.operation == "State"]
    assert states == [("1", ""), ("3", ""), ("1", "4"), ("2", ""), ("1", "3")]  # 3: repair, from the catalogue
    assert all(s.ok for s in sent if s.operation in ("State", "Alarm", "Recipe"))
    assert len([s for s in sent if s.operation == "Recipe"]) == 3  # at start and after each long stop
    alarms = [(s.request["status"], s.request["alarmCode"]) for s in sent if s.operation == "Alarm"]
    assert alarms == [("1", "17"), ("0", "17")]
