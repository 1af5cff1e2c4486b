"""Read the exchange log as numpy columns, a chunk at a time: the whole log never sits in memory.

A Parquet log (``exchanges.parquet``, what runs write) is read row group by row group with pyarrow: the columns
are typed already, names dictionary-encoded, so a chunk costs a few array conversions.

The rest of this module reads the older gzip CSV log (``exchanges.csv.gz``).
``twin.metrics.read_exchange_log`` yields one ``Exchange`` per row, which is right for tests and tools but
costs about 20 µs a row in Python; a 1-hour run at 1,000 req/s has 3.6 M rows. Here numpy's C CSV parser
(``np.loadtxt``) reads blocks of rows into typed arrays, operation and equipment names turned into small
integers on the way. Blocks are cut on record boundaries (a quoted field may hold a newline); a block with
such a field is parsed by the ``csv`` module instead, so the result is exact either way. Blocks are
independent, so a large log's blocks are parsed by worker processes while this one decompresses.
"""

from __future__ import annotations

import csv
import gzip
import io
import multiprocessing
import os
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from twin.errors import ConfigError
from twin.metrics.exchange import COLUMNS
from twin.metrics.parquetlog import is_parquet_log, read_tables

if TYPE_CHECKING:  # pyarrow is imported when a Parquet log is read, not by `twin run --help`
    import pyarrow as pa

BLOCK_BYTES = 2 << 20  # about 20,000 rows of text per chunk
PARALLEL_FROM_BYTES = 16 << 20  # a compressed log this big (about 600,000 rows) is parsed by worker processes
MAX_WORKERS = 2
_FIELDS = [
    ("operation", "i4"),  # index into LogReader.operations
    ("equipment", "i4"),  # index into LogReader.equipment
    ("intended_virtual_s", "f8"),
    ("intended_wall", "f8"),
    ("sent_wall", "f8"),
    ("answered_wall", "f8"),
    ("status", "i4"),
    ("code", "U24"),  # empty where the exchange has no business code: made NaN after parsing
    ("bytes_out", "i8"),
    ("bytes_in", "i8"),
]
_DTYPE = np.dtype(_FIELDS)
_ERROR = COLUMNS.index("error")
_CODE = COLUMNS.index("code")


class Names:
    """Strings (operations, equipment) as small integers, stable across chunks."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def of(self, name: str) -> int:
        idx = self.index.get(name)
        if idx is None:
            idx = self.index[name] = len(self.names)
            self.names.append(name)
        return idx


@dataclass(slots=True)
class Chunk:
    """A block of consecutive exchanges as columns. ``error`` is filled only where there was no answer."""

    operation: np.ndarray  # int32 index into LogReader.operations.names
    equipment: np.ndarray  # int32 index into LogReader.equipment.names
    intended_virtual_s: np.ndarray
    intended_wall: np.ndarray
    sent_wall: np.ndarray
    answered_wall: np.ndarray
    status: np.ndarray
    code: np.ndarray  # float: NaN where there is no business code
    bytes_out: np.ndarray
    bytes_in: np.ndarray
    error: np.ndarray  # object: "" except where status == 0

    def __len__(self) -> int:
        return len(self.status)


def _codes(column: np.ndarray) -> np.ndarray:
    return np.where(column == "", "nan", column).astype(np.float64)


def _fast(text: str, operations: Names, equipment: Names) -> np.ndarray | None:
    """numpy's parser, or None when a quoted field spans lines and the exact path must read the chunk."""
    if '"' in text and any(line.count('"') % 2 for line in text.split("\n")):
        return None
    return np.loadtxt(
        io.StringIO(text),
        delimiter=",",
        quotechar='"',
        usecols=tuple(range(len(_FIELDS))),
        dtype=_DTYPE,
        converters={0: operations.of, 1: equipment.of},
        ndmin=1,
    )


