"""The run over time, from one streaming pass over the exchange log.

Per time bucket (by answer time, as a load tool counts completions) and interface: counts, failures by
outcome, late starts, content size, and latency in log-spaced bins (50 per decade, so a percentile read
from them is within 2.3 % of the exact one); per group the service-time bins; per bucket the exchanges
intended and sent (their difference is the backlog of what equipment owes the MES) and how many
equipment spoke; per virtual hour of the line, the latency bins (to set against the line's output).
The tables use the exact HDR histograms instead; these bins are for plots and ``stats_history.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.metrics.histograms import LATE_START_S
from twin.report.grid import Grid
from twin.report.logscan import Chunk, LogReader, Names

LOW_S = 1e-5
HIGH_S = 3600.0
PER_DECADE = 50
BINS = math.ceil(math.log10(HIGH_S / LOW_S) * PER_DECADE) + 1
TARGET_BUCKETS = 300  # what the bucket size aims at
MAX_BUCKETS = 600  # more than this (a run longer than its summary said) and buckets are merged
NICE_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_LIMIT = (1 << 20) - 1


def latency_bin(seconds: np.ndarray) -> np.ndarray:
    x = np.log10(np.maximum(seconds, LOW_S) / LOW_S) * PER_DECADE
    return np.minimum(x.astype(np.int64), BINS - 1)


def bin_ms(index: np.ndarray | int) -> np.ndarray:
    """The geometric centre of a latency bin, in ms."""
    return LOW_S * 10 ** ((np.asarray(index) + 0.5) / PER_DECADE) * 1000


def percentile_ms(hist: np.ndarray, p: float) -> np.ndarray:
    """Percentile ``p`` (0-100) of binned latencies ``[..., BINS]``, in ms; NaN where nothing was counted."""
    cum = np.cumsum(hist, axis=-1, dtype=np.int64)
    total = cum[..., -1]
    rank = np.maximum(np.ceil(total * (p / 100.0)), 1)
    idx = (cum < rank[..., None]).sum(axis=-1)
    return np.where(total > 0, bin_ms(np.minimum(idx, BINS - 1)), np.nan)


def nice_bucket_s(span_s: float) -> float:
    want = max(span_s, 0.0) / TARGET_BUCKETS
    return float(next((s for s in NICE_S if s >= want), NICE_S[-1]))


@dataclass(frozen=True, slots=True)
class VirtualClock:
    """The line's virtual time at a moment of the run (seconds since the first exchange, wall).

    Read from the log itself: each exchange carries its intended virtual and wall times, so the mapping holds
    whatever the pace was (a speed, realtime, a model held back by the MES). Between the points measured it
    is interpolated; without any point (an empty log) virtual time is wall time.
    """

    wall_s: np.ndarray  # increasing
    virtual_s: np.ndarray  # non-decreasing

    def virtual(self, wall_s: np.ndarray | float) -> np.ndarray:
        return self._map(np.asarray(wall_s, dtype=np.float64), self.wall_s, self.virtual_s, self.speed or 1.0)

    def wall(self, virtual_s: np.ndarray | float) -> np.ndarray:
        return self._map(np.asarray(virtual_s, dtype=np.float64), self.virtual_s, self.wall_s, 1 / (self.speed or 1.0))

    @staticmethod
    def _map(x: np.ndarray, xp: np.ndarray, fp: np.ndarray, slope: float) -> np.ndarray:
        """Interpolated inside the points, extended at the overall pace outside them."""
        if not len(xp):
            return x * slope
        y = np.interp(x, xp, fp)
        y = np.where(x < xp[0], fp[0] + (x - xp[0]) * slope, y)
        return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * slope, y)

    @property
    def speed(self) -> float | None:
        """Virtual seconds per wall second over the whole run."""
        if len(self.wall_s) < 2 or self.virtual_s[-1] <= self.virtual_s[0]:
            return None
        return float((self.virtual_s[-1] - self.virtual_s[0]) / (self.wall_s[-1] - self.wall_s[0]))


def _clock(points: list[tuple[np.ndarray, np.ndarray]]) -> VirtualClock:
    """Sampled (wall since origin, virtual) points as a monotone clock, at most a few thousand points."""
    if not points:
        return VirtualClock(np.zeros(0), np.zeros(0))
    wall = np.concatenate([w for w, _ in points])
    virtual = np.concatenate([v for _, v in points])
    order = np.argsort(wall, kind="stable")
    wall, virtual = wall[order], np.maximum.accumulate(virtual[order])
    keep = np.r_[True, np.diff(wall) > 0]
    wall, virtual = wall[keep], virtual[keep]
    step = max(1, len(wall) // 4000)
    idx = np.unique(np.r_[np.arange(0, len(wall), step), len(wall) - 1])
    return VirtualClock(wall[idx], virtual[idx])


@dataclass(slots=True)
class Timeline:
    origin_wall: float
    bucket_s: float
    interfaces: list[str]
    groups: list[str]
    latency: np.ndarray  # [interface, bucket, bin]
    service_by_group: np.ndarray  # [group, bucket, bin]
    count: np.ndarray  # [interface, bucket] and the same shape below
    failures: np.ndarray
    late_starts: np.ndarray
    bytes_in: np.ndarray
    latency_sum_s: np.ndarray
    latency_min_s: np.ndarray  # +inf where empty
    latency_max_s: np.ndarray  # -inf where empty
    intended: np.ndarray  # by intended send time
    sent: np.ndarray  # by actual send time
    equipment_active: np.ndarray  # [bucket]
    outcomes: list[str]
    failures_by_outcome: np.ndarray  # [outcome, bucket]
    virtual_hours: np.ndarray  # [virtual hour, bin]
    rows: int
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(np.zeros(0), np.zeros(0)))

    @property
    def n_buckets(self) -> int:
        return self.count.shape[1]

    def bucket_start_s(self) -> np.ndarray:
        """Seconds since the first exchange, at the start of each bucket."""
        return np.arange(self.n_buckets) * self.bucket_s

    def members(self, names: Sequence[str]) -> np.ndarray:
        wanted = set(names)
        return np.array([i for i, n in enumerate(self.interfaces) if n in wanted], dtype=np.int64)

    def backlog(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Exchanges intended but not yet sent at the end of each bucket (what equipment owes the MES)."""
        sel = slice(None) if rows is None else rows
        return np.cumsum(self.intended[sel].sum(axis=0)) - np.cumsum(self.sent[sel].sum(axis=0))

    def drained_s(self, start_s: float, end_s: float) -> float | None:
        """Seconds from the end of an outage until the backlog is back to its level before it; None if never.

        Measured from the log, to the end of a bucket (so up to ``bucket_s`` late), whatever the run recorded.
        The level before is the highest of the ten buckets before the outage: requests in flight are owed too.
        """
        owed = self.backlog()
        ends = (np.arange(self.n_buckets) + 1) * self.bucket_s
        before = owed[ends <= start_s][-10:]
        level = before.max() if len(before) else 0
        back = np.flatnonzero((ends >= end_s) & (owed <= level))
        return max(float(ends[back[0]] - end_s), 0.0) if len(back) else None


