"""The exchange log as Parquet: a folder of small complete files, readable by pandas in one line.

    import pandas as pd
    df = pd.read_parquet("reports/line-A02/20261206T001106Z/exchanges.parquet")

A Parquet file is readable only once its footer is written, so one file for a whole run would be lost with
the process that writes it. The log is a folder instead (a dataset, as pyarrow, pandas, polars and DuckDB read
one): the rows of every few seconds become one file, written under a hidden name (``.part-000012.tmp``,
which every reader skips) and renamed to ``part-000012.parquet`` once complete. A run killed at any moment
leaves all its exchanges but those of the last few seconds (``part_s``, and whatever had not yet been handed
to the writer), and never a file a reader chokes on.

Every ``COMPACT_PARTS`` parts (five minutes at 5 s) are merged into one file named by the range it holds
(``part-000000-000059.parquet``), so a day-long run leaves a few hundred files, not seventeen thousand (each
file costs a reader about 2 ms). The merged file is renamed in before the small ones are removed; a reader
of this module skips small parts a merged file covers, so even a crash between the two reads each row once
(pandas would read the rows of that one moment twice).

Columns are those of ``twin.metrics.exchange.COLUMNS``, typed: names as dictionary-encoded strings (an
interface name is stored once per file, not once per row), times as float64 epoch seconds, the business
code as a nullable int64 (no code without an answer); see ``WRITE_OPTIONS`` for the encodings.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from twin.metrics.exchange import COLUMNS, Exchange

if TYPE_CHECKING:  # pyarrow is imported when a log is written or read, not by `twin run --help`
    import pyarrow as pa


@functools.cache
def schema() -> pa.Schema:
    """The log's columns (``COLUMNS``), typed."""
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    types = [text, text, *(pa.float64(),) * 4, pa.int32(), pa.int64(), pa.int64(), pa.int64(), text]
    return pa.schema(list(zip(COLUMNS, types, strict=True)))

PART_GLOB = "part-*.parquet"
SHARDS_DIR = "shards"  # a sharded run folder's shards/<n>/exchanges.parquet (twin.run.sharded)
ROW_GROUP_ROWS = 131_072
COMPACT_PARTS = 60
#: How columns are stored: names dictionary-encoded, times byte-stream-split (their bytes compress far better
#: apart), all zstd. Measured on 270,000 exchanges: 3.6 MB and 0.05 s to write, against 6.1 MB and 0.33 s with
#: pyarrow's defaults (which dictionary-encode every column, times included).
WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["operation", "equipment", "error"],
    "use_byte_stream_split": ["intended_virtual_s", "intended_wall", "sent_wall", "answered_wall"],
}


def is_parquet_log(path: Path) -> bool:
    """A Parquet exchange log (a folder of parts, or one file, or a sharded run's ``shards/`` folder of them)
    rather than the older gzip CSV."""
    return path.suffix == ".parquet" or (path.name == SHARDS_DIR and path.is_dir())


def batch(rows: Sequence[tuple[object, ...]]) -> pa.RecordBatch:
    """Rows (``Exchange.as_row``) as one typed record batch."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = []
    for field, values in zip(schema(), columns, strict=True):
        if pa.types.is_dictionary(field.type):
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema())


def _range(part: Path) -> tuple[int, int]:
    """The part numbers a file holds: ``part-000012`` is (12, 12), ``part-000000-000059`` is (0, 59)."""
    numbers = [int(n) for n in part.stem.split("-")[1:]]
    return numbers[0], numbers[-1]


class ParquetSink:
    """Writes handed-over batches into parts of about ``part_s`` seconds (or ``part_rows`` rows) each.

    Used from one writer thread (``twin.metrics.log.ExchangeLog``): ``write`` adds a batch, ``seal`` makes
    what was written durable as a part of its own.
    """

    def __init__(
        self, folder: Path, *, part_s: float = 5.0, part_rows: int = 500_000, compact_parts: int = COMPACT_PARTS
    ) -> None:
        self.folder = folder
        self.part_s = part_s
        self.part_rows = part_rows
        self.compact_parts = compact_parts
        folder.mkdir(parents=True, exist_ok=True)
        done = [_range(p)[1] for p in folder.glob(PART_GLOB)]
        self._next = max(done) + 1 if done else 0  # appending to a log keeps its parts
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self._opened = time.monotonic()
        self._small: list[Path] = []  # sealed since the last merge

    def write(self, rows: Sequence[tuple[object, ...]]) -> None:
        if rows:
            if not self._pending:
                self._opened = time.monotonic()
            self._pending.append(batch(rows))
            self._rows += len(rows)
        if self._rows >= self.part_rows or (self._pending and time.monotonic() - self._opened >= self.part_s):
            self.seal()

    def seal(self) -> None:
        """Write what is pending as one complete part (row groups of ``ROW_GROUP_ROWS``) and rename it in."""
        if not self._pending:
            return
        import pyarrow as pa

        table = pa.Table.from_batches(self._pending, schema=schema()).unify_dictionaries()
        self._small.append(self._put(table, f"part-{self._next:06d}"))
        self._next += 1
        self._pending, self._rows = [], 0
        if len(self._small) >= self.compact_parts:
            self.compact()

    def _put(self, table: pa.Table, name: str) -> Path:
        import pyarrow.parquet as pq

        tmp, final = self.folder / f".{name}.tmp", self.folder / f"{name}.parquet"
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **WRITE_OPTIONS)
        os.replace(tmp, final)
        return final

    def compact(self) -> None:
        """Merge the parts sealed since the last merge into one file named by their range, then remove them."""
        small, self._small = self._small, []
        if len(small) < 2:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables([pq.read_table(p, schema=schema()) for p in small]).unify_dictionaries()
        self._put(table, f"part-{_range(small[0])[0]:06d}-{_range(small[-1])[1]:06d}")
        for p in small:
            p.unlink(missing_ok=True)

    def close(self) -> None:
        self.seal()


def parts(path: Path) -> list[Path]:
    """The complete files of a log, in the order they were written (hidden, unfinished ones left out, and
    small parts a merged file holds too)."""
    if path.is_file():
        return [path]
    if path.name == SHARDS_DIR:  # shards/<n>/exchanges.parquet, shard after shard
        logs = sorted(path.glob("*/exchanges.parquet"), key=lambda p: (len(p.parent.name), p.parent.name))
        return [part for log in logs for part in parts(log)]
    found = sorted(path.glob(PART_GLOB), key=_range)
    merged = [_range(p) for p in found if _range(p)[0] != _range(p)[1]]
    return [p for p in found if _range(p)[0] != _range(p)[1] or not any(a <= _range(p)[0] <= b for a, b in merged)]


def read_tables(path: Path, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Every record batch of a log, in order (one row group at a time: constant memory)."""
    import pyarrow.parquet as pq

    for part in parts(path):
        yield from pq.ParquetFile(part).iter_batches(batch_size=ROW_GROUP_ROWS, columns=columns)


def read_exchanges(path: Path) -> Iterator[Exchange]:
    """Every exchange of a Parquet log as ``Exchange`` values, in order."""
    for rb in read_tables(path):
        cols = [rb.column(i).to_pylist() for i in range(rb.num_columns)]
        for row in zip(*cols, strict=True):
            op, eq, iv, iw, sw, aw, status, code, bo, bi, err = row
            yield Exchange(op, eq, iv, iw, sw, aw, status, code, bo, bi, err or "")