def _exact(text: str, operations: Names, equipment: Names) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    records = [rec for rec in csv.reader(io.StringIO(text)) if rec]
    if any(len(rec) != len(COLUMNS) for rec in records):
        bad = next(rec for rec in records if len(rec) != len(COLUMNS))
        raise ValueError(f"{len(bad)} fields instead of {len(COLUMNS)}: {bad[:3]}...")
    columns = list(zip(*records, strict=True)) if records else [() for _ in COLUMNS]
    rows: dict[str, np.ndarray] = {}
    for i, (name, kind) in enumerate(_FIELDS):
        if i < 2:
            names = operations if i == 0 else equipment
            rows[name] = np.array([names.of(v) for v in columns[i]], dtype=np.int32)
        else:
            rows[name] = np.array(columns[i], dtype=kind)
    return rows, records


def _blocks(fh: BinaryIO, size: int) -> Iterator[str]:
    """The stream as text blocks of whole records (a quoted field may hold a newline)."""
    rest = b""
    while True:
        data = fh.read(size)
        buf = rest + data
        if not buf:
            return
        cut = buf.rfind(b"\n") + 1 if data else len(buf)
        if cut == 0:
            rest = buf
            continue
        text, rest = buf[:cut], buf[cut:]
        while text.count(b'"') % 2:  # cut inside a quoted field: take lines until the record ends
            nl = rest.find(b"\n")
            if nl < 0:
                more = fh.read(size)
                if not more:
                    text, rest = text + rest, b""
                    break
                rest += more
                continue
            text, rest = text + rest[: nl + 1], rest[nl + 1 :]
        yield text.decode("utf-8")


@dataclass(slots=True)
class _Parsed:
    """One block parsed with its own name tables (blocks are independent of each other)."""

    columns: dict[str, np.ndarray]
    operations: list[str]
    equipment: list[str]
    errors: dict[int, str]  # row -> error text, for rows without an answer


def parse_block(text: str) -> _Parsed:
    """Parse one block of whole records."""
    if "\n\n" in text or text.startswith("\n"):
        text = "".join(line for line in text.splitlines(keepends=True) if line.strip())
    ops, eqs = Names(), Names()
    records: list[list[str]] | None = None
    rows = _fast(text, ops, eqs)
    if rows is None:
        rows, records = _exact(text, ops, eqs)
    columns = {name: np.asarray(rows[name]) for name, _ in _FIELDS}
    columns["code"] = _codes(columns["code"])
    errors: dict[int, str] = {}
    missing = np.flatnonzero(columns["status"] == 0)
    if len(missing):
        lines = text.split("\n") if records is None else []
        for i in missing:
            rec = records[i] if records is not None else next(csv.reader([lines[i]]))
            errors[int(i)] = rec[_ERROR] if len(rec) > _ERROR else ""
    return _Parsed(columns, ops.names, eqs.names, errors)


def default_workers(path: Path) -> int:
    """Worker processes for parsing: none for a small log (starting them costs more than they save), else
    up to two; each gets whole blocks, so the main process only decompresses and accumulates."""
    if path.stat().st_size < PARALLEL_FROM_BYTES:
        return 0
    return min(MAX_WORKERS, os.cpu_count() or 1)


def _parsed(blocks: Iterator[str], workers: int) -> Iterator[_Parsed]:
    """Blocks parsed in order, here or by ``workers`` forked processes (two blocks each in flight at most).

    Workers are forked, never spawned: spawn re-imports the caller's main script in each worker, and a
    script without a ``__main__`` guard would run again there (fork is safe from one thread only: see
    ``LogReader``). A worker that dies (out of memory) costs speed, not the report: what it held is parsed
    here, and the rest too.
    """
    if workers <= 0:
        yield from (parse_block(text) for text in blocks)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: deque[tuple[str, Future[_Parsed]]] = deque()
        try:
            for text in blocks:
                pending.append((text, pool.submit(parse_block, text)))
                if len(pending) >= 2 * workers:
                    yield _first(pending)
            while pending:
                yield _first(pending)
        except BrokenProcessPool:
            yield from (parse_block(text) for text, _ in pending)
            yield from (parse_block(text) for text in blocks)
        finally:
            for _, f in pending:
                f.cancel()


def _first(pending: deque[tuple[str, Future[_Parsed]]]) -> _Parsed:
    """The oldest block's result; it leaves the queue only once it is there (a dead worker's text stays)."""
    block = pending[0][1].result()
    pending.popleft()
    return block