class _Scan:
    """The counters of one pass; ``feed`` a chunk at a time, then ``_finish``.

    Buckets start ``bucket_s`` long; when the log runs past ``MAX_BUCKETS`` of them (a run longer than its
    summary said), every counter merges bucket pairs and buckets are twice as long from then on.
    """

    def __init__(
        self, reader: LogReader, group_of: Mapping[str, str], success: Mapping[str, frozenset[str]], bucket_s: float
    ) -> None:
        self.reader = reader
        self.group_of = group_of
        self.success = success
        self.bucket_s = bucket_s
        self.groups = Names()
        self.labels = Names()
        self.origin: float | None = None
        self.lookups = (np.empty(0, np.int64), np.empty(0, bool), np.empty(0, bool))
        self.hist = Grid((BINS,), dtype=np.uint32)  # [interface, bucket, latency bin]
        self.service = Grid((BINS,), dtype=np.uint32)  # [group, bucket, service-time bin]
        self.sums = [Grid(dtype=np.float64) for _ in range(5)]  # count, failures, late, bytes in, latency sum
        self.low = Grid(dtype=np.float64, fill=np.inf)
        self.high = Grid(dtype=np.float64, fill=-np.inf)
        self.intended = Grid()
        self.sent = Grid()
        self.active = Grid(dtype=np.uint8)  # [equipment, bucket]: spoke in it
        self.outcomes = Grid()  # [outcome label, bucket]
        self.vhours = Grid()  # [virtual hour, latency bin] (the bucket axis holds the bins)
        self.clock_points: list[tuple[np.ndarray, np.ndarray]] = []

    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per operation index: its group index, and whether codes 0 and 1 count as success."""
        names = self.reader.operations.names
        if len(self.lookups[0]) != len(names):
            ok = [self.success.get(n, frozenset({"0"})) for n in names]
            self.lookups = (
                np.array([self.groups.of(self.group_of.get(n, "other")) for n in names], dtype=np.int64),
                np.array(["0" in s for s in ok], dtype=bool),
                np.array(["1" in s for s in ok], dtype=bool),
            )
        return self.lookups

    def _bucket(self, wall: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((wall - self.origin) / self.bucket_s), 0, _LIMIT).astype(np.int64)

    def _buckets(self, c: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bucket of each row's answer, intention and sending; buckets lengthen until they fit MAX_BUCKETS."""
        while True:
            b, bi, bs = (self._bucket(w) for w in (c.answered_wall, c.intended_wall, c.sent_wall))
            if max(int(b.max()), int(bi.max()), int(bs.max())) < MAX_BUCKETS:
                return b, bi, bs
            self.bucket_s *= 2
            for g in (self.hist, self.service, *self.sums, self.intended, self.sent, self.outcomes):
                g.coarsen()
            self.low.coarsen(np.minimum)
            self.high.coarsen(np.maximum)
            self.active.coarsen(np.maximum)

    def feed(self, c: Chunk) -> None:
        if not len(c):
            return
        if self.origin is None:
            self.origin = float(min(c.intended_wall.min(), c.sent_wall.min()))
        group, ok0, ok1 = self._tables()
        op = c.operation.astype(np.int64)
        b, b_intended, b_sent = self._buckets(c)
        lat = c.answered_wall - c.intended_wall
        lb = latency_bin(lat)
        ok = (c.status == 200) & (((c.code == 0) & ok0[op]) | ((c.code == 1) & ok1[op]))
        late = (c.sent_wall - c.intended_wall) > LATE_START_S
        self.hist.add(op, b, lb)
        self.service.add(group[op], b, latency_bin(c.answered_wall - c.sent_wall))
        for grid, weights in zip(self.sums, (None, ~ok, late, c.bytes_in, lat), strict=True):
            grid.add(op, b, weights=None if weights is None else weights.astype(np.float64))
        self.low.reduce(np.minimum, op, b, lat)
        self.high.reduce(np.maximum, op, b, lat)
        self.intended.add(op, b_intended)
        self.sent.add(op, b_sent)
        self.active.mark(c.equipment.astype(np.int64), b)
        hour = np.clip(np.floor(c.intended_virtual_s / 3600.0), 0, _LIMIT).astype(np.int64)
        self.vhours.add(hour, lb)
        step = max(1, len(c) // 512)  # the virtual clock from a sample of (intended wall, intended virtual)
        self.clock_points.append((c.intended_wall[::step] - self.origin, c.intended_virtual_s[::step]))
        failed = np.flatnonzero(~ok)
        if len(failed):
            self.outcomes.add(self._labels(c, failed), b[failed])

    def _labels(self, c: Chunk, rows: np.ndarray) -> np.ndarray:
        """The outcome of each failed row, as ``twin.metrics.histograms.outcome`` names it, as label indices."""
        out = np.empty(len(rows), dtype=np.int64)
        status, code = c.status[rows], c.code[rows]
        answered = status != 0
        if answered.any():
            pairs = np.stack([status[answered], np.nan_to_num(code[answered], nan=-np.inf)], axis=1)
            uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
            text = [f"{int(cd)}" if st == 200 and np.isfinite(cd) else f"http {int(st)}" for st, cd in uniq]
            out[answered] = np.array([self.labels.of(t) for t in text], dtype=np.int64)[inverse.ravel()]
        if (~answered).any():
            errors = c.error[rows[~answered]].astype(str)
            uniq, inverse = np.unique(errors, return_inverse=True)
            ids = np.array([self.labels.of(e or "no answer") for e in uniq], dtype=np.int64)
            out[~answered] = ids[inverse.ravel()]
        return out


def scan_log(
    path: Path,
    *,
    span_s: float,
    group_of: Mapping[str, str],
    success: Mapping[str, frozenset[str]],
) -> Timeline:
    """One pass over the log. ``span_s`` (the run's wall time) sizes the buckets; a longer log merges them."""
    reader = LogReader(path)
    scan = _Scan(reader, group_of, success, nice_bucket_s(span_s))
    for chunk in reader:
        scan.feed(chunk)
    return _finish(scan)


def _finish(scan: _Scan) -> Timeline:
    used = [int(np.flatnonzero(g.a.any(axis=0)).max(initial=-1)) + 1 for g in (scan.sums[0], scan.intended, scan.sent)]
    nb = max(*used, 1)
    ni, ng = max(len(scan.reader.operations.names), 1), max(len(scan.groups.names), 1)
    nl = max(len(scan.labels.names), 1)
    sums = [g.dense(ni, nb) for g in scan.sums]
    vh = scan.vhours.a
    hours = int(np.flatnonzero(vh.any(axis=1)).max(initial=-1)) + 1
    return Timeline(
        origin_wall=scan.origin or 0.0,
        bucket_s=scan.bucket_s,
        interfaces=list(scan.reader.operations.names),
        groups=list(scan.groups.names),
        latency=scan.hist.dense(ni, nb),
        service_by_group=scan.service.dense(ng, nb),
        count=sums[0].astype(np.int64),
        failures=sums[1].astype(np.int64),
        late_starts=sums[2].astype(np.int64),
        bytes_in=sums[3].astype(np.int64),
        latency_sum_s=sums[4],
        latency_min_s=scan.low.dense(ni, nb),
        latency_max_s=scan.high.dense(ni, nb),
        intended=scan.intended.dense(ni, nb),
        sent=scan.sent.dense(ni, nb),
        equipment_active=scan.active.dense(max(len(scan.reader.equipment.names), 1), nb).sum(axis=0, dtype=np.int64),
        outcomes=list(scan.labels.names),
        failures_by_outcome=scan.outcomes.dense(nl, nb),
        virtual_hours=np.ascontiguousarray(vh[:hours, :BINS]) if hours else np.zeros((0, BINS), np.int64),
        rows=scan.reader.rows_read,
        clock=_clock(scan.clock_points),
    )
