"""Watching a PLC (pymodbus's server standing in for it): cycles, interlock timing, link loss and back-off."""

from __future__ import annotations

import asyncio
import socket

from tests.hil.conftest import wait_until
from twin.hil.events import Backoff, CycleCompleted, LinkDown, LinkUp, RunChanged
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.modbus_server import VirtualModbusPlc
from twin.hil.protocols import connect_plc
from twin.hil.scripted import ScriptedStation
from twin.hil.watcher import PlcWatcher

FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.2, jitter=0.0)


async def _station(io_map: IoMap, *, cycle_s: float = 0.1, obey: bool = True, port: int = 0):
    image = IoImage(io_map)
    plc = VirtualModbusPlc(image, port=port)
    port = await plc.start()
    station = ScriptedStation(image, cycle_s=cycle_s, obey_interlock=obey, reaction_s=0.05)
    await station.start()
    return image, plc, station, port


def _watcher(io_map: IoMap, port: int, events: list) -> PlcWatcher:
    link = connect_plc(io_map, "127.0.0.1", port, timeout_s=0.5)
    return PlcWatcher(link, on_event=events.append, poll_s=0.03, backoff=FAST)


def _of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


async def test_scripted_plc_cycles_become_events_with_barcodes(modbus_map: IoMap) -> None:
    _image, plc, station, port = await _station(modbus_map)
    events: list = []
    try:
        async with _watcher(modbus_map, port, events):
            await wait_until(lambda: len(_of(events, CycleCompleted)) >= 4)
    finally:
        await station.stop()
        await plc.stop()
    assert isinstance(events[0], LinkUp) and events[0].down_s is None
    cycles = _of(events, CycleCompleted)
    counts = [c.count for c in cycles]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    for c in cycles:
        assert c.barcode == f"JR{c.count:06d}" and c.ok is True
    assert sum(c.missed for c in cycles) + len(cycles) == counts[-1] - counts[0] + 1 + cycles[0].missed


async def test_interlock_drops_the_run_bit_within_the_timeout(modbus_map: IoMap) -> None:
    image, plc, station, port = await _station(modbus_map, cycle_s=0.2)
    events: list = []
    try:
        async with _watcher(modbus_map, port, events) as watcher:
            await wait_until(lambda: watcher.connected)
            check = await watcher.check_interlock(500201, timeout_s=2.0)
            assert check.passed, check.describe()
            assert 0.04 <= check.reaction_s < 2.0
            assert image.interlocked and image.interlock_code == 500201 and image.alarm_code == 999
            await wait_until(lambda: any(isinstance(e, RunChanged) and not e.running for e in events))
            await watcher.release_interlock()
            await wait_until(lambda: image.running and not image.interlocked)
            await wait_until(lambda: isinstance(events[-1], RunChanged | CycleCompleted) and image.alarm_code == 0)
    finally:
        await station.stop()
        await plc.stop()
    assert watcher.checks == [check]


async def test_a_plc_that_ignores_the_interlock_fails_the_check(modbus_map: IoMap) -> None:
    image, plc, station, port = await _station(modbus_map, obey=False)
    try:
        async with _watcher(modbus_map, port, []) as watcher:
            await wait_until(lambda: watcher.connected)
            check = await watcher.check_interlock(500203, timeout_s=0.3)
    finally:
        await station.stop()
        await plc.stop()
    assert check.status == "failed" and not check.passed and check.reaction_s is None
    assert image.interlocked and image.running
    assert "FAILED" in check.describe()


async def test_nothing_to_stop_is_not_a_pass(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    plc = VirtualModbusPlc(image, port=0)
    port = await plc.start()
    try:
        async with _watcher(modbus_map, port, []) as watcher:
            await wait_until(lambda: watcher.connected)
            check = await watcher.check_interlock(500301)
    finally:
        await plc.stop()
    assert check.status == "not-running" and not check.passed


async def test_link_loss_is_reported_retried_with_backoff_and_recovered(modbus_map: IoMap) -> None:
    image, plc, station, port = await _station(modbus_map)
    events: list = []
    watcher = _watcher(modbus_map, port, events)
    await watcher.start()
    try:
        await wait_until(lambda: len(_of(events, CycleCompleted)) >= 2)
        await plc.stop()
        await wait_until(lambda: len(_of(events, LinkDown)) >= 4)
        downs = _of(events, LinkDown)
        assert [d.retry_in_s for d in downs[:4]] == [0.05, 0.1, 0.2, 0.2]  # doubling, capped
        assert [d.attempt for d in downs[:4]] == [1, 2, 3, 4]
        assert not watcher.connected and watcher._task is not None and not watcher._task.done()
        plc = VirtualModbusPlc(image, port=port)
        await plc.start()
        await wait_until(lambda: isinstance(events[-1], LinkUp) or len(_of(events, LinkUp)) >= 2, timeout_s=3)
        back = _of(events, LinkUp)[-1]
        assert back.down_s is not None and back.down_s > 0.3 and back.attempts >= 4
        await wait_until(lambda: len(_of(events[events.index(back) :], CycleCompleted)) >= 2)
        after_outage = _of(events[events.index(back) :], CycleCompleted)[0]
        assert after_outage.missed >= 1  # the station kept cycling while the link was down
        assert watcher.outages == 1
    finally:
        await watcher.stop()
        await station.stop()
        await plc.stop()


async def test_unreachable_plc_never_raises_and_stops_cleanly(modbus_map: IoMap) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    events: list = []

    def broken_listener(event: object) -> None:
        raise RuntimeError("a consumer's bug")

    watcher = _watcher(modbus_map, port, events)
    watcher.add_listener(broken_listener)
    await watcher.start()
    await wait_until(lambda: len(events) >= 3)
    assert all(isinstance(e, LinkDown) for e in events)
    assert "connection refused" in events[0].error or "Connect call failed" in events[0].error
    check = await watcher.check_interlock(500201)
    assert check.status == "no-link"
    await watcher.stop()
    await asyncio.sleep(0)
