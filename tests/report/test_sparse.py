"""Keyed reductions merged chunk by chunk equal one reduction over all rows."""

from __future__ import annotations

import numpy as np

from twin.report.sparse import Accumulator, pack, unpack


def test_pack_round_trips_several_fields() -> None:
    rng = np.random.default_rng(1)
    fields = [rng.integers(0, 2**20, 1000) for _ in range(3)]
    assert all((a == b).all() for a, b in zip(unpack(pack(*fields), 3), fields, strict=True))


def test_chunked_sums_minima_and_maxima_equal_one_pass() -> None:
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 500, 200_000)
    values = rng.normal(size=200_000)
    acc = Accumulator(["sum", "min", "max", "sum"], compact_at=3000)  # forces many merges
    for start in range(0, len(keys), 7000):
        k, v = keys[start : start + 7000], values[start : start + 7000]
        acc.add(k, v, v, v, np.ones(len(k)))
    got_keys, got = acc.result()
    assert (got_keys == np.unique(keys)).all()
    for i, key in enumerate(got_keys):
        mine = values[keys == key]
        assert np.isclose(got[i, 0], mine.sum())
        assert got[i, 1] == mine.min() and got[i, 2] == mine.max() and got[i, 3] == len(mine)
