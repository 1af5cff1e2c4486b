"""The same station over OPC UA: asyncua's server as the virtual (or stand-in real) PLC, asyncua's client."""

from __future__ import annotations

import pytest

from tests.hil.conftest import Relay, wait_until
from twin.hil.events import Backoff, CycleCompleted, LinkDown, LinkUp
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.link import PlcRefused
from twin.hil.opcua_server import VirtualOpcUaPlc
from twin.hil.protocols import connect_plc
from twin.hil.scripted import ScriptedStation
from twin.hil.watcher import PlcWatcher

FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.2, jitter=0.0)


async def test_cycles_interlock_and_limits_over_opcua(opcua_map: IoMap) -> None:
    image = IoImage(opcua_map)
    plc = VirtualOpcUaPlc(image, port=0)
    port = await plc.start()
    assert plc.url == f"opc.tcp://127.0.0.1:{port}/twin/winder"
    station = ScriptedStation(image, cycle_s=0.1, reaction_s=0.05)
    await station.start()
    events: list = []
    watcher = PlcWatcher(connect_plc(opcua_map, "127.0.0.1", port), on_event=events.append, poll_s=0.03)
    try:
        await watcher.start()
        await wait_until(lambda: len([e for e in events if isinstance(e, CycleCompleted)]) >= 3)
        cycle = next(e for e in events if isinstance(e, CycleCompleted))
        assert cycle.barcode == f"JR{cycle.count:06d}" and cycle.ok is True

        await watcher.write("param_wd0001_upper", 27.5)
        assert image.read_limits()["WD0001"].upper == 27.5
        with pytest.raises(PlcRefused, match=r"BadNotWritable"):
            await watcher.link.write(opcua_map.signal("run"), False)  # the PLC's own signal
        assert image.running

        passed = await watcher.check_interlock(500202, timeout_s=2.0)
        assert passed.passed and passed.reaction_s < 2.0 and image.interlock_code == 500202
        await watcher.release_interlock()
        await wait_until(lambda: image.running)

        station.obey_interlock = False
        failed = await watcher.check_interlock(500204, timeout_s=0.3)
        assert failed.status == "failed" and image.running
        await wait_until(lambda: watcher.read_limits().get("WD0001") is not None)
        assert watcher.read_limits()["WD0001"].upper == 27.5
    finally:
        await watcher.stop()
        await station.stop()
        await plc.stop()


async def test_opcua_link_loss_and_recovery(opcua_map: IoMap) -> None:
    image = IoImage(opcua_map)
    plc = VirtualOpcUaPlc(image, port=0)
    relay = Relay(await plc.start())
    port = await relay.start()
    events: list = []
    link = connect_plc(opcua_map, "127.0.0.1", port, timeout_s=1.0)
    watcher = PlcWatcher(link, on_event=events.append, poll_s=0.05, backoff=FAST)
    await watcher.start()
    try:
        await wait_until(lambda: watcher.connected)
        await relay.cut()
        await wait_until(lambda: len([e for e in events if isinstance(e, LinkDown)]) >= 2)
        assert not watcher.connected
        await relay.restore()
        await wait_until(lambda: isinstance(events[-1], LinkUp) and events[-1].down_s is not None, timeout_s=10)
        image.set_running(True)
        await wait_until(lambda: watcher.values.get("run") is True)
    finally:
        await watcher.stop()
        await relay.cut()
        await plc.stop()
