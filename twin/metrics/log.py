"""The exchange log: every exchange of a run, streamed to ``exchanges.csv.gz`` in the run folder.

Format: CSV with a header row (columns of ``twin.metrics.exchange.COLUMNS``), gzip-compressed. Rows are
buffered and written as one complete gzip member per flush (every ``flush_rows`` rows or ``flush_s``
seconds), and concatenated members are one valid gzip stream: a crash loses at most the last unflushed
batch and never leaves a file that ``gzip -d`` or pandas cannot read.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Iterator
from pathlib import Path

from twin.metrics.exchange import COLUMNS, Exchange


class ExchangeLog:
    """Append-only, crash-safe writer of exchanges."""

    def __init__(self, path: Path, *, flush_rows: int = 5000, flush_s: float = 2.0) -> None:
        self.path = path
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.rows_written = 0
        self._pending: list[tuple[object, ...]] = []
        self._last_flush = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        if path.stat().st_size == 0:
            self._write_member([COLUMNS])

    def append(self, ex: Exchange) -> None:
        self._pending.append(ex.as_row())
        if len(self._pending) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            self._write_member(rows)
            self.rows_written += len(rows)
        self._last_flush = time.monotonic()

    def _write_member(self, rows: list[tuple[object, ...]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self._file.write(gzip.compress(text.getvalue().encode("utf-8"), compresslevel=3))
        self._file.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()

    def __enter__(self) -> ExchangeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _number(text: str, kind: type) -> object:
    return kind(text) if text != "" else None


def read_exchange_log(path: Path) -> Iterator[Exchange]:
    """Every exchange of a log, in order, as ``Exchange`` values (streamed: constant memory)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: unexpected columns {header}, expected {list(COLUMNS)}")
        for row in reader:
            op, eq, iv, iw, sw, aw, status, code, bo, bi, err = row
            yield Exchange(
                op,
                eq,
                float(iv),
                float(iw),
                float(sw),
                float(aw),
                int(status),
                _number(code, int),
                int(bo),
                int(bi),
                err,  # type: ignore[arg-type]
            )
