"""A batched histogram counts exactly what hdrh's own record_value counts, whenever it is read."""

from __future__ import annotations

import numpy as np
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.metrics.hdrbatch import BATCH, BatchedHistogram
from twin.metrics.histograms import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

values = st.lists(
    st.one_of(
        st.integers(min_value=-5, max_value=3000),
        st.integers(min_value=0, max_value=HIGHEST_US),
        st.integers(min_value=HIGHEST_US, max_value=2 * HIGHEST_US),  # past the top: not recorded, as hdrh
    ),
    max_size=3 * BATCH,
)


def _pair() -> tuple[HdrHistogram, BatchedHistogram]:
    return (
        HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS),
        BatchedHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS),
    )


def _same(plain: HdrHistogram, batched: BatchedHistogram) -> None:
    assert batched.get_total_count() == plain.get_total_count()
    assert np.array_equal(np.ctypeslib.as_array(batched.counts), np.ctypeslib.as_array(plain.counts))
    assert batched.get_min_value() == plain.get_min_value()
    assert batched.get_max_value() == plain.get_max_value()
    pct = (50.0, 99.0, 99.9, 100.0)
    assert batched.get_percentile_to_value_dict(pct) == plain.get_percentile_to_value_dict(pct)
    assert batched.encode() == plain.encode()


@settings(max_examples=60, deadline=None)
@given(values, st.integers(min_value=0, max_value=3 * BATCH))
def test_batched_counts_equal_hdrh_read_at_any_moment(recorded: list[int], read_at: int) -> None:
    plain, batched = _pair()
    for i, v in enumerate(recorded):
        assert batched.record_value(v) is True or v < 0
        plain.record_value(v)
        if i == read_at:  # a read in the middle (the live view every quarter second) counts what is pending
            _same(plain, batched)
    _same(plain, batched)


def test_a_merge_reads_the_pending_values_of_both() -> None:
    plain_a, batched_a = _pair()
    plain_b, batched_b = _pair()
    for v in range(1, 500):
        for plain, batched in ((plain_a, batched_a), (plain_b, batched_b)):
            plain.record_value(v * 37)
            batched.record_value(v * 37)
    plain_a.add(plain_b)
    batched_a.add(batched_b)
    _same(plain_a, batched_a)
    decoded = HdrHistogram.decode(batched_a.encode())
    assert decoded.get_total_count() == 998


def test_reset_forgets_the_pending_values() -> None:
    _, batched = _pair()
    batched.record_value(42)
    batched.reset()
    assert batched.get_total_count() == 0
    batched.record_value(7)
    assert batched.get_value_at_percentile(50) == 7
