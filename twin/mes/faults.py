"""Faults injected on purpose, so users can rehearse bad days: added latency (a distribution, for all
interfaces or per interface), an error rate, an outage window (connections refused, or requests that
hang), and a slow database. Set from command-line flags and changed at run time through the admin API
(``/admin/faults``); a client sees them as slower answers, refusals with code 9001 (or HTTP 500),
refused connections, timeouts, and slower acknowledgements.

Latency specs (milliseconds): ``fixed:MS``, ``uniform:LOW:HIGH``, ``normal:MEAN:SD`` (cut at 0),
``lognormal:MEDIAN:P99``, ``exp:MEAN``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.errors import ConfigError

_Z99 = 2.3263478740408408  # the 99th percentile of the standard normal
KINDS = ("fixed", "uniform", "normal", "lognormal", "exp")
OUTAGE_MODES = ("refuse", "hang")
ERROR_KINDS = ("code", "http500")
MAX_LATENCY_MS = 600_000.0  # 10 minutes: an added delay beyond any client's timeout is an outage, not latency
MAX_SLOW_DB_MS = 10_000.0  # 10 s per commit: slower than any disk, and the writer still answers SIGTERM
MAX_OUTAGE_S = 7 * 86_400.0  # an outage window starts and lasts at most a week


@dataclass(frozen=True, slots=True)
class Latency:
    """A delay distribution, parameters in milliseconds."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Latency:
        if not isinstance(spec, str):
            raise ConfigError(f"latency {spec!r}: must be text like {_EXAMPLES['lognormal']!r} (milliseconds)")
        kind, *args = spec.strip().split(":")
        need = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2, "exp": 1}
        if kind not in need:
            raise ConfigError(f"latency {spec!r}: the distribution must be one of {', '.join(KINDS)}")
        if len(args) != need[kind]:
            raise ConfigError(f"latency {spec!r}: {kind} takes {need[kind]} number(s) in ms, e.g. {_EXAMPLES[kind]}")
        try:
            values = [float(a) for a in args]
        except ValueError:
            raise ConfigError(f"latency {spec!r}: parameters must be numbers of milliseconds") from None
        if any(not 0 <= v <= MAX_LATENCY_MS for v in values):  # NaN and infinity fail this too
            raise ConfigError(f"latency {spec!r}: parameters must be from 0 to {MAX_LATENCY_MS:g} ms")
        if kind == "uniform" and values[1] < values[0]:
            raise ConfigError(f"latency {spec!r}: uniform needs LOW <= HIGH")
        if kind == "lognormal" and not 0 < values[0] <= values[1]:
            raise ConfigError(f"latency {spec!r}: lognormal needs 0 < MEDIAN <= P99")
        return cls(kind, values[0], values[1] if len(values) > 1 else 0.0)

    def __str__(self) -> str:
        return f"{self.kind}:{self.a:g}" + (f":{self.b:g}" if self.kind in ("uniform", "normal", "lognormal") else "")

    def sample_s(self, rng: np.random.Generator) -> float:
        if self.kind == "fixed":
            ms = self.a
        elif self.kind == "uniform":
            ms = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            ms = max(0.0, rng.normal(self.a, self.b))
        elif self.kind == "lognormal":
            sigma = (math.log(self.b) - math.log(self.a)) / _Z99
            ms = rng.lognormal(math.log(self.a), sigma)
        else:
            ms = rng.exponential(self.a)
        return min(float(ms), MAX_LATENCY_MS) / 1000.0  # a long tail is cut where an outage would begin


_EXAMPLES = {
    "fixed": "fixed:50",
    "uniform": "uniform:10:80",
    "normal": "normal:40:10",
    "lognormal": "lognormal:20:200",
    "exp": "exp:30",
}


@dataclass(slots=True)
class PlannedOutage:
    """A window in loop time during which the MES refuses connections or lets requests hang."""

    start: float
    end: float
    mode: str


