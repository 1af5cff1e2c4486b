"""Run a line and read its KPIs: the library function behind ``twin run``.

``simulate(line_ref, RunConfig(...))`` builds the model, runs it (offline as fast as the CPU allows, or
through the bridge at realtime or N x speed against the in-process MES model), and returns a ``RunResult``
with the KPIs and the figures of the run itself (wall time, simulated seconds per wall second, events).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin.errors import ConfigError
from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile, load_profile
from twin.sim.builder import Simulation
from twin.sim.kpi import Kpis, compute


@dataclass
class RunConfig:
    """How to run: mode (speed None = offline), length, seed, copies, warm or cold start."""

    duration_s: float = 3600.0
    seed: int = 0
    scale: int = 1
    speed: float | None = None
    warmup_s: float | None = None
    cold: bool = False
    latency: Any = None
    refusal_rate: float | None = None
    profile_ref: str | None = None

    @property
    def mode(self) -> str:
        if self.speed is None:
            return "offline"
        return "realtime" if self.speed == 1 else f"speed {self.speed:g}"


@dataclass
class RunResult:
    line: Line
    config: RunConfig
    kpis: Kpis
    wall_s: float
    cpu_s: float
    events: int
    calls: int
    warmup_note: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sim_per_wall(self) -> float:
        return self.config.duration_s / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line.name,
            "mode": self.config.mode,
            "seed": self.config.seed,
            "scale": self.config.scale,
            "duration_s": self.config.duration_s,
            "wall_s": round(self.wall_s, 3),
            "sim_s_per_wall_s": round(self.sim_per_wall, 1),
            "events": self.events,
            "calls": self.calls,
            "warmup": self.warmup_note,
            "kpis": self.kpis.to_dict(),
        }


def effective_warmup(line: Line, config: RunConfig) -> tuple[float, str]:
    """The warm-up actually excluded: none when the run is shorter than twice the warm-up."""
    warmup = line.warmup_s if config.warmup_s is None else config.warmup_s
    if warmup <= 0:
        return 0.0, "none"
    if config.duration_s < 2 * warmup:
        return 0.0, f"none (the run is shorter than twice the {warmup / 3600:g} h warm-up)"
    return warmup, f"first {warmup / 3600:g} h excluded"


def build(line: Line, profile: Profile, config: RunConfig, **kwargs: Any) -> Simulation:
    warmup, _ = effective_warmup(line, config)
    return Simulation(
        line,
        profile,
        seed=config.seed,
        scale=config.scale,
        speed=config.speed,
        cold=config.cold,
        latency=config.latency,
        refusal_rate=config.refusal_rate,
        warmup_s=warmup,
        **kwargs,
    )


def simulate(
    line_ref: str | Line,
    config: RunConfig,
    *,
    progress: Callable[[float], None] | None = None,
    profile: Profile | None = None,
) -> RunResult:
    """Build and run a line; return its KPIs and how fast the run went."""
    if isinstance(line_ref, Line):
        line = line_ref
        prof = profile or load_profile(config.profile_ref or line.profile_ref)
    else:
        override = load_profile(config.profile_ref) if config.profile_ref else profile
        line, prof = load_line(line_ref, profile=override)
    if config.scale < 1:
        raise ConfigError(f"--scale must be at least 1, got {config.scale}")
    if config.duration_s <= 0:
        raise ConfigError(f"--duration must be positive, got {config.duration_s:g} s")
    sim = build(line, prof, config)
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run(config.duration_s, progress=progress)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    _, note = effective_warmup(line, config)
    return RunResult(
        line=line,
        config=config,
        kpis=compute(sim),
        wall_s=wall,
        cpu_s=cpu,
        events=events_of(sim),
        calls=sim.traffic.total,
        warmup_note=note,
    )


def events_of(sim: Simulation) -> int:
    """SimPy events created so far (SimPy numbers every scheduled event with an increasing id)."""
    counter = sim.env._eid  # itertools.count: reading it advances it by one, which is harmless here
    return next(counter)
