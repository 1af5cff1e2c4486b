"""The dense counters of the log scan add up exactly what ``np.add.at`` would, however the rows arrive."""

from __future__ import annotations

import numpy as np

from twin.report import grid
from twin.report.grid import Grid


def test_counts_sums_minima_and_coarsening_match_a_plain_reference(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(grid, "MAX_BOX", 500)  # force the out-of-order path (halving) on the wide chunk
    rng = np.random.default_rng(3)
    counts, sums, low = Grid((7,)), Grid(dtype=np.float64), Grid(dtype=np.float64, fill=np.inf)
    ref_counts, ref_sums, ref_low = np.zeros((9, 40, 7), np.int64), np.zeros((9, 40)), np.full((9, 40), np.inf)
    for k, width in enumerate((3, 40, 5)):  # in order, then a chunk spread over every bucket, then in order
        n = 2000
        row, bucket = rng.integers(0, 9, n), rng.integers(10 * k if width < 40 else 0, 10 * k + width, n) % 40
        tail, value = rng.integers(0, 7, n), rng.random(n)
        counts.add(row, bucket, tail)
        sums.add(row, bucket, weights=value)
        low.reduce(np.minimum, row, bucket, value)
        np.add.at(ref_counts, (row, bucket, tail), 1)
        np.add.at(ref_sums, (row, bucket), value)
        np.minimum.at(ref_low, (row, bucket), value)
    assert (counts.dense(9, 40) == ref_counts).all()
    assert np.allclose(sums.dense(9, 40), ref_sums) and (low.dense(9, 40) == ref_low).all()
    counts.coarsen()
    low.coarsen(np.minimum)
    assert (counts.dense(9, 20) == ref_counts.reshape(9, 20, 2, 7).sum(axis=2)).all()
    assert (low.dense(9, 20) == ref_low.reshape(9, 20, 2).min(axis=2)).all()


def test_presence_marks_and_padding() -> None:
    seen = Grid(dtype=np.uint8)
    seen.mark(np.array([0, 2, 2]), np.array([1, 1, 3]))
    assert seen.dense(4, 5).sum(axis=0).tolist() == [0, 2, 0, 1, 0]
    seen.coarsen(np.maximum)
    assert seen.dense(3, 2).sum(axis=0).tolist() == [2, 1]
