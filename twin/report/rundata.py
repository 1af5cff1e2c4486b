"""A run folder, read back for reporting: settings, summary, histograms and where the exchange log is.

Only ``summary.json`` is required: a run writes it first and rewrites it at every checkpoint, so any folder
a run ever touched has one. Everything else is optional and the report says what it had to leave out:
a folder from a killed run, or one copied without its log, still gets a report.

What the report reads from the run's extras in ``summary.json`` is described in ``twin.report.extras``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from twin.errors import ConfigError
from twin.metrics import LatencyBook, find_log, read_exchange_log
from twin.metrics.histograms import InterfaceStats

LOG_NAME = "exchanges.parquet"  # or exchanges.csv.gz in a folder written before December 2026


@dataclass(slots=True)
class RunData:
    """Everything the report reads from one run folder."""

    path: Path
    settings: dict[str, Any]
    summary: dict[str, Any]
    book: LatencyBook
    log_path: Path | None
    notes: list[str] = field(default_factory=list)
    exact: bool = True  # the histograms are the run's own (False: rebuilt from the log, success = code 0)

    @property
    def name(self) -> str:
        """``<line>/<timestamp>``: how people refer to a run."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def wall_s(self) -> float:
        return float(self.summary.get("wall_s") or 0.0)

    @property
    def state(self) -> str:
        return str(self.summary.get("state", "unknown"))

    @property
    def started_wall(self) -> float | None:
        started = self.summary.get("started")
        if not isinstance(started, str):
            return None
        try:
            return datetime.fromisoformat(started).timestamp()
        except ValueError:
            return None

    def interfaces(self) -> dict[str, InterfaceStats]:
        return self.book.interfaces


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path.parent}: not a run folder: it has no {path.name} ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: {what} is not valid JSON: {exc.msg}") from exc


def _book_from_log(path: Path) -> LatencyBook:
    """Rebuild the histograms from the log (slow path, for folders without histograms.json).

    The log does not say which business codes the run counted as success; 0 is the spec's rule.
    """
    book = LatencyBook()
    for ex in read_exchange_log(path):
        book.record(ex, success=ex.ok())
    return book


def load_run(run_dir: str | Path) -> RunData:
    """Read a run folder; a folder that is not one is bad input (exit 2), named with what is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run folder (expected reports/<line>/<timestamp>/)")
    summary = _read_json(path / "summary.json", "the run summary")
    if not isinstance(summary, dict):
        raise ConfigError(f"{path / 'summary.json'}: expected a JSON object, got {type(summary).__name__}")
    settings: dict[str, Any] = {}
    notes: list[str] = []
    if (path / "settings.json").is_file():
        loaded = _read_json(path / "settings.json", "the run settings")
        settings = loaded if isinstance(loaded, dict) else {"settings": loaded}
    else:
        notes.append("settings.json is missing: the run's settings are unknown.")
    log_path = find_log(path)
    if log_path is None:
        notes.append(f"{LOG_NAME} is missing: the plots over time, the backlog and stats_history.csv are left out.")
    if (path / "histograms.json").is_file():
        encoded = _read_json(path / "histograms.json", "the latency histograms")
        try:
            book = LatencyBook.decode(encoded)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path / 'histograms.json'}: not HDR histograms as a run writes them: {exc}") from exc
    elif log_path is not None:
        book = _book_from_log(log_path)
        notes.append("histograms.json is missing: the tables were rebuilt from the exchange log (code 0 = success).")
    else:
        raise ConfigError(f"{path}: not a run folder: it has neither histograms.json nor {LOG_NAME}")
    return RunData(path, settings, summary, book, log_path, notes, exact=(path / "histograms.json").is_file())
