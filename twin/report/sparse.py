"""Sums, minima and maxima keyed by integers, accumulated chunk by chunk with bounded memory.

The report reads the exchange log once, a chunk at a time, and does not know in advance how many time
buckets, interfaces or outcomes it will meet. Each chunk reduces its rows to one value per distinct key
(numpy: sort once, reduce per run of equal keys); the partial results are merged whenever they pile up.
Keys pack several small indices into one int64 (see ``pack``/``unpack``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Bits per packed field: 2**20 buckets, interfaces or labels; 2**11 latency bins.
FIELD_BITS = 20


def pack(*fields: np.ndarray) -> np.ndarray:
    """Several non-negative int arrays (each < 2**20) as one int64 key, first field most significant."""
    key = np.zeros(len(fields[0]), dtype=np.int64)
    for f in fields:
        key = (key << FIELD_BITS) | f.astype(np.int64)
    return key


def unpack(key: np.ndarray, n: int) -> list[np.ndarray]:
    mask = (1 << FIELD_BITS) - 1
    out = [(key >> (FIELD_BITS * (n - 1 - i))) & mask for i in range(n)]
    return [o.astype(np.int64) for o in out]


class Accumulator:
    """Per-key reductions of several value columns: ``kinds`` says ``sum``, ``min`` or ``max`` for each."""

    def __init__(self, kinds: Sequence[str], *, compact_at: int = 1_000_000) -> None:
        self.kinds = tuple(kinds)
        self.compact_at = compact_at
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._pending = 0  # rows held in the partial results
        self._base = 0  # rows after the last merge: merge again when the pile doubles

    def add(self, keys: np.ndarray, *columns: np.ndarray) -> None:
        """Add rows: ``keys`` and one value column per kind (a sum column of ones counts rows)."""
        if not len(keys):
            return
        values = np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)
        k, v = self._reduce(keys, values)
        self._keys.append(k)
        self._values.append(v)
        self._pending += len(k)
        if self._pending >= max(self.compact_at, 2 * self._base):
            self.compact()

    def count(self, keys: np.ndarray) -> None:
        """Shortcut for an accumulator of one ``sum`` column: count rows per key."""
        self.add(keys, np.ones(len(keys)))

    def _reduce(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        out = np.empty((len(starts), len(self.kinds)), dtype=np.float64)
        for j, kind in enumerate(self.kinds):
            ufunc = {"sum": np.add, "min": np.minimum, "max": np.maximum}[kind]
            out[:, j] = ufunc.reduceat(values[:, j], starts)
        return keys[starts], out

    def compact(self) -> None:
        if len(self._keys) > 1:
            k, v = self._reduce(np.concatenate(self._keys), np.concatenate(self._values))
            self._keys, self._values = [k], [v]
        self._pending = self._base = len(self._keys[0]) if self._keys else 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct keys (sorted) and their reduced values, one column per kind."""
        self.compact()
        if not self._keys:
            return np.empty(0, dtype=np.int64), np.empty((0, len(self.kinds)))
        return self._keys[0], self._values[0]
