"""The exchange log: every exchange of a run, streamed to the run folder as the run goes.

Two formats, chosen by the path's name:

- ``exchanges.parquet`` (what a run writes): a folder of Parquet files, one every few seconds, each complete
  (``twin.metrics.parquetlog``); ``pandas.read_parquet(path)`` reads it in one line.
- ``*.csv.gz`` (runs before December 2026, and ``twin ct check --exchange-log F.csv.gz``): CSV with a header
  row, gzip-compressed, one complete gzip member per flush; concatenated members are one valid gzip stream.

Either way a crash loses at most the last few seconds and never leaves a file a reader cannot read. Rows are
buffered and handed to one writer thread every ``flush_rows`` rows or ``flush_s`` seconds (formatting and
compressing happen there, in order): the event loop that sends the requests only hands rows over.
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
from twin.metrics.parquetlog import SHARDS_DIR, ParquetSink, is_parquet_log, read_exchanges

LOG_NAME = "exchanges.parquet"  # in a run folder; older folders have LEGACY_NAME
LEGACY_NAME = "exchanges.csv.gz"


def find_log(folder: Path) -> Path | None:
    """The exchange log of a run folder, in either format; None if it has none."""
    for name in (LOG_NAME, LEGACY_NAME):
        if (folder / name).exists():
            return folder / name
    if any((folder / SHARDS_DIR).glob(f"*/{LOG_NAME}")):  # a sharded run: one log per shard, read as one
        return folder / SHARDS_DIR
    return None


class _CsvSink:
    """gzip members of CSV rows appended to one file (the older format)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        if path.stat().st_size == 0:
            self.write([COLUMNS])

    def write(self, rows: list[tuple[object, ...]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for start in range(0, len(rows), 256):  # one C call holds the GIL: small ones let the sending loop run
            writer.writerows(rows[start : start + 256])
        self._file.write(gzip.compress(text.getvalue().encode("utf-8"), compresslevel=3))
        self._file.flush()

    def seal(self) -> None:
        """Every member is complete as written."""

    def close(self) -> None:
        self._file.close()


class ExchangeLog:
    """Append-only, crash-safe writer of exchanges (Parquet for a ``.parquet`` path, else gzip CSV)."""

    def __init__(self, path: Path, *, flush_rows: int = 1000, flush_s: float = 0.5, part_s: float = 5.0) -> None:
        self.path = path
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.rows_written = 0
        self._pending: list[tuple[object, ...]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange-log")
        self._last: Future[None] | None = None
        self._closed = False
        self._sink: ParquetSink | _CsvSink = (
            ParquetSink(path, part_s=part_s) if is_parquet_log(path) else _CsvSink(path)
        )

    def append(self, ex: Exchange) -> None:
        self._pending.append(ex.as_row())
        if len(self._pending) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush(wait=False, seal=False)

    def flush(self, *, wait: bool = True, seal: bool = True) -> None:
        """Hand the pending rows to the writer, and ``seal`` them into a complete file (a checkpoint does);
        ``wait`` until everything handed over is on disk."""
        if self._pending or (seal and not self._closed):  # after close, a checkpoint's flush has nothing to do
            rows, self._pending = self._pending, []
            self._last = self._writer.submit(self._write, rows, seal)
        self._last_flush = time.monotonic()
        if wait and self._last is not None:
            self._last.result()

    def _write(self, rows: list[tuple[object, ...]], seal: bool) -> None:
        self._sink.write(rows)
        if seal:
            self._sink.seal()
        with self._lock:
            self.rows_written += len(rows)

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._writer.shutdown(wait=True)
        self._sink.close()

    def __enter__(self) -> ExchangeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _number(text: str, kind: type) -> object:
    return kind(text) if text != "" else None


def read_exchange_log(path: Path) -> Iterator[Exchange]:
    """Every exchange of a log (either format), in order, as ``Exchange`` values (streamed: constant memory)."""
    if is_parquet_log(path):
        yield from read_exchanges(path)
        return
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