@dataclass(slots=True)
class Faults:
    latency: Latency | None = None
    latency_for: dict[str, Latency] = field(default_factory=dict)
    error_rate: float = 0.0
    error_rate_for: dict[str, float] = field(default_factory=dict)
    error_kind: str = "code"
    outage: PlannedOutage | None = None
    slow_db_ms: float = 0.0
    seed: int | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng = np.random.default_rng(self.seed)
        _check_rate(self.error_rate, "error rate")
        for op, rate in self.error_rate_for.items():
            _check_rate(rate, f"error rate of {op}")
        if self.error_kind not in ERROR_KINDS:
            raise ConfigError(f"error kind must be one of {', '.join(ERROR_KINDS)}, got {self.error_kind!r}")
        self.slow_db_ms = _check_number(self.slow_db_ms, "slow_db_ms", MAX_SLOW_DB_MS)

    def active(self) -> bool:
        return bool(
            self.latency or self.latency_for or self.error_rate or self.error_rate_for or self.outage or self.slow_db_ms
        )

    def delay_s(self, op_id: str) -> float:
        dist = self.latency_for.get(op_id, self.latency)
        return dist.sample_s(self.rng) if dist is not None else 0.0

    def fails(self, op_id: str) -> bool:
        rate = self.error_rate_for.get(op_id, self.error_rate)
        return rate > 0 and self.rng.random() < rate

    def outage_mode(self, now: float) -> str | None:
        out = self.outage
        if out is None:
            return None
        if now >= out.end:
            self.outage = None
            return None
        return out.mode if now >= out.start else None

    def to_json(self, now: float) -> dict[str, Any]:
        out = self.outage
        return {
            "latency": str(self.latency) if self.latency else None,
            "latency_for": {k: str(v) for k, v in self.latency_for.items()},
            "error_rate": self.error_rate,
            "error_rate_for": dict(self.error_rate_for),
            "error_kind": self.error_kind,
            "outage": None
            if out is None
            else {
                "mode": out.mode,
                "starts_in_s": round(max(0.0, out.start - now), 3),
                "ends_in_s": round(max(0.0, out.end - now), 3),
            },
            "slow_db_ms": self.slow_db_ms,
        }

    def check_operations(self, known: Collection[str]) -> None:
        """Per-interface faults must name interfaces the MES serves: a typo would otherwise inject nothing."""
        check_operations([*self.latency_for, *self.error_rate_for], known)

    def update(self, doc: dict[str, Any], now: float, *, operations: Collection[str] | None = None) -> None:
        """Change the faults named in ``doc`` (the admin API's JSON); others stay as they are.

        With ``operations``, per-interface entries naming another interface are refused before anything
        changes."""
        if not isinstance(doc, dict):
            raise ConfigError("faults must be a JSON object")
        for key in ("latency_for", "error_rate_for"):
            entries = doc.get(key) or {}
            if not isinstance(entries, dict):
                raise ConfigError(f'{key} must be an object like {{"Inbound": ...}}, got {entries!r}')
            if operations is not None:
                check_operations(entries, operations)
        unknown = set(doc) - {
            "latency",
            "latency_for",
            "error_rate",
            "error_rate_for",
            "error_kind",
            "outage",
            "slow_db_ms",
        }
        if unknown:
            raise ConfigError(
                f"unknown fault(s) {', '.join(sorted(unknown))}; known: latency, latency_for, "
                f"error_rate, error_rate_for, error_kind, outage, slow_db_ms"
            )
        # Everything is checked first, then set: a refused document changes nothing.
        new: dict[str, Any] = {}
        if "latency" in doc:
            new["latency"] = None if doc["latency"] in (None, "") else Latency.parse(doc["latency"])
        if "latency_for" in doc:
            new["latency_for"] = {str(k): Latency.parse(v) for k, v in (doc["latency_for"] or {}).items()}
        if "error_rate" in doc:
            new["error_rate"] = _check_rate(doc["error_rate"] if doc["error_rate"] is not None else 0.0, "error_rate")
        if "error_rate_for" in doc:
            new["error_rate_for"] = {
                str(k): _check_rate(v, f"error_rate_for.{k}") for k, v in (doc["error_rate_for"] or {}).items()
            }
        if "error_kind" in doc:
            if doc["error_kind"] not in ERROR_KINDS:
                raise ConfigError(f"error_kind must be one of {', '.join(ERROR_KINDS)}, got {doc['error_kind']!r}")
            new["error_kind"] = doc["error_kind"]
        if "outage" in doc:
            new["outage"] = parse_outage(doc["outage"], now) if doc["outage"] else None
        if "slow_db_ms" in doc:
            value = doc["slow_db_ms"] if doc["slow_db_ms"] is not None else 0.0
            new["slow_db_ms"] = _check_number(value, "slow_db_ms", MAX_SLOW_DB_MS)
        for key, value in new.items():
            setattr(self, key, value)


def check_operations(names: Collection[str], known: Collection[str]) -> None:
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else " (operation ids, e.g. Inbound, Heartbeat)"
            raise ConfigError(f"fault for {name!r}: the MES serves no interface of that name{hint}")


def parse_outage(spec: dict[str, Any], now: float) -> PlannedOutage:
    """``{"after_s": 0, "for_s": 5, "mode": "refuse"}`` as a window from now."""
    if not isinstance(spec, dict):
        raise ConfigError('outage must be an object like {"after_s": 0, "for_s": 5, "mode": "refuse"}')
    mode = spec.get("mode", "refuse")
    if mode not in OUTAGE_MODES:
        raise ConfigError(f"outage mode must be one of {', '.join(OUTAGE_MODES)}, got {mode!r}")
    unknown = set(spec) - {"after_s", "for_s", "mode"}
    if unknown:
        raise ConfigError(f"outage takes after_s, for_s and mode, not {', '.join(sorted(map(str, unknown)))}")
    after = _check_number(spec.get("after_s", 0.0), "outage.after_s", MAX_OUTAGE_S)
    length = _check_number(spec.get("for_s", 0.0), "outage.for_s", MAX_OUTAGE_S)
    if length <= 0:
        raise ConfigError("outage.for_s must be more than 0 seconds")
    return PlannedOutage(now + after, now + after + length, mode)


def _check_rate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _check_number(value: Any, what: str, maximum: float) -> float:
    """A finite number from 0 to ``maximum`` (NaN, infinity, booleans and text are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= maximum:
        raise ConfigError(f"{what} must be a number from 0 to {maximum:g}, got {value!r}")
    return float(value)
