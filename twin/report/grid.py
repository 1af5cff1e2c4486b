"""Dense counters over (row, time bucket[, bin]) that grow as the log is read, filled by ``np.bincount``.

The report reads the exchange log once, a chunk at a time (about 130,000 exchanges), without knowing in
advance how many interfaces, outcomes or time buckets it will meet. A chunk covers a few time buckets only
(the log is in send order), so its rows are counted by one ``np.bincount`` over the small box they span and
added into the grid there: about ten times faster than sorting the chunk's keys, which is what a sparse
accumulator does. Time buckets are bounded by the caller (``coarsen`` halves them), so memory is too.
"""

from __future__ import annotations

import numpy as np

#: A chunk whose box is larger than this many cells is counted in slices of rows (bounded temporary memory).
MAX_BOX = 4_000_000


class Grid:
    """A dense array ``[row, bucket, *tail]`` of sums (or a running min/max with ``reduce``)."""

    def __init__(self, tail: tuple[int, ...] = (), *, dtype: type = np.int64, fill: float = 0) -> None:
        self.tail = tail
        self.fill = fill
        self.a = np.full((0, 0, *tail), fill, dtype=dtype)

    def _grow(self, rows: int, buckets: int) -> None:
        r, b = self.a.shape[:2]
        if rows > r or buckets > b:
            new = np.full((max(rows, r), max(buckets, b, 2 * b if buckets > b else b), *self.tail), self.fill,
                          dtype=self.a.dtype)  # fmt: skip
            new[:r, :b] = self.a
            self.a = new

    def add(self, row: np.ndarray, bucket: np.ndarray, tail: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> None:  # fmt: skip
        """Add ``weights`` (1 each by default) at ``[row, bucket(, tail)]``."""
        if not len(row):
            return
        nr, b0, b1 = int(row.max()) + 1, int(bucket.min()), int(bucket.max()) + 1
        self._grow(nr, b1)
        width = int(np.prod(self.tail)) if self.tail else 1
        span = b1 - b0
        if nr * span * width > MAX_BOX and len(row) > 1:  # a wide chunk (out of order): halves until it fits
            order = np.argsort(bucket, kind="stable")
            half = len(order) // 2
            for part in (order[:half], order[half:]):
                self.add(row[part], bucket[part], None if tail is None else tail[part],
                         None if weights is None else weights[part])  # fmt: skip
            return
        flat = row * span + (bucket - b0)
        if tail is not None:
            flat = flat * width + tail
        counts = np.bincount(flat, weights=weights, minlength=nr * span * width)
        box = self.a[:nr, b0:b1]
        np.add(box, counts.reshape(box.shape), out=box, casting="unsafe")

    def reduce(self, ufunc: np.ufunc, row: np.ndarray, bucket: np.ndarray, values: np.ndarray) -> None:
        """``ufunc.at`` (np.minimum, np.maximum) of ``values`` into ``[row, bucket]``."""
        if len(row):
            self._grow(int(row.max()) + 1, int(bucket.max()) + 1)
            ufunc.at(self.a, (row, bucket), values)

    def mark(self, row: np.ndarray, bucket: np.ndarray) -> None:
        """Set ``[row, bucket]`` to 1 (presence, e.g. an equipment seen in a bucket)."""
        if len(row):
            self._grow(int(row.max()) + 1, int(bucket.max()) + 1)
            self.a[row, bucket] = 1

    def coarsen(self, ufunc: np.ufunc = np.add) -> None:
        """Merge bucket pairs (2k, 2k+1) into k: the caller's buckets have doubled in length."""
        r, b = self.a.shape[:2]
        if b % 2:
            pad = np.full((r, 1, *self.tail), self.fill, dtype=self.a.dtype)
            self.a = np.concatenate([self.a, pad], axis=1)
        self.a = ufunc(self.a[:, 0::2], self.a[:, 1::2])

    def dense(self, rows: int, buckets: int) -> np.ndarray:
        """The grid as exactly ``rows`` x ``buckets`` (cut or padded with the fill value)."""
        out = np.full((rows, buckets, *self.tail), self.fill, dtype=self.a.dtype)
        r, b = min(rows, self.a.shape[0]), min(buckets, self.a.shape[1])
        out[:r, :b] = self.a[:r, :b]
        return out
