"""The exchange log: every exchange of a run, streamed to ``exchanges.csv.gz`` in the run folder.

Format: CSV with a header row (columns of ``twin.metrics.exchange.COLUMNS``), gzip-compressed. Rows are
buffered and written as one complete gzip member per flush (every ``flush_rows`` rows or ``flush_s``
seconds), and concatenated members are one valid gzip stream: a crash loses at most the last unflushed
batch and never leaves a file that ``gzip -d`` or pandas cannot read. Formatting and compressing happen
on one writer thread (members stay in order): the event loop that sends the requests only hands rows over.
"""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from twin.metrics.exchange import COLUMNS, Exchange


class ExchangeLog:
    """Append-only, crash-safe writer of exchanges."""

    def __init__(self, path: Path, *, flush_rows: int = 1000, flush_s: float = 0.5) -> None:
        self.path = path
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.rows_written = 0
        self._pending: list[tuple[object, ...]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange-log")
        self._last: Future[None] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        if path.stat().st_size == 0:
            self._write_member([COLUMNS], counted=False)

    def append(self, ex: Exchange) -> None:
        self._pending.append(ex.as_row())
        if len(self._pending) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush(wait=False)

    def flush(self, *, wait: bool = True) -> None:
        """Hand the pending rows to the writer; ``wait`` until everything handed over is on disk."""
        if self._pending:
            rows, self._pending = self._pending, []
            self._last = self._writer.submit(self._write_member, rows)
        self._last_flush = time.monotonic()
        if wait and self._last is not None:
            self._last.result()

    def _write_member(self, rows: list[tuple[object, ...]], *, counted: bool = True) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for start in range(0, len(rows), 256):  # one C call holds the GIL: small ones let the sending loop run
            writer.writerows(rows[start : start + 256])
        member = gzip.compress(text.getvalue().encode("utf-8"), compresslevel=3)
        with self._lock:
            self._file.write(member)
            self._file.flush()
            if counted:
                self.rows_written += len(rows)

    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=True)
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
