"""Load shapes of a networked run: how the pace of the line (and so the MES load) changes over the run.

The load on the MES follows the line's takt; a shape changes the pace, never the behaviour:

* ``steady``          the run's speed throughout (the default);
* ``ramp:FROM:TO``    the speed goes from FROM to TO times the run's speed, in ten even steps over the run;
* ``step:F@AT``       the run's speed until AT (``10m``, ``90s`` or ``50%`` of the run), then F times it;
* ``storm[:W]@AT``    a shift start at AT: every host logs in again (2.1) and verifies its startup
                      parameters (2.7-2.9) within W (default 1 minute), on top of the steady traffic.

The speed changes are clock segments (``twin.sim.clock.Clock``); the storm is a SimPy process per host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from twin.durations import parse_duration
from twin.errors import ConfigError

STEPS = 10
_SHAPE = re.compile(
    r"^(?:(?P<steady>steady)"
    r"|ramp:(?P<r_from>[0-9.]+):(?P<r_to>[0-9.]+)"
    r"|step:(?P<s_factor>[0-9.]+)@(?P<s_at>[0-9.]+[a-z%]*)"
    r"|storm(?::(?P<w>[0-9.]+[a-z]*))?(?:@(?P<t_at>[0-9.]+[a-z%]*))?)$"
)


@dataclass(frozen=True)
class LoadShape:
    kind: str
    text: str
    ramp: tuple[float, float] = (1.0, 1.0)
    factor: float = 1.0
    at: str = "0"
    window: str = "60s"

    def segments(
        self, speed: float, duration_s: float, parse_duration: Callable[[str], float]
    ) -> list[tuple[float, float]]:
        """``(virtual_s, speed)`` from each point on."""
        if self.kind == "ramp":
            lo, hi = self.ramp
            return [(duration_s * i / STEPS, speed * (lo + (hi - lo) * i / (STEPS - 1))) for i in range(STEPS)]
        if self.kind == "step":
            at = self.at_s(duration_s, parse_duration)
            return [(0.0, speed), (at, speed * self.factor)] if 0 < at < duration_s else [(0.0, speed * self.factor)]
        return [(0.0, speed)]

    def at_s(self, duration_s: float, parse_duration: Callable[[str], float]) -> float:
        if self.at.endswith("%"):
            return duration_s * float(self.at[:-1]) / 100.0
        return parse_duration(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.kind, "text": self.text}


def parse_shape(text: str) -> LoadShape:
    """``steady``, ``ramp:1:3``, ``step:2@50%``, ``storm@5m``, ``storm:30s@10m``."""
    m = _SHAPE.match(text.strip())
    if m is None:
        raise ConfigError(
            f"load shape {text!r}: expected steady, ramp:FROM:TO, step:FACTOR@AT or storm[:WINDOW]@AT "
            "(e.g. ramp:1:3, step:2@50%, storm@5m)"
        )
    g = m.groupdict()
    if g["r_from"] is not None:
        lo, hi = float(g["r_from"]), float(g["r_to"])
        if lo <= 0 or hi <= 0:
            raise ConfigError(f"load shape {text!r}: a ramp goes between two positive factors")
        return LoadShape("ramp", text, ramp=(lo, hi))
    if g["s_factor"] is not None:
        if float(g["s_factor"]) <= 0:
            raise ConfigError(f"load shape {text!r}: the step factor must be positive")
        return LoadShape("step", text, factor=float(g["s_factor"]), at=g["s_at"])
    if g["steady"]:
        return LoadShape("steady", text)
    return LoadShape("storm", text, at=g["t_at"] or "0", window=g["w"] or "60s")


def start_storm(sim: Any, at_s: float, window_s: float) -> None:
    """At ``at_s`` every host of every copy logs in again and verifies, spread evenly over ``window_s``."""
    hosts = sim.equipment
    for i, eq in enumerate(hosts):
        sim.env.process(_shift_start(eq, at_s + window_s * i / max(1, len(hosts))))


def _shift_start(eq: Any, at_s: float) -> Generator[Any, Any, None]:
    yield eq.env.timeout(max(0.0, at_s - eq.env.now))
    yield from eq.login()
    yield from eq.verify()


def check_shape(text: str, duration_s: float) -> None:
    """A load shape that parses, and whose step or storm falls inside the run (else it would never happen,
    or, for a step, silently apply to the whole run)."""
    try:
        shape = parse_shape(text)
        at = shape.at_s(duration_s, parse_duration) if shape.kind in ("step", "storm") else 0.0
        if shape.kind == "storm":
            parse_duration(shape.window)
    except ValueError as exc:  # ConfigError is one; a number such as 1.2.3 is another
        raise ConfigError(str(exc) if isinstance(exc, ConfigError) else f"load shape {text!r}: {exc}") from None
    if (shape.kind == "step" and not 0 < at < duration_s) or (shape.kind == "storm" and not 0 <= at < duration_s):
        raise ConfigError(
            f"load shape {text!r}: {shape.kind} at {at:g} s is outside the run (0 to {duration_s:g} s virtual)"
        )
