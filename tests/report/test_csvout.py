"""stats.csv and stats_history.csv start with Locust's columns, as Locust's own source lists them."""

from __future__ import annotations

import ast
import csv
import importlib.util
from pathlib import Path

from tests.report.conftest import SyntheticRun
from twin.report.csvout import HISTORY_COLUMNS, STATS_COLUMNS

_PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
#: Locust 2.47's lists, as ``_locust_columns`` reads them from its stats.py: the reference when Locust (a bench
#: extra) is not installed, as in CI; where it is, the test checks this copy against Locust's own source too.
LOCUST_2_47 = (
    ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
     "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s", *_PERCENTILES],
    ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *_PERCENTILES, "Total Request Count",
     "Total Failure Count", "Total Median Response Time", "Total Average Response Time", "Total Min Response Time",
     "Total Max Response Time", "Total Average Content Size"],
)  # fmt: skip


def _locust_columns() -> tuple[list[str], list[str]]:
    """Locust's two column lists, read from locust/stats.py without importing Locust (it patches gevent)."""
    spec = importlib.util.find_spec("locust")
    if spec is None or spec.origin is None:
        return LOCUST_2_47
    tree = ast.parse((Path(spec.origin).parent / "stats.py").read_text(encoding="utf-8"))
    percentiles: list[float] = []
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            target = node.targets[0]
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name == "PERCENTILES_TO_REPORT":
                percentiles = [ast.literal_eval(e) for e in node.value.elts]
            elif name in ("requests_csv_columns", "stats_history_csv_columns"):
                found[name] = node.value.elts
    # Locust's get_readable_percentiles, as written in stats.py:
    readable = [f"{int(p * 100) if (p * 100).is_integer() else round(100 * p, 6)}%" for p in percentiles]

    def expand(elts: list[ast.expr]) -> list[str]:
        out: list[str] = []
        for e in elts:
            out += readable if isinstance(e, ast.Starred) else [ast.literal_eval(e)]
        return out

    return expand(found["requests_csv_columns"]), expand(found["stats_history_csv_columns"])


def test_our_columns_start_with_locusts_in_locusts_order(full_run: SyntheticRun) -> None:
    stats, history = _locust_columns()
    assert (stats, history) == LOCUST_2_47  # Locust's own source, where it is installed
    assert stats == STATS_COLUMNS and history == HISTORY_COLUMNS
    for name, columns in (("stats.csv", stats), ("stats_history.csv", history)):
        with open(full_run.path / name, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        assert header[: len(columns)] == columns and len(header) > len(columns)  # then our own


def test_rows_read_like_locusts(full_run: SyntheticRun) -> None:
    with open(full_run.path / "stats.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["Name"] == "Aggregated" and rows[-1]["Type"] == ""
    assert [r["Name"] for r in rows[:-1]] == sorted(r["Name"] for r in rows[:-1])
    assert all(r["Type"] == "POST" for r in rows[:-1])
    for r in rows:
        assert int(r["50%"]) <= int(r["99%"]) <= int(r["100%"])
    with open(full_run.path / "stats_history.csv", newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    assert first["Requests/s"].count(".") == 1 and len(first["Requests/s"].split(".")[1]) == 6  # Locust's "%2f"
