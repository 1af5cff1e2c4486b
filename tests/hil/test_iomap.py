"""I/O maps: the shipped ones load; a mistake names the file, the line and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.hil.iomap import IoMap, IoMapError, available_maps, load_io_map

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_maps_load_with_every_role_the_twin_uses() -> None:
    assert {"winder.modbus", "winder.opcua"} <= set(available_maps())
    for name in ("winder.modbus", "winder.opcua"):
        m = load_io_map(name)
        for role in ("run", "cycle_pulse", "cycle_counter", "barcode", "alarm_code", "interlock", "interlock_code"):
            assert m.role(role) is not None, (name, role)
        assert [p.code for p in m.parameters] == ["WD0001", "WD0002", "WD0003", "WD0004"]


def test_modbus_map_layout(modbus_map: IoMap) -> None:
    barcode = modbus_map.signal("barcode")
    assert (barcode.table, barcode.address, barcode.size) == ("input_register", 10, 12)
    assert modbus_map.signal("cycle_count").size == 2
    upper = modbus_map.parameters[0].upper
    assert (upper.table, upper.address, upper.writer, upper.initial) == ("holding_register", 102, "host", 15.0)
    assert modbus_map.parameters[0].value.writer == "plc"
    assert modbus_map.table_size("input_register") == 33
    assert (modbus_map.pulse_s, modbus_map.poll_s, modbus_map.interlock_timeout_s) == (0.5, 0.1, 3.0)


def _broken(tmp_path: Path, change: callable) -> Path:
    data = yaml.safe_load((ROOT / "lines" / "plc" / "winder.modbus.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["signals"][6].update(address=0), "signals[6].address: cycle_count overlaps signals[5]"),
        (lambda d: d["signals"][1].update(role="run"), "signals[1]: role 'run' is given twice"),
        (lambda d: d["signals"][10].pop("length"), "signals[10]: barcode: a string needs length"),
        (lambda d: d["signals"][5].update(writer="host"), "a host cannot write an input_register"),
        (lambda d: d["signals"][0].update(type="uint16"), "a discrete_input holds one bit"),
        (lambda d: d["signals"][0].update(type="int8"), "signals[0].type: 'int8' is not one of"),
        (lambda d: d["parameters"][0].update(upper=100), "parameters[0].upper.address: param_wd0001_upper"),
        (lambda d: d["signals"][11].update(initial=4000), "initial: winding_tension: 4000 does not fit int16"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, change: callable, expected: str) -> None:
    path = _broken(tmp_path, change)
    with pytest.raises(IoMapError) as info:
        load_io_map(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert expected in message, message
    assert message.split(":")[1].isdigit()


def test_unknown_map_lists_the_known_ones() -> None:
    with pytest.raises(IoMapError, match=r"winder\.modbus"):
        load_io_map("no-such-map")


def test_coerce_checks_type_and_range(modbus_map: IoMap) -> None:
    assert modbus_map.signal("winding_tension").coerce(25.34) == pytest.approx(25.3)
    with pytest.raises(ValueError, match="does not fit uint16"):
        modbus_map.signal("alarm_code").coerce(70000)
    with pytest.raises(ValueError, match="longer than 24 bytes"):
        modbus_map.signal("barcode").coerce("X" * 25)
    with pytest.raises(ValueError, match="expected a bool"):
        modbus_map.signal("run").coerce("yes")
