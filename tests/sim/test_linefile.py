"""Line files: the shipped ones load; mistakes name file, line, key path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.errors import LineFileError
from twin.sim.linefile import available_lines, load_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(available_lines()))
def test_every_shipped_line_loads(name: str) -> None:
    line, profile = load_line(name)
    assert line.stations and profile.name == line.profile_ref


def test_line_a02_is_a_full_line() -> None:
    line, profile = load_line("line-A02")
    processes = {s.process for s in line.stations}
    assert {"slurry_mixing", "coating", "winding", "xray", "baking", "injection_1", "formation", "sorting"} <= processes
    called = {n for s in line.stations for n in line.station_interfaces(s)}
    mes_side = {op.operation_id for op in profile if op.direction != "mes-to-equipment"}
    assert called == mes_side, "every one of the 58 MES interfaces is called by some station"


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "lines" / "line-A02.yaml").read_text(encoding="utf-8").replace(old, new, 1)
    f = tmp_path / "broken.yaml"
    f.write_text(text, encoding="utf-8")
    return f


def test_wrong_type_names_file_line_and_key(tmp_path: Path) -> None:
    f = _broken(tmp_path, "count: 4, code: A02-WIND", "count: four, code: A02-WIND")
    with pytest.raises(LineFileError) as info:
        load_line(f)
    msg = str(info.value)
    line_no = next(i for i, t in enumerate(f.read_text().splitlines(), 1) if "count: four" in t)
    assert msg.startswith(f"{f}:{line_no}: stations[6].count: 'four' is not of type 'integer'")


def test_unknown_interface_is_named_with_a_suggestion(tmp_path: Path) -> None:
    f = _broken(tmp_path, "interfaces: [Feeding, HalfFeeding, CollingPolar]", "interfaces: [Feeding, Halffeedin]")
    with pytest.raises(LineFileError, match=r"stations\[6\]\.interfaces\[1\]: no operation 'Halffeedin'.*HalfFeeding"):
        load_line(f)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    f = _broken(tmp_path, "periods:", "period:")
    with pytest.raises(LineFileError, match=r"broken.yaml:\d+: \(top\): Additional properties"):
        load_line(f)


def test_unknown_line_lists_known_ones() -> None:
    with pytest.raises(LineFileError, match="line-A02"):
        load_line("line-Z99")
