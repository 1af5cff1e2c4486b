"""The per-interface table: every figure of the report's main table and of ``stats.csv``, from HDR histograms.

Percentiles come from the run's HDR histograms (3 significant digits, exact merge), never from samples,
so the table of a 24-hour run costs what the table of a minute costs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import InterfaceStats
from twin.report.groups import ALL, merged

#: The columns of the report table (latency from the intended time and service time, in ms).
TABLE_PERCENTILES = (50.0, 90.0, 99.0, 99.9)
#: Locust's PERCENTILES_TO_REPORT (locust/stats.py), as percent.
LOCUST_PERCENTILES = (50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.9, 99.99, 100.0)


def success_outcomes(stats: InterfaceStats) -> frozenset[str]:
    """The outcomes the run counted as success for this interface.

    The run judges success with each operation's success codes (0, or 0 and 1 where a spec section says so)
    and records only the verdict's count; the outcome keys that add up to ``count - failures`` recover it.
    """
    ok = stats.count - stats.failures
    for candidate in (("0",), ("0", "1"), ("1",)):
        if sum(stats.by_code.get(c, 0) for c in candidate) == ok:
            return frozenset(candidate)
    return frozenset({"0"})


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Milliseconds at the given percentiles, plus min, max and mean; empty when nothing was recorded."""

    at: dict[float, float] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, hist: HdrHistogram, percentiles: Sequence[float]) -> Percentiles:
        a = HdrArrays(hist)
        if not a.total:
            return cls()
        at = {p: float(v) / 1000 for p, v in zip(percentiles, a.values_at(percentiles), strict=True)}
        return cls(at, a.min() / 1000, a.max() / 1000, a.mean() / 1000)

    def get(self, p: float) -> float | None:
        return self.at.get(p)


@dataclass(frozen=True, slots=True)
class InterfaceRow:
    """One line of the table: an interface, a group, or everything (``all``)."""

    name: str
    group: str
    count: int
    rate_per_s: float
    failures: int
    late_starts: int
    bytes_in: int
    bytes_out: int
    errors: tuple[tuple[str, int], ...]  # failing outcome -> count, most frequent first
    latency: Percentiles
    service: Percentiles

    @property
    def error_rate(self) -> float:
        return self.failures / self.count if self.count else 0.0

    @property
    def failures_per_s(self) -> float:
        return self.rate_per_s * self.error_rate

    @property
    def avg_bytes_in(self) -> float:
        return self.bytes_in / self.count if self.count else 0.0


def failing_outcomes(stats: InterfaceStats) -> Counter[str]:
    """Outcome -> count, for the outcomes the run counted as failures."""
    success = success_outcomes(stats)
    return Counter({k: n for k, n in stats.by_code.items() if k not in success})


def make_row(name: str, group: str, stats: InterfaceStats, wall_s: float, errors: Counter[str]) -> InterfaceRow:
    pcts = sorted({*TABLE_PERCENTILES, *LOCUST_PERCENTILES})
    return InterfaceRow(
        name=name,
        group=group,
        count=stats.count,
        rate_per_s=stats.count / wall_s if wall_s > 0 else 0.0,
        failures=stats.failures,
        late_starts=stats.late_starts,
        bytes_in=stats.bytes_in,
        bytes_out=stats.bytes_out,
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        latency=Percentiles.of(stats.latency, pcts),
        service=Percentiles.of(stats.service, pcts),
    )


def interface_rows(
    stats: Mapping[str, InterfaceStats], wall_s: float, group_of: Mapping[str, str]
) -> list[InterfaceRow]:
    """One row per interface, busiest first."""
    ranked = sorted(stats, key=lambda op: (-stats[op].count, op))
    return [make_row(op, group_of.get(op, ""), stats[op], wall_s, failing_outcomes(stats[op])) for op in ranked]


def group_rows(
    stats: Mapping[str, InterfaceStats], wall_s: float, groups: Mapping[str, Sequence[str]]
) -> list[InterfaceRow]:
    """One row per group, then ``all``: the merged histograms of their interfaces."""
    rows = []
    for name, members in [*groups.items(), (ALL, list(stats))]:
        errors = sum((failing_outcomes(stats[m]) for m in members if m in stats), Counter())
        rows.append(make_row(name, name, merged(stats, members), wall_s, errors))
    return rows
