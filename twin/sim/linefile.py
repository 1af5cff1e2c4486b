"""Line files: load, check against ``lines/schema/line.schema.yaml`` and the profile, report mistakes.

A mistake names the file, the line in it, the key path and what was expected, e.g.
``lines/x.yaml:14: stations[2].count: expected integer, got "four"``. Positions come from the YAML node
tree (``yaml.compose``), so they point at the offending value itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from twin.datafile import DataFile, find_named
from twin.errors import LineFileError, UnknownOperation
from twin.profile import Profile, load_profile
from twin.sim.catalogue import Catalogue, catalogue_dirs, load_catalogue
from twin.sim.dist import cycle_dist
from twin.sim.linecheck import check_line

DEFAULT_PERIODS = {
    "heartbeat_s": 10.0,
    "process_params_s": 60.0,
    "tool_life_s": 43200.0,
    "time_sync_s": 86400.0,
    "standby_after_s": 60.0,
    "down_reason_after_s": 180.0,
    "long_stop_s": 180.0,
    "operator_s": 45.0,
    "agv_s": 120.0,
    "clock_drift_ppm": 0.0,
    "interlock_clear_s": 600.0,
    "login_retry_s": 5.0,
}
DEFAULT_OFFLINE_MES: dict[str, Any] = {
    "latency": {"dist": "lognormal", "median_s": 0.004, "p99_s": 0.03},
    "refusal_rate": 0.0,
    "downgrade_rate": 0.01,
    "electrolyte_batch_s": 28800.0,
}
DEFAULT_START = "2026-11-23T06:00:00+08:00"
COPY_SUFFIX = "-X"


def copy_code(code: str, copy: int) -> str:
    """The equipment code of copy ``copy`` of a line (``--scale``): the first copy keeps the file's codes."""
    return code if copy == 1 else f"{code}{COPY_SUFFIX}{copy:02d}"


def base_code(code: str) -> str:
    """The line file's code of an equipment of any copy (inverse of ``copy_code``)."""
    head, sep, tail = code.rpartition(COPY_SUFFIX)
    return head if sep and len(tail) >= 2 and tail.isdigit() else code
DEFAULT_CATALOGUE = "prismatic-lfp"


def line_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    dirs = [Path.cwd() / "lines"]
    if env := os.environ.get("TWIN_LINES"):
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs += [here.parent / "lines", here / "_data" / "lines"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != o.resolve() for o in out):
            out.append(d)
    return out


def available_lines() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in line_dirs():
        for path in sorted(d.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_line(ref: str | Path) -> Path:
    return find_named(ref, available_lines(), LineFileError, "line", "the known lines")


def _schema() -> dict[str, Any]:
    for d in line_dirs():
        candidate = d / "schema" / "line.schema.yaml"
        if candidate.is_file():
            return yaml.safe_load(candidate.read_text(encoding="utf-8"))
    raise LineFileError("the line-file schema lines/schema/line.schema.yaml is missing from this installation")


@dataclass(frozen=True, slots=True)
class Station:
    """One station of the line: ``count`` equipment of one process, with its routing and behaviour."""

    id: str
    process: str
    count: int
    code: str
    interfaces: tuple[str, ...]
    name_cn: str = ""
    segment: str = ""
    rate_ppm: float | None = None
    cycle_s: float | None = None
    unit: str = ""
    note: str = ""
    archetype: str = ""
    input: str | None = None
    output: str | None = None
    lanes: tuple[str, ...] = ()
    cycle: Any = None
    cycle_cv: float = 0.0
    ng_rate: float = 0.0
    consumes: dict[str, float] = field(default_factory=dict)
    reliability: dict[str, Any] = field(default_factory=dict)
    changeover: dict[str, Any] = field(default_factory=dict)
    tray: dict[str, Any] = field(default_factory=dict)
    slots: int = 1
    rack_size: int = 0
    prefill: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    power_kw: tuple[float, ...] | None = None  # per equipment: run, idle, down (twin run --energy)
    plc: dict[str, Any] | None = None  # one equipment bound to a PLC (twin.hil.stations; checked when a run opens it)

    def equipment_codes(self) -> list[str]:
        return [f"{self.code}-{i:02d}" for i in range(1, self.count + 1)]

    def ideal_cycle_s(self) -> float:
        """Mean seconds per cycle of one equipment (a unit, a roll, a batch or a tray)."""
        return cycle_dist(cycle=self.cycle, cycle_s=self.cycle_s, rate_ppm=self.rate_ppm, cv=self.cycle_cv).mean


@dataclass(frozen=True, slots=True)
class BufferSpec:
    id: str
    capacity: int | None = None
    lanes: tuple[str, ...] = ()
    initial: int = 0
    sink: bool = False
    note: str = ""

    def names(self) -> list[str]:
        """One name per lane (``electrode-rolls.cathode``), or the id when the buffer has no lanes."""
        return [f"{self.id}.{lane}" for lane in self.lanes] if self.lanes else [self.id]


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    title: str
    profile_ref: str
    stations: tuple[Station, ...]
    common_interfaces: tuple[str, ...]
    periods: dict[str, float] = field(default_factory=dict)
    figures_note: str = ""
    source: Path | None = None
    catalogue: Catalogue | None = None
    product: str = ""
    tag: str = ""
    start: str = DEFAULT_START
    warmup_s: float = 0.0
    preroll_s: float = 172800.0  # longest pre-roll through a foreign MES (twin.run.preroll)
    power_on_s: float = 60.0  # networked runs: each host powers on at a random moment of this window (0: at once)
    operator: dict[str, str] = field(default_factory=lambda: {"user": "op1001", "password": "pa55word"})
    offline_mes: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OFFLINE_MES))
    buffers: dict[str, BufferSpec] = field(default_factory=dict)
    tray_pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    load: str = "steady"

    def equipment_codes(self, scale: int = 1) -> list[str]:
        """Every equipment code of ``scale`` copies of the line, copy by copy (see ``copy_code``)."""
        codes = [code for st in self.stations for code in st.equipment_codes()]
        return [copy_code(code, k) for k in range(1, scale + 1) for code in codes]

    def station_interfaces(self, station: Station) -> list[str]:
        seen: dict[str, None] = dict.fromkeys(self.common_interfaces)
        seen.update(dict.fromkeys(station.interfaces))
        return list(seen)

    def equipment_count(self) -> int:
        return sum(s.count for s in self.stations)

    def station(self, station_id: str) -> Station:
        for st in self.stations:
            if st.id == station_id:
                return st
        raise KeyError(station_id)


