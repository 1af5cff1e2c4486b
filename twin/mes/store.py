"""The MES's SQLite store: one writer thread that commits in groups, and an answer only after its commit.

Why a thread: sqlite3 calls block, and an fsync per request would cap the MES at a few hundred requests
per second. Every request hands its statements to the writer and awaits a future; the writer takes
everything queued, runs it in ONE transaction, commits (WAL; ``synchronous`` FULL by default, so the
commit is on disk), and only then resolves the futures on the event loop. Under load the groups grow, so
the cost of a commit is shared. An acknowledged exchange is therefore durable: a SIGKILL right after the
answer loses nothing (``tests/mes/test_durability.py``). FIFO order is kept, so a restart always sees a
prefix of what was answered.

State is documents (``docs``: kind, key, JSON body) read back whole at start, plus append-only logs
(exchanges, genealogy, interlocks, batch pushes) that are written and queried but never loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson

from twin.errors import ConfigError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, operation TEXT NOT NULL, equipment TEXT, sfc TEXT,
    code INTEGER NOT NULL, reason TEXT, msg TEXT, request BLOB, answer BLOB);
CREATE INDEX IF NOT EXISTS exchanges_sfc ON exchanges (sfc) WHERE sfc IS NOT NULL;
CREATE TABLE IF NOT EXISTS genealogy (
    parent TEXT NOT NULL, child TEXT NOT NULL, relation TEXT NOT NULL, equipment TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS genealogy_parent ON genealogy (parent);
CREATE INDEX IF NOT EXISTS genealogy_child ON genealogy (child);
CREATE TABLE IF NOT EXISTS interlocks (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, code TEXT NOT NULL, equipment TEXT NOT NULL, detector TEXT,
    address TEXT, message TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT, finished_at TEXT);
CREATE TABLE IF NOT EXISTS pushes (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, equipment TEXT NOT NULL, batch_sfc TEXT NOT NULL,
    address TEXT, outcome TEXT NOT NULL, detail TEXT);
"""

PUT_DOC = "INSERT OR REPLACE INTO docs (kind, key, body) VALUES (?, ?, ?)"
LOG_EXCHANGE = (
    "INSERT INTO exchanges (at, operation, equipment, sfc, code, reason, msg, request, answer)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LOG_GENEALOGY = "INSERT INTO genealogy (parent, child, relation, equipment, at) VALUES (?, ?, ?, ?, ?)"

MAX_GROUP = 2000
MAX_SLOW_COMMIT_MS = 10_000.0  # the injected slow disk never holds a commit longer (faults.MAX_SLOW_DB_MS)
_STOP = object()

Statement = tuple[str, tuple[Any, ...]]


class Tx:
    """The changes one request wants committed, collected while its rules run.

    Documents are kept by key (the last put of a key wins, as it would in the database), and the writer
    merges them across a whole group, so a product moved by many requests of one group is written once.
    """

    __slots__ = ("docs", "statements")

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], bytes] = {}
        self.statements: list[Statement] = []

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self.docs[(kind, key)] = orjson.dumps(doc)

    def genealogy(self, parent: str, child: str, relation: str, equipment: str, at: str) -> None:
        self.statements.append((LOG_GENEALOGY, (parent, child, relation, equipment, at)))

    def add(self, sql: str, params: tuple[Any, ...]) -> None:
        self.statements.append((sql, params))


class StoreClosed(RuntimeError):
    """The writer is gone or failed a write for a reason other than SQLite's: the exchange is not stored."""


@dataclass(slots=True)
class Snapshot:
    """What a restart reads back: every document by kind, and the highest log ids."""

    docs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    max_interlock_id: int = 0
    max_push_id: int = 0
    exchanges: int = 0


@dataclass(slots=True)
class StoreStats:
    commits: int = 0
    statements: int = 0
    jobs: int = 0
    largest_group: int = 0
    last_commit_ms: float = 0.0
    failures: int = 0


@dataclass(slots=True)
class _Job:
    tx: Tx | None
    query: Statement | None
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None


