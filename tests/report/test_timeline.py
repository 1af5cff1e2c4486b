"""The time series of a run equal what a plain pass over the exchange log counts."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.report.conftest import OUTAGE, SyntheticRun
from twin.metrics import read_exchange_log
from twin.report.timeline import BINS, Timeline, bin_ms, latency_bin, nice_bucket_s, percentile_ms, scan_log


def _outcome(ex) -> str:  # type: ignore[no-untyped-def]
    if ex.status == 200 and ex.code is not None:
        return str(ex.code)
    return f"http {ex.status}" if ex.status else (ex.error or "no answer")


@pytest.fixture(scope="module")
def scanned(full_run: SyntheticRun) -> tuple[Timeline, list]:  # type: ignore[type-arg]
    success = {op: frozenset(str(c) for c in codes) for op, codes in full_run.success.items()}
    t = scan_log(full_run.path / "exchanges.parquet", span_s=600.0, group_of={}, success=success)
    return t, list(read_exchange_log(full_run.path / "exchanges.parquet"))


def _bucket(t: Timeline, wall: float) -> int:
    return max(0, math.floor((wall - t.origin_wall) / t.bucket_s))


def test_counts_failures_and_outcomes_per_bucket(scanned, full_run: SyntheticRun) -> None:  # type: ignore[no-untyped-def]
    t, xs = scanned
    assert t.rows == len(xs) and t.bucket_s == nice_bucket_s(600.0)
    count, fails, outcomes = Counter(), Counter(), Counter()
    for ex in xs:
        k = (ex.operation, _bucket(t, ex.answered_wall))
        count[k] += 1
        if not ex.ok(full_run.success[ex.operation]):
            fails[k] += 1
            outcomes[(_outcome(ex), k[1])] += 1
    for i, op in enumerate(t.interfaces):
        for b in range(t.n_buckets):
            assert t.count[i, b] == count[(op, b)] and t.failures[i, b] == fails[(op, b)]
            assert t.latency[i, b].sum() == count[(op, b)]
    got = {(label, b): int(t.failures_by_outcome[j, b]) for j, label in enumerate(t.outcomes)
           for b in range(t.n_buckets) if t.failures_by_outcome[j, b]}  # fmt: skip
    assert got == dict(outcomes)
    assert {"timeout", "1", "http 503"} <= set(t.outcomes)  # FillingData's code 1 is a success, Inbound's is not


def test_backlog_is_intended_minus_sent_and_peaks_in_the_outage(scanned) -> None:  # type: ignore[no-untyped-def]
    t, xs = scanned
    ends = t.origin_wall + (np.arange(t.n_buckets) + 1) * t.bucket_s
    intended = np.array([ex.intended_wall for ex in xs])
    sent = np.array([ex.sent_wall for ex in xs])
    expected = [(intended < e).sum() - (sent < e).sum() for e in ends]
    assert list(t.backlog()) == expected
    peak = int(np.argmax(t.backlog()))
    assert OUTAGE[0] <= peak * t.bucket_s <= OUTAGE[1] + t.bucket_s and t.backlog()[-1] == 0


def test_binned_percentiles_are_within_a_bin_of_the_exact_ones(scanned) -> None:  # type: ignore[no-untyped-def]
    t, xs = scanned
    lat = np.sort([(ex.answered_wall - ex.intended_wall) * 1000 for ex in xs])
    for p in (50, 90, 99):
        exact = lat[max(math.ceil(p / 100 * len(lat)), 1) - 1]
        got = float(percentile_ms(t.latency.sum(axis=(0, 1)), p))
        assert abs(got - exact) <= exact * (10 ** (1 / 50) - 1)  # one bin is 4.7 % wide


def test_latency_bins_cover_microseconds_to_an_hour() -> None:
    seconds = np.array([0.0, 1e-5, 0.004, 2.0, 3600.0, 1e6])
    bins = latency_bin(seconds)
    assert bins[0] == 0 and bins[-1] == BINS - 1 and (np.diff(bins) >= 0).all()
    assert bin_ms(bins[2]) == pytest.approx(4.0, rel=0.03)


def test_a_log_longer_than_its_summary_said_merges_buckets(full_run: SyntheticRun, tmp_path: Path) -> None:
    t = scan_log(full_run.path / "exchanges.parquet", span_s=10.0, group_of={}, success={})
    assert t.n_buckets <= 600 and t.count.sum() == t.rows and t.bucket_s > nice_bucket_s(10.0)


def test_the_drain_is_measured_from_the_log_to_a_bucket(scanned, full_run: SyntheticRun) -> None:  # type: ignore[no-untyped-def]
    t, xs = scanned
    start, end = (full_run.started_wall + s - t.origin_wall for s in OUTAGE)
    last_resent = max(ex.sent_wall for ex in xs if OUTAGE[0] <= ex.intended_wall - full_run.started_wall < OUTAGE[1])
    actual = last_resent - t.origin_wall - end
    assert actual > 20  # the synthetic MES re-sends about 575 queued exchanges at 20 a second
    measured = t.drained_s(start, end)
    assert measured is not None and actual <= measured <= actual + t.bucket_s
    assert t.drained_s(t.n_buckets * t.bucket_s - 1, t.n_buckets * t.bucket_s) == 0.0  # nothing owed: drained


def test_the_virtual_clock_follows_the_log(scanned) -> None:  # type: ignore[no-untyped-def]
    """Plots run along the line's virtual time: the log's intended virtual time against its wall time."""
    from tests.report.conftest import SPEED

    t, xs = scanned
    assert t.clock.speed == pytest.approx(SPEED, rel=0.01)
    for ex in xs[:: max(1, len(xs) // 50)]:
        wall = ex.intended_wall - t.origin_wall
        assert float(t.clock.virtual(wall)) == pytest.approx(ex.intended_virtual_s, abs=t.bucket_s * SPEED)
        assert float(t.clock.wall(ex.intended_virtual_s)) == pytest.approx(wall, abs=t.bucket_s)
