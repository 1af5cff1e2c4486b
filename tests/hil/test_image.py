"""The I/O image the line model drives: cycles, pulse, alarms, interlock, limits."""

from __future__ import annotations

import asyncio

import pytest

from twin.errors import ConfigError
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap


async def test_pulse_cycle_sets_barcode_counters_then_pulse_which_drops(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    changes: list[str] = []
    image.on_change(lambda name, value, by: changes.append(name))
    assert image.pulse_cycle("JR000001") == 1
    image.pulse_cycle("JR000002", ok=False)
    assert image.get("barcode") == "JR000002"
    assert (image.get("cycle_count"), image.get("ok_count"), image.get("ng_count")) == (2, 1, 1)
    assert image.get("cycle_ok") is False and image.get("cycle_complete") is True
    assert changes.index("barcode") < changes.index("cycle_complete")  # data first, then the pulse
    await asyncio.sleep(modbus_map.pulse_s + 0.1)
    assert changes[-1] == "cycle_complete" and image.get("cycle_complete") is False


def test_pulse_drops_lazily_without_a_loop(modbus_map: IoMap) -> None:
    now = [100.0]
    image = IoImage(modbus_map, clock=lambda: now[0])
    image.pulse_cycle("JR1")
    assert image.get("cycle_complete") is True
    now[0] += modbus_map.pulse_s
    assert image.get("cycle_complete") is False


def test_counter_rolls_over_like_the_plc_integer(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    image.set("cycle_count", 2**32 - 1)
    assert image.pulse_cycle("JR") == 0


def test_interlock_callbacks_and_host_writes(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    seen: list[tuple[bool, int]] = []
    writes: list[tuple[str, object]] = []
    image.on_interlock(lambda on, code: seen.append((on, code)))
    image.on_host_write(lambda name, value: writes.append((name, value)))
    image.host_write("interlock_code", 500203)
    image.host_write("interlock", True)
    assert image.interlocked and seen == [(True, 500203)]
    image.clear_interlock()
    assert seen[-1] == (False, 500203)  # the release names the interlock it releases
    assert image.interlock_code == 0
    image.raise_interlock(500301)
    assert seen[-1] == (True, 500301)
    assert ("interlock", True) in writes
    with pytest.raises(PermissionError, match="written by the PLC"):
        image.host_write("run", True)


def test_read_limits_reflects_what_the_host_wrote(modbus_map: IoMap) -> None:
    image = IoImage(modbus_map)
    image.host_write("param_wd0001_upper", 28.0)
    image.set_param_value("WD0001", 13.5)
    limits = image.read_limits()["WD0001"]
    assert (limits.value, limits.upper, limits.lower) == (13.5, 28.0, 9.0)
    assert limits.within()
    assert limits.as_param() == {
        "ParamCode": "WD0001",
        "ParamValue": "13.5",
        "ParamUpper": "28",
        "ParamLower": "9",
    }
    with pytest.raises(ConfigError, match="no startup parameter"):
        image.set_param_value("NOPE", 1)
    with pytest.raises(ConfigError, match="does not fit"):
        image.set("alarm_code", -1)