class Store:
    """SQLite in WAL mode behind a group-committing writer thread."""

    def __init__(self, path: str, *, synchronous: str = "FULL", slow_commit_ms: float = 0.0) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.slow_commit_ms = slow_commit_ms  # fault injection: a slow disk (read by the writer each commit)
        self.stats = StoreStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready: Future[Snapshot] = Future()
        self._closing = threading.Event()  # wakes a writer that sleeps for an injected slow commit

    # -- life cycle ----------------------------------------------------------------------------------
    def open(self) -> Snapshot:
        """Start the writer, create the schema, and read back the state (blocking; call before serving)."""
        self._thread = threading.Thread(target=self._run, name=f"mes-store {self.path}", daemon=True)
        self._thread.start()
        return self._ready.result(timeout=120)

    def stop_waiting(self) -> None:
        """Cut an injected slow commit short from now on (the MES is stopping)."""
        self._closing.set()

    def close(self) -> None:
        if self._thread is not None:
            self._closing.set()
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    def queued(self) -> int:
        return self._queue.qsize()

    # -- requests from the event loop ------------------------------------------------------------------
    def commit(self, tx: Tx) -> asyncio.Future[None]:
        """A future that is done once the changes are committed (or failed)."""
        return self._submit(tx, None)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> asyncio.Future[list[tuple[Any, ...]]]:
        """Read through the writer's connection (so ``:memory:`` works and reads see every commit)."""
        return self._submit(None, (sql, params))

    def _submit(self, tx: Tx | None, query: Statement | None) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._thread is None or not self._thread.is_alive():  # never wait on a writer that is gone
            future.set_exception(StoreClosed(f"the MES database {self.path} is not open"))
        else:
            self._queue.put(_Job(tx, query, future, loop))
        return future

    # -- the writer thread ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        return conn

    def _load(self, conn: sqlite3.Connection) -> Snapshot:
        snap = Snapshot()
        for kind, key, body in conn.execute("SELECT kind, key, body FROM docs"):
            snap.docs.setdefault(kind, {})[key] = orjson.loads(body)
        snap.max_interlock_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM interlocks").fetchone()[0]
        snap.max_push_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM pushes").fetchone()[0]
        snap.exchanges = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
        return snap

    def _run(self) -> None:
        try:
            conn = self._connect()
            self._ready.set_result(self._load(conn))
        except (sqlite3.Error, OSError) as exc:
            self._ready.set_exception(ConfigError(f"cannot open the MES database {self.path}: {exc}"))
            return
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    break
                group = [first]
                stop = False
                while len(group) < MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    group.append(item)
                try:
                    self._apply(conn, group)
                except Exception as exc:  # the writer outlives anything one group does: fail it, go on
                    log.exception("MES store: a group of %d writes failed", len(group))
                    self._fail(conn, group, exc)
                if stop:
                    break
        finally:
            conn.close()
            self._fail_queued()

    def _fail(self, conn: sqlite3.Connection, group: list[_Job], exc: BaseException) -> None:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        self.stats.failures += len(group)
        for job in group:
            job.error = exc if isinstance(exc, sqlite3.Error) else StoreClosed(f"the write failed: {exc!r}")
        self._resolve(group)

    def _fail_queued(self) -> None:
        """Whatever is still queued when the writer ends is refused, never left waiting."""
        left: list[_Job] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                item.error = StoreClosed(f"the MES database {self.path} was closed")
                left.append(item)
        self._resolve(left)

    def _slow_commit(self) -> None:
        """Fault injection: a slow disk, bounded, and cut short when the store closes."""
        ms = self.slow_commit_ms
        if isinstance(ms, int | float) and ms > 0:
            self._closing.wait(min(float(ms), MAX_SLOW_COMMIT_MS) / 1000.0)

    def _apply(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            conn.execute("BEGIN")
            self._execute(conn, group)
            self._slow_commit()
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._apply_one_by_one(conn, group)
        self.stats.commits += 1
        self.stats.jobs += len(group)
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        self.stats.last_commit_ms = (time.perf_counter() - started) * 1000.0
        self._resolve(group)

    def _apply_one_by_one(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        """After a failed group: isolate the job that fails, commit the others."""
        for job in group:
            job.error = None
            try:
                conn.execute("BEGIN")
                self._execute(conn, [job])
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                job.error = exc
                self.stats.failures += 1
                log.error("MES store: a write failed and was refused: %s", exc)

    def _execute(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        """One group: log statements in order (runs of one statement as executemany), documents merged."""
        docs: dict[tuple[str, str], bytes] = {}
        statements: list[Statement] = []
        for job in jobs:
            if job.query is not None:  # a read sees everything queued before it
                self._write(conn, docs, statements)
                docs, statements = {}, []
                job.result = conn.execute(*job.query).fetchall()
            elif job.tx is not None:
                docs.update(job.tx.docs)
                statements.extend(job.tx.statements)
        self._write(conn, docs, statements)

    def _write(self, conn: sqlite3.Connection, docs: dict[tuple[str, str], bytes], statements: list[Statement]) -> None:
        for sql, run in itertools.groupby(statements, key=lambda st: st[0]):
            conn.executemany(sql, [params for _, params in run])
        if docs:
            conn.executemany(PUT_DOC, [(kind, key, body) for (kind, key), body in docs.items()])
        self.stats.statements += len(statements) + len(docs)

    @staticmethod
    def _resolve(group: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in group:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
