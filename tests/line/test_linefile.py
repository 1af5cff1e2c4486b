"""Line files: the shipped ones load; mistakes name file, line, key path and expectation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from twin.errors import LineFileError
from twin.line.linefile import available_lines, load_line
from twin.profile import Profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(available_lines()))
def test_every_shipped_line_loads(name: str, mes: Profile) -> None:
    line, profile = load_line(name, profile=mes)
    assert line.stations and profile.name == line.profile_ref


def test_line_a02_is_a_full_line(mes: Profile) -> None:
    line, profile = load_line("line-A02", profile=mes)
    processes = {s.process for s in line.stations}
    assert {"slurry_mixing", "coating", "winding", "xray", "baking", "injection_1", "formation", "sorting"} <= processes
    called = {n for s in line.stations for n in line.station_interfaces(s)}
    mes_side = {op.operation_id for op in profile if op.direction != "mes-to-equipment"}
    assert called == mes_side, "every one of the 58 MES interfaces is called by some station"
    assert len(mes_side) == 58


def test_station_attributes_other_parts_rely_on(mes: Profile) -> None:
    line, _ = load_line("line-A02", profile=mes)
    winding = line.station("winding")
    assert winding.equipment_codes()[:2] == ["A02-WIND-01", "A02-WIND-02"]
    assert winding.process == "winding" and winding.count == 6 and "CollingPolar" in winding.interfaces
    assert [s.id for s in line.stations][:3] == ["warehouse", "glue-making", "slurry-mixing"]
    assert line.buffers["electrode-rolls"].lanes == ("cathode", "anode")
    assert line.periods["heartbeat_s"] == 10 and line.periods["down_reason_after_s"] == 180


def _broken(tmp_path: Path, old: str, new: str, name: str = "line-A02") -> Path:
    text = (ROOT / "lines" / f"{name}.yaml").read_text(encoding="utf-8")
    assert old in text, old
    f = tmp_path / "broken.yaml"
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    return f


def _line_of(f: Path, needle: str) -> int:
    return next(i for i, t in enumerate(f.read_text().splitlines(), 1) if needle in t)


def test_wrong_type_names_file_line_and_key(tmp_path: Path, mes: Profile) -> None:
    f = _broken(tmp_path, "count: 6, code: A02-WIND", "count: four, code: A02-WIND")
    with pytest.raises(LineFileError) as info:
        load_line(f, profile=mes)
    assert str(info.value).startswith(f"{f}:{_line_of(f, 'count: four')}: stations[6].count: 'four' is not of type")


def test_unknown_interface_is_named_with_a_suggestion(tmp_path: Path, mes: Profile) -> None:
    f = _broken(tmp_path, "interfaces: [Feeding, HalfFeeding, AgvUpMaterial, CollingPolar]",
                "interfaces: [Feeding, Halffeedin, AgvUpMaterial, CollingPolar]")
    with pytest.raises(LineFileError, match=r"stations\[6\]\.interfaces\[1\]: no operation 'Halffeedin'.*HalfFeeding"):
        load_line(f, profile=mes)


def test_unknown_key_is_refused(tmp_path: Path, mes: Profile) -> None:
    f = _broken(tmp_path, "periods:", "period:")
    with pytest.raises(LineFileError, match=r"broken.yaml:\d+: \(top\): Additional properties"):
        load_line(f, profile=mes)


def test_unknown_line_lists_known_ones() -> None:
    with pytest.raises(LineFileError, match="line-A02"):
        load_line("line-Z99")


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        ("input: wound, output: pressed", "input: wond, output: pressed", "input: wond",
         r"stations\[7\]\.input: buffer 'wond' is not declared"),
        ("interfaces: [Inbound, Outbound]}\n  - {id: xray", "interfaces: [Outbound]}\n  - {id: xray",
         "interfaces: [Outbound]",
         r"stations\[7\]\.interfaces: list exactly one of Inbound, InboundBindJzSingleAsync \(found 0\)"),
        ("AgvUpMaterial, CollingPolar]", "AgvUpMaterial, CollingPolar, Outbound]", "CollingPolar, Outbound]",
         r"stations\[6\]\.interfaces: list exactly one of CollingPolar, Outbound \(found 2\)"),
        ("options: {m_per_unit: 5.5}", "options: {m_per_unt: 5.5}", "m_per_unt",
         r"stations\[6\]\.options\.m_per_unt: archetype winding has no option 'm_per_unt'"),
        ("options: {m_per_unit: 5.5}", "options: {m_per_unit: fast}", "m_per_unit: fast",
         r"stations\[6\]\.options\.m_per_unit: expected float, got 'fast'"),
        ("consumes: {SEP: 11}", "consumes: {SEPARATOR: 11}", "SEPARATOR",
         r"stations\[6\]\.consumes\.SEPARATOR: no material 'SEPARATOR' in the catalogue"),
        ("tray: {size: 32, pool: bake,", "tray: {size: 32, pool: oven,", "pool: oven",
         r"stations\[20\]\.tray\.pool: tray pool 'oven' is not declared"),
        ("cycle: {dist: normal, mean_s: 3600, sd_s: 60}", "cycle: {dist: normal, sd_s: 60}",
         "cycle: {dist: normal, sd_s",
         r"stations\[3\]\.cycle: dist 'normal' needs mean_s"),
        ("  wound: {capacity: 120}\n", "  wound: {capacity: 120}\n  spare: {capacity: 5}\n", "spare:",
         r"buffers\.spare: no station gives to this buffer"),
    ],
)
def test_semantic_mistakes_name_file_line_and_key(
    tmp_path: Path, mes: Profile, old: str, new: str, needle: str, expected: str
) -> None:
    f = _broken(tmp_path, old, new)
    with pytest.raises(LineFileError) as info:
        load_line(f, profile=mes)
    msg = str(info.value)
    assert msg.startswith(f"{f}:{_line_of(f, needle)}: "), msg
    assert re.search(expected, msg), msg


def test_feeding_needs_consumes(tmp_path: Path, mes: Profile) -> None:
    f = _broken(tmp_path, "consumes: {MYL: 1}, ", "")
    with pytest.raises(LineFileError, match=r"stations\[15\]\.interfaces\[0\]: Feeding \(2\.10\) loads raw material"):
        load_line(f, profile=mes)
