"""Random durations from the line file: cycle times, repair times, MES latency, changeovers.

A duration is written in the line file as a number (constant seconds) or a mapping such as
``{dist: lognormal, mean_s: 2.5, cv: 0.05}``. Each becomes a ``Dist``: its mean (for ideal rates and OEE)
and a sampler that draws from a ``random.Random`` owned by one equipment, so one seed gives one result
whatever else the line contains. Scalar draws use the standard library (``random`` is made for one value at a
time; numpy pays ~1 µs of call overhead per scalar, more than the draw itself).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Z99 = 2.3263478740408408  # standard normal quantile of 0.99

KINDS = ("constant", "exponential", "normal", "lognormal", "gamma", "uniform", "triangular")


@dataclass(frozen=True, slots=True)
class Dist:
    """A distribution of non-negative durations in seconds."""

    kind: str
    mean: float
    draw: Callable[[random.Random], float]
    text: str

    def __call__(self, rng: random.Random) -> float:
        return self.draw(rng)

    def __str__(self) -> str:
        return self.text


class Pooled:
    """Draws from a fixed pool of pre-drawn values: one ``getrandbits`` instead of a transcendental draw.

    For values drawn millions of times a run where a pool of 4,096 samples is indistinguishable from the
    distribution (MES latency, product parameters), this halves the cost of a draw.
    """

    __slots__ = ("bits", "mean", "values")

    def __init__(self, values: list[Any], bits: int) -> None:
        self.values = values
        self.bits = bits
        self.mean = sum(values) / len(values) if values and isinstance(values[0], int | float) else 0.0

    def draw(self, rng: random.Random) -> Any:
        return self.values[rng.getrandbits(self.bits)]

    __call__ = draw


def pooled(dist: Dist, seed: int, bits: int = 12) -> Pooled:
    """A pool of ``2**bits`` values of ``dist`` drawn with its own seeded stream."""
    source = random.Random(seed)
    return Pooled([dist.draw(source) for _ in range(1 << bits)], bits)


def constant(value_s: float) -> Dist:
    return Dist("constant", float(value_s), lambda _rng, v=float(value_s): v, f"{value_s:g} s")


def _need(spec: Mapping[str, Any], *keys: str) -> list[float]:
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ValueError(f"dist {spec.get('dist')!r} needs {', '.join(missing)}")
    return [float(spec[k]) for k in keys]


def _lognormal(spec: Mapping[str, Any]) -> Dist:
    if "median_s" in spec:
        median, p99 = _need(spec, "median_s", "p99_s")
        if p99 <= median:
            raise ValueError("lognormal p99_s must be greater than median_s")
        mu, sigma = math.log(median), math.log(p99 / median) / Z99
    else:
        mean, cv = _need(spec, "mean_s", "cv")
        sigma = math.sqrt(math.log1p(cv * cv))
        mu = math.log(mean) - sigma * sigma / 2
    mean = math.exp(mu + sigma * sigma / 2)
    return Dist("lognormal", mean, lambda rng: rng.lognormvariate(mu, sigma), f"lognormal mean {mean:.4g} s")


def _normal(spec: Mapping[str, Any]) -> Dist:
    (mean,) = _need(spec, "mean_s")
    sd = float(spec["sd_s"]) if "sd_s" in spec else mean * float(spec.get("cv", 0.0))
    floor = float(spec.get("min_s", 0.0))
    return Dist("normal", mean, lambda rng: max(floor, rng.gauss(mean, sd)), f"normal {mean:g}±{sd:.3g} s")


def _gamma(spec: Mapping[str, Any]) -> Dist:
    mean, cv = _need(spec, "mean_s", "cv")
    shape = 1.0 / (cv * cv)
    scale = mean / shape
    return Dist("gamma", mean, lambda rng: rng.gammavariate(shape, scale), f"gamma mean {mean:g} s cv {cv:g}")


def make_dist(spec: float | int | Mapping[str, Any]) -> Dist:
    """A ``Dist`` from a line-file value; a ValueError names what is missing or wrong."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        if spec < 0:
            raise ValueError(f"a duration must be >= 0, got {spec}")
        return constant(spec)
    if not isinstance(spec, Mapping):
        raise ValueError(f"expected seconds or a {{dist: ...}} mapping, got {spec!r}")
    kind = spec.get("dist", "constant")
    if kind == "constant":
        return constant(*_need(spec, "value_s"))
    if kind == "exponential":
        (mean,) = _need(spec, "mean_s")
        return Dist("exponential", mean, lambda rng: rng.expovariate(1.0 / mean), f"exponential mean {mean:g} s")
    if kind == "normal":
        return _normal(spec)
    if kind == "lognormal":
        return _lognormal(spec)
    if kind == "gamma":
        return _gamma(spec)
    if kind == "uniform":
        lo, hi = _need(spec, "min_s", "max_s")
        return Dist("uniform", (lo + hi) / 2, lambda rng: rng.uniform(lo, hi), f"uniform {lo:g}-{hi:g} s")
    if kind == "triangular":
        lo, mode, hi = _need(spec, "min_s", "mode_s", "max_s")
        return Dist(
            "triangular",
            (lo + mode + hi) / 3,
            lambda rng: rng.triangular(lo, hi, mode),
            f"triangular {lo:g}/{mode:g}/{hi:g} s",
        )
    raise ValueError(f"unknown dist {kind!r}; expected one of {', '.join(KINDS)}")


def cycle_dist(
    *, cycle: Any = None, cycle_s: float | None = None, rate_ppm: float | None = None, cv: float = 0.0
) -> Dist:
    """The cycle-time distribution of a station: an explicit ``cycle``, else ``cycle_s`` or ``rate_ppm``.

    With a coefficient of variation the spread is a gamma distribution (positive, right-skewed, as machine
    cycle times are); without, the cycle is constant.
    """
    if cycle is not None:
        return make_dist(cycle)
    mean = cycle_s if cycle_s is not None else (60.0 / rate_ppm if rate_ppm else None)
    if mean is None:
        raise ValueError("a station needs cycle, cycle_s or rate_ppm")
    return make_dist({"dist": "gamma", "mean_s": mean, "cv": cv}) if cv > 0 else constant(mean)
