"""What a line is once its file is read: stations, buffers and the line, plain frozen values.

Kept apart from ``linefile`` (finding, parsing and checking the YAML) so the checks in ``linecheck`` and every
reader of a line (sim, mes, hil, energy) can name these types without importing the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.line.catalogue import Catalogue
from twin.line.dist import cycle_dist

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