def load_line(ref: str | Path, *, profile: Profile | None = None) -> tuple[Line, Profile]:
    """Load a line file by name or path, check it, and load (or check against) its profile."""
    path = find_line(ref)
    doc = DataFile(path, LineFileError, "line file")
    data, fail = doc.data, doc.fail

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise fail(list(err.absolute_path), err.message + more)

    prof = profile or load_profile(data["profile"])
    stations = []
    seen_ids: set[str] = set()
    for i, raw in enumerate(data["stations"]):
        if raw["id"] in seen_ids:
            raise fail(["stations", i, "id"], f"station id {raw['id']!r} is used twice")
        seen_ids.add(raw["id"])
        for j, name in enumerate(raw["interfaces"]):
            _check_operation(prof, name, lambda m, j=j, i=i: fail(["stations", i, "interfaces", j], m))
        fields = {**raw, "interfaces": tuple(raw["interfaces"]), "lanes": tuple(raw.get("lanes") or ())}
        stations.append(Station(**fields))
    for j, name in enumerate(data.get("common_interfaces") or ()):
        _check_operation(prof, name, lambda m, j=j: fail(["common_interfaces", j], m))
    catalogue = load_catalogue(
        data.get("catalogue", DEFAULT_CATALOGUE), search=catalogue_dirs(line_dirs()), relative_to=path.parent
    )
    buffers = {
        bid: BufferSpec(bid, **{**spec, "lanes": tuple(spec.get("lanes") or ())})
        for bid, spec in (data.get("buffers") or {}).items()
    }
    line = Line(
        name=data["line"],
        title=data["title"],
        profile_ref=data["profile"],
        stations=tuple(stations),
        common_interfaces=tuple(data.get("common_interfaces") or ()),
        periods={**DEFAULT_PERIODS, **(data.get("periods") or {})},
        figures_note=data.get("figures_note", ""),
        source=path,
        catalogue=catalogue,
        product=data.get("product") or catalogue.product,
        tag=data.get("tag") or "".join(ch for ch in data["line"].upper() if ch.isalnum())[-6:],
        start=data.get("start", DEFAULT_START),
        warmup_s=float(data.get("warmup_s", 0.0)),
        preroll_s=float(data.get("preroll_s", 172800.0)),
        power_on_s=float(data.get("power_on_s", 60.0)),
        operator=data.get("operator") or {"user": "op1001", "password": "pa55word"},
        offline_mes={**DEFAULT_OFFLINE_MES, **(data.get("offline_mes") or {})},
        buffers=buffers,
        tray_pools=dict(data.get("tray_pools") or {}),
        load=str(data.get("load", "steady")),
    )
    check_line(line, prof, fail)
    return line, prof


def _check_operation(profile: Profile, name: str, fail: Any) -> None:
    try:
        profile.operation(name)
    except UnknownOperation as exc:
        raise fail(str(exc)) from None
