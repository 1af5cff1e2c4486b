"""The run folder: ``reports/<line>/<timestamp>/``, readable whenever the run stops.

``settings.json`` is written when the run starts; the exchange log (``exchanges.parquet``, a folder of
Parquet files, see ``twin.metrics.parquetlog``) streams as the run goes;
``histograms.json`` (HDR, exact and mergeable) and ``summary.json`` are rewritten every ``checkpoint_s``
seconds and at the end, each atomically (temp file + rename). So a run killed at any point leaves a folder
whose files are all complete and consistent up to the last checkpoint; ``summary.json`` says whether the
run ``finished``, was ``interrupted`` (Ctrl-C) or is ``running`` (the process died).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from twin.metrics.exchange import Exchange
from twin.metrics.histograms import LatencyBook
from twin.metrics.log import LOG_NAME, ExchangeLog


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
    os.replace(tmp, path)


def new_run_dir(root: Path, line: str, *, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = root / line / stamp
    n = 1
    while path.exists():
        n += 1
        path = root / line / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


class RunFolder:
    """Everything a run writes, in one place."""

    def __init__(
        self,
        path: Path,
        settings: dict[str, Any],
        *,
        checkpoint_s: float = 10.0,
    ) -> None:
        self.path = path
        self.settings = settings
        self.checkpoint_s = checkpoint_s
        self.book = LatencyBook()
        self.log = ExchangeLog(path / LOG_NAME)
        self.started_wall = time.time()
        self.extra: dict[str, Any] = {}
        self.state = "running"
        self._last_checkpoint = time.monotonic()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-folder")
        self._writing: Future[None] | None = None
        write_json(path / "settings.json", settings)
        self.checkpoint()

    def record(self, ex: Exchange, ok: bool) -> None:
        self.book.record(ex, success=ok)
        self.log.append(ex)
        if self.due():
            self.checkpoint_in_background()

    def summary(self, *, percentiles: bool = True) -> dict[str, Any]:
        duration = max(time.time() - self.started_wall, 1e-9)
        return {
            "state": self.state,
            "started": datetime.fromtimestamp(self.started_wall, UTC).isoformat(),
            "wall_s": duration,
            "exchanges_logged": self.log.rows_written,
            **self.book.summary(duration, percentiles=percentiles),
            **self.extra,
        }

    def checkpoint(self, *, percentiles: bool = True) -> None:
        """Flush and rewrite the files now (waiting for a background checkpoint still being written)."""
        if self._writing is not None:
            self._writing.result()
        self.log.flush()
        write_json(self.path / "histograms.json", self.book.encode())
        write_json(self.path / "summary.json", self.summary(percentiles=percentiles))
        self._last_checkpoint = time.monotonic()

    def checkpoint_in_background(self) -> None:
        """The periodic checkpoint of a running run, without stalling the loop that sends the requests.

        The histograms are encoded here (HDR's C encoder: about 0.2 ms each) and a worker thread serialises
        and writes the files; summary.json then has counts but no percentiles (1 ms per histogram), which
        histograms.json holds exactly. Each file is still replaced atomically.
        """
        self._last_checkpoint = time.monotonic()
        if self._writing is not None and not self._writing.done():
            return  # the previous one is still being written: the next tick will do
        self.log.flush(wait=False)
        encoded, summary = self.book.encode(), self.summary(percentiles=False)
        self._writing = self._writer.submit(self._write, encoded, summary)

    def _write(self, encoded: dict[str, Any], summary: dict[str, Any]) -> None:
        write_json(self.path / "histograms.json", encoded)
        write_json(self.path / "summary.json", summary)

    def due(self) -> bool:
        return time.monotonic() - self._last_checkpoint >= self.checkpoint_s

    def finish(self, state: str = "finished") -> dict[str, Any]:
        self.state = state
        self.checkpoint()
        self.log.close()
        self._writer.shutdown(wait=True)
        return self.summary()
