"""Interface groups: what the plots draw one line for, and what a group SLO is checked on.

Sixty interfaces are too many lines for one plot, so the report draws groups. An SLO file may name them
(``groups: {status: [Heartbeat, State, "Alarm*"]}``, glob patterns allowed); each interface belongs to
the first group that matches it, and what no group matches goes to ``other``, so groups never overlap
and always add up to ``all``. Without groups from a file, the busiest interfaces get a group each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from twin.metrics.histograms import InterfaceStats

ALL = "all"
OTHER = "other"
DEFAULT_BUSIEST = 6


def matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern)


def partition(interfaces: Iterable[str], groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Group name -> interfaces, in the file's order, then ``other``; empty groups kept (an SLO may ask)."""
    out: dict[str, list[str]] = {name: [] for name in groups}
    rest: list[str] = []
    for iface in sorted(interfaces):
        home = next((g for g, pats in groups.items() if any(matches(iface, p) for p in pats)), None)
        (out[home] if home is not None else rest).append(iface)
    if rest:
        out[OTHER] = rest
    return out


def busiest(stats: Mapping[str, InterfaceStats], n: int = DEFAULT_BUSIEST) -> dict[str, list[str]]:
    """Default groups: the ``n`` busiest interfaces alone, the rest together as ``other``."""
    ranked = sorted(stats, key=lambda op: (-stats[op].count, op))
    groups = {op: [op] for op in ranked[:n]}
    if len(ranked) > n:
        groups[OTHER] = sorted(ranked[n:])
    return groups


def merged(stats: Mapping[str, InterfaceStats], names: Iterable[str]) -> InterfaceStats:
    """One interface's worth of stats for several interfaces (HDR histograms add exactly)."""
    out = InterfaceStats()
    for name in names:
        s = stats.get(name)
        if s is None:
            continue
        out.latency.add(s.latency)
        out.service.add(s.service)
        out.count += s.count
        out.failures += s.failures
        out.late_starts += s.late_starts
        out.bytes_out += s.bytes_out
        out.bytes_in += s.bytes_in
        out.by_code.update(s.by_code)
    return out
