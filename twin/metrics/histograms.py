"""Per-interface HDR histograms and counters: bounded memory however long the run.

Two histograms per interface, in microseconds: latency from the intended send time, and service time.
Histograms encode to HDR's compressed base64 form and merge exactly, so shards of a run (several
processes, Ray actors) add up to the same figures as one process would have measured.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from twin.metrics.exchange import Exchange
from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.hdrbatch import BatchedHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: anything slower is clamped to it
SIGNIFICANT_DIGITS = 3
LATE_START_S = 0.005  # a request leaving more than 5 ms after its intended time counts as a late start
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    """An empty histogram of the run's range, recording in batches (``twin.metrics.hdrbatch``)."""
    return BatchedHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _us(seconds: float) -> int:
    return min(max(int(seconds * 1e6), LOWEST_US), HIGHEST_US)


@dataclass(slots=True)
class InterfaceStats:
    latency: HdrHistogram = field(default_factory=new_histogram)
    service: HdrHistogram = field(default_factory=new_histogram)
    count: int = 0
    failures: int = 0
    late_starts: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    by_code: Counter[str] = field(default_factory=Counter)

    def summary(self, duration_s: float, *, percentiles: bool = True) -> dict[str, Any]:
        def pct(h: HdrHistogram) -> dict[str, float]:
            if not percentiles or not h.get_total_count():
                return {}
            arrays = HdrArrays(h)  # hdrh's own mean walks 45,000 slots in Python: 0.1-0.3 s a call
            out = {f"p{p:g}": float(v) / 1000 for p, v in zip(PERCENTILES, arrays.values_at(PERCENTILES), strict=True)}
            out["max"] = h.get_max_value() / 1000
            out["mean"] = arrays.mean() / 1000
            return out

        return {
            "count": self.count,
            "rate_per_s": self.count / duration_s if duration_s > 0 else 0.0,
            "failures": self.failures,
            "error_rate": self.failures / self.count if self.count else 0.0,
            "late_starts": self.late_starts,
            "by_code": dict(self.by_code),
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "latency_ms": pct(self.latency),
            "service_ms": pct(self.service),
        }


#: The outcomes of an exchange the MES never answered (``outcome``: the pool's error kinds, or none given).
NO_ANSWER_OUTCOMES = frozenset({"refused", "timeout", "reset", "bad-http", "no answer"})


def outcome(ex: Exchange) -> str:
    """The key an exchange is counted under: the business code, or the HTTP status, or the error kind."""
    if ex.status == 200 and ex.code is not None:
        return str(ex.code)
    if ex.status:
        return f"http {ex.status}"
    return ex.error or "no answer"


class LatencyBook:
    """Stats per interface (operation id), fed one exchange at a time."""

    def __init__(self) -> None:
        self.interfaces: dict[str, InterfaceStats] = {}

    def record(self, ex: Exchange, *, success: bool) -> None:
        stats = self.interfaces.get(ex.operation)
        if stats is None:
            stats = self.interfaces[ex.operation] = InterfaceStats()
        stats.count += 1
        stats.latency.record_value(_us(ex.latency_s))
        stats.service.record_value(_us(ex.service_s))
        stats.bytes_out += ex.bytes_out
        stats.bytes_in += ex.bytes_in
        stats.by_code[outcome(ex)] += 1
        if not success:
            stats.failures += 1
        if ex.start_delay_s > LATE_START_S:
            stats.late_starts += 1

    def total(self, *, histograms: bool = True) -> InterfaceStats:
        """All interfaces together (histograms merged exactly, unless only the counts are wanted)."""
        out = InterfaceStats()
        for s in self.interfaces.values():
            if histograms:
                out.latency.add(s.latency)
                out.service.add(s.service)
            out.count += s.count
            out.failures += s.failures
            out.late_starts += s.late_starts
            out.bytes_out += s.bytes_out
            out.bytes_in += s.bytes_in
            out.by_code.update(s.by_code)
        return out

    def summary(self, duration_s: float, *, percentiles: bool = True) -> dict[str, Any]:
        return {
            "total": self.total(histograms=percentiles).summary(duration_s, percentiles=percentiles),
            "interfaces": {
                op: s.summary(duration_s, percentiles=percentiles) for op, s in sorted(self.interfaces.items())
            },
        }

    # -- persistence: exact, mergeable ------------------------------------------------------------------
    def encode(self) -> dict[str, Any]:
        return {
            op: {
                "latency": s.latency.encode().decode("ascii"),
                "service": s.service.encode().decode("ascii"),
                "count": s.count,
                "failures": s.failures,
                "late_starts": s.late_starts,
                "bytes_out": s.bytes_out,
                "bytes_in": s.bytes_in,
                "by_code": dict(s.by_code),
            }
            for op, s in self.interfaces.items()
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> LatencyBook:
        book = cls()
        book.merge_encoded(data)
        return book

    def merge_encoded(self, data: dict[str, Any]) -> None:
        for op, d in data.items():
            s = self.interfaces.setdefault(op, InterfaceStats())
            s.latency.add(HdrHistogram.decode(d["latency"].encode("ascii")))
            s.service.add(HdrHistogram.decode(d["service"].encode("ascii")))
            s.count += d["count"]
            s.failures += d["failures"]
            s.late_starts += d["late_starts"]
            s.bytes_out += d["bytes_out"]
            s.bytes_in += d["bytes_in"]
            s.by_code.update(d["by_code"])
