"""An HDR histogram that takes values at list-append cost and counts them a batch at a time with numpy.

``hdrh``'s ``record_value`` is pure Python (five calls and a ``bin()`` string per value): about 1.5 µs, and a
networked run records four values per exchange (latency and service per interface, send delay and latency of
the whole run), a twentieth of the twin's CPU per request (issue 14). Here a value is appended to a list and
every ``BATCH`` values, or before anything reads the histogram, the batch is counted into ``hdrh``'s own counts
array with ``hdrh``'s arithmetic done by numpy, so every figure, encoding and merge is exactly what ``hdrh``
gives (``tests/metrics/test_hdrbatch.py`` holds the two equal). Hand-written because ``hdrh`` has no bulk
record and no maintained Python HDR library has one either.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

BATCH = 2048


class BatchedHistogram(HdrHistogram):
    """``HdrHistogram`` with batched ``record_value``; every read counts the pending values first."""

    def __init__(self, lowest: int, highest: int, significant_figures: int) -> None:
        super().__init__(lowest, highest, significant_figures)
        self._pending: list[int] = []
        self._counts = np.ctypeslib.as_array(self.counts)  # a view: hdrh's counts, written in place

    def record_value(self, value: Any, count: int = 1) -> bool:
        if count != 1 or type(value) is not int:
            self.flush()
            return bool(super().record_value(value, count))
        pending = self._pending
        pending.append(value)
        if len(pending) >= BATCH:
            self.flush()
        return True

    def flush(self) -> None:
        """Count the pending values (``hdrh.HdrHistogram.record_value``'s arithmetic, vectorised)."""
        pending = self._pending
        if not pending:
            return
        values = np.fromiter(pending, np.int64, len(pending))
        pending.clear()
        values = values[values >= 0]  # as record_value: a negative value is not recorded
        if not len(values):
            return
        unit, half_mag = self.unit_magnitude, self.sub_bucket_half_count_magnitude
        # hdrh: pow2ceiling = 64 - clz(value | sub_bucket_mask), i.e. the bit length (exact: values < 2**53)
        bit_length = np.frexp((values | self.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
        bucket = bit_length - unit - (half_mag + 1)
        sub_bucket = values >> (bucket + unit)
        index = ((bucket + 1) << half_mag) + sub_bucket - self.sub_bucket_half_count
        kept = (index >= 0) & (index < self.counts_len)
        if not kept.all():
            values, index = values[kept], index[kept]
            if not len(values):
                return
        np.add.at(self._counts, index, 1)
        self.total_count += len(values)
        self.min_value = min(self.min_value, int(values.min()))
        self.max_value = max(self.max_value, int(values.max()))

    def reset(self) -> None:
        self._pending.clear()
        super().reset()


def counts_of(hist: HdrHistogram) -> np.ndarray:
    """The histogram's counts array (a view, not a copy), with any pending values counted."""
    if isinstance(hist, BatchedHistogram):
        hist.flush()
    return np.ctypeslib.as_array(hist.counts)


def _counted_first(name: str) -> Any:
    method = getattr(HdrHistogram, name)

    def counted(self: BatchedHistogram, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return method(self, *args, **kwargs)

    counted.__name__ = name
    counted.__doc__ = method.__doc__
    return counted


# Every public read of hdrh's histogram (and ``add``, which reads the other one's figures through these).
for _name in (
    "get_count_at_index",
    "get_count_at_sub_bucket",
    "get_value_at_percentile",
    "get_percentile_to_value_dict",
    "get_total_count",
    "get_count_at_value",
    "get_max_value",
    "get_min_value",
    "get_mean_value",
    "get_stddev",
    "get_all_values_iterator",
    "get_recorded_iterator",
    "get_percentile_iterator",
    "get_linear_iterator",
    "get_log_iterator",
    "encode",
    "add",
    "output_percentile_distribution",
    "equals",
):
    setattr(BatchedHistogram, _name, _counted_first(_name))
