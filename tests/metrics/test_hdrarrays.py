"""numpy queries over an HDR histogram give hdrh's own answers, value for value."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import new_histogram

PERCENTILES = [0.0, 0.1, 1, 10, 50, 66, 75, 90, 99, 99.9, 99.99, 99.999, 100]


def test_percentiles_and_mean_equal_hdrh_for_recorded_and_decoded_histograms() -> None:
    rng = random.Random(5)
    hist = new_histogram()
    for _ in range(30_000):
        hist.record_value(int(rng.lognormvariate(8, 2.5)) + 1)
    for h in (hist, HdrHistogram.decode(hist.encode())):
        arrays = HdrArrays(h)
        assert list(arrays.values_at(PERCENTILES)) == [h.get_value_at_percentile(p) for p in PERCENTILES]
        assert arrays.mean() == h.get_mean_value()
        assert (arrays.min(), arrays.max()) == (h.get_min_value(), h.get_max_value())


def test_an_empty_histogram_reads_as_zero() -> None:
    arrays = HdrArrays(new_histogram())
    assert arrays.total == 0 and list(arrays.values_at([50, 99])) == [0, 0] and arrays.mean() == 0.0