class LogReader:
    """Iterate an exchange log (Parquet, or the older gzip CSV) in chunks of typed columns, in log order.

    ``workers``: processes that parse CSV blocks (None: ``default_workers``); the chunks are the same either way.
    Workers are used only from a single-threaded process (``twin report``), since forking a process with
    other threads alive may deadlock the child; ``workers_used`` says what the last pass did.
    """

    def __init__(self, path: Path, *, block_bytes: int = BLOCK_BYTES, workers: int | None = None) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self.workers = workers
        self.operations = Names()
        self.equipment = Names()
        self.rows_read = 0
        self.workers_used = 0

    def __iter__(self) -> Iterator[Chunk]:
        if is_parquet_log(self.path):
            yield from self._parquet()
            return
        try:
            workers = default_workers(self.path) if self.workers is None else self.workers
            self.workers_used = workers = workers if threading.active_count() == 1 else 0
            with gzip.open(self.path, "rb") as fh:
                header = next(csv.reader([fh.readline().decode("utf-8")]), None)
                if header is None:
                    return
                if tuple(header) != COLUMNS:
                    raise ConfigError(f"{self.path}: unexpected columns {header}, expected {list(COLUMNS)}")
                for block in _parsed(_blocks(fh, self.block_bytes), workers):
                    yield self._chunk(block)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise ConfigError(f"{self.path}: cannot read the exchange log: {exc}") from exc
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"{self.path}: a row after row {self.rows_read} is not an exchange: {exc}") from exc

    def _parquet(self) -> Iterator[Chunk]:
        import pyarrow as pa

        try:
            for rb in read_tables(self.path):
                yield self._arrow_chunk(rb)
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"{self.path}: cannot read the exchange log: {exc}") from exc

    @staticmethod
    def _indices(column: pa.Array, names: Names) -> np.ndarray:
        """A dictionary-encoded string column as indices into ``names`` (stable across chunks)."""
        import pyarrow as pa

        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        lookup = np.array([names.of(v) for v in column.dictionary.to_pylist()] or [0], dtype=np.int32)
        return lookup[column.indices.fill_null(0).to_numpy(zero_copy_only=False)]

    def _arrow_chunk(self, rb: pa.RecordBatch) -> Chunk:
        import pyarrow as pa

        col = {name: rb.column(i) for i, name in enumerate(rb.schema.names)}

        def f8(name: str) -> np.ndarray:
            return col[name].cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

        status = col["status"].fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        error = np.full(len(status), "", dtype=object)
        missing = np.flatnonzero(status == 0)
        if len(missing):
            texts = col["error"].take(pa.array(missing)).to_pylist()
            error[missing] = [t or "" for t in texts]
        self.rows_read += len(status)
        return Chunk(
            operation=self._indices(col["operation"], self.operations),
            equipment=self._indices(col["equipment"], self.equipment),
            intended_virtual_s=f8("intended_virtual_s"),
            intended_wall=f8("intended_wall"),
            sent_wall=f8("sent_wall"),
            answered_wall=f8("answered_wall"),
            status=status,
            code=f8("code"),
            bytes_out=col["bytes_out"].fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
            bytes_in=col["bytes_in"].fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
            error=error,
        )

    def _chunk(self, block: _Parsed) -> Chunk:
        cols = block.columns
        ops = np.array([self.operations.of(n) for n in block.operations] or [0], dtype=np.int32)
        eqs = np.array([self.equipment.of(n) for n in block.equipment] or [0], dtype=np.int32)
        status = cols["status"].astype(np.int32, copy=False)
        error = np.full(len(status), "", dtype=object)
        for i, text in block.errors.items():
            error[i] = text
        self.rows_read += len(status)
        return Chunk(
            operation=ops[cols["operation"]],
            equipment=eqs[cols["equipment"]],
            intended_virtual_s=cols["intended_virtual_s"].astype(np.float64, copy=False),
            intended_wall=cols["intended_wall"].astype(np.float64, copy=False),
            sent_wall=cols["sent_wall"].astype(np.float64, copy=False),
            answered_wall=cols["answered_wall"].astype(np.float64, copy=False),
            status=status,
            code=cols["code"],
            bytes_out=cols["bytes_out"].astype(np.int64, copy=False),
            bytes_in=cols["bytes_in"].astype(np.int64, copy=False),
            error=error,
        )
