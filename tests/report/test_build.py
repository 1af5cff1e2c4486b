"""The numbers in the report equal numbers computed independently from the exchange log.

Independently: every exchange read back with ``twin.metrics.read_exchange_log``, counted in plain Python,
percentiles by nearest rank on the sorted raw latencies. HDR histograms keep 3 significant digits, so a
percentile may be up to one HDR step (1/1024 of the value, plus the 1 µs recording unit) above the exact one.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.report.conftest import MIX, SyntheticRun
from twin import load_profile
from twin.metrics import read_exchange_log


def _outcome(ex) -> str:  # type: ignore[no-untyped-def]
    if ex.status == 200 and ex.code is not None:
        return str(ex.code)
    return f"http {ex.status}" if ex.status else (ex.error or "no answer")


class Expected:
    """Figures of one interface (or of everything), from raw exchanges."""

    def __init__(self, xs: list, success: dict[str, tuple[int, ...]], wall_s: float) -> None:  # type: ignore[type-arg]
        self.count = len(xs)
        failed = [ex for ex in xs if not ex.ok(success[ex.operation])]
        self.failures = len(failed)
        self.errors = Counter(_outcome(ex) for ex in failed)
        self.rate = self.count / wall_s
        self.late = sum(ex.sent_wall - ex.intended_wall > 0.005 for ex in xs)
        self.latency = sorted(ex.answered_wall - ex.intended_wall for ex in xs)
        self.service = sorted(ex.answered_wall - ex.sent_wall for ex in xs)
        self.bytes_in = sum(ex.bytes_in for ex in xs)

    @staticmethod
    def pct_ms(values: list[float], p: float) -> float:
        """HDR's rank rule (``int(p * n / 100 + 0.5)``, at least 1) on exact values."""
        rank = max(int(p * len(values) / 100 + 0.5), 1)
        return values[rank - 1] * 1000


def near(hdr_ms: float, exact_ms: float) -> bool:
    """An HDR value is the top of the bucket holding the exact one: at most 1/1024 + 1 µs above, 1 µs below."""
    return exact_ms - 0.0011 <= hdr_ms <= exact_ms * (1 + 2**-10) + 0.0011


@pytest.fixture(scope="module")
def expected(full_run: SyntheticRun) -> dict[str, Expected]:
    xs = list(read_exchange_log(full_run.path / "exchanges.parquet"))
    wall_s = json.loads((full_run.path / "summary.json").read_text())["wall_s"]
    by_op = defaultdict(list)
    for ex in xs:
        by_op[ex.operation].append(ex)
    out = {op: Expected(v, full_run.success, wall_s) for op, v in by_op.items()}
    out["Aggregated"] = Expected(xs, full_run.success, wall_s)
    return out


def _stats(run: SyntheticRun) -> dict[str, dict[str, str]]:
    with open(run.path / "stats.csv", newline="", encoding="utf-8") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def test_stats_csv_equals_the_raw_exchanges(full_run: SyntheticRun, expected: dict[str, Expected]) -> None:
    rows = _stats(full_run)
    assert set(rows) == set(MIX) | {"Aggregated"}
    for name, exp in expected.items():
        row = rows[name]
        assert int(row["Request Count"]) == exp.count and int(row["Failure Count"]) == exp.failures
        assert float(row["Requests/s"]) == pytest.approx(exp.rate, rel=1e-9)
        assert float(row["Failures/s"]) == pytest.approx(exp.failures / exp.count * exp.rate, rel=1e-9)
        assert int(row["Late Starts"]) == exp.late
        assert float(row["Average Content Size"]) == pytest.approx(exp.bytes_in / exp.count)
        errors = dict(part.rsplit(":", 1) for part in row["Errors By Outcome"].split(";") if part)
        assert {k: int(v) for k, v in errors.items()} == dict(exp.errors)
        for p in (50, 90, 99, 99.9):
            col = f"Latency p{p:g} ms"
            assert near(float(row[col]), exp.pct_ms(exp.latency, p)), (name, col)
            assert near(float(row[col.replace("Latency", "Service")]), exp.pct_ms(exp.service, p)), (name, col)
        assert near(float(row["Latency Max ms"]), exp.latency[-1] * 1000)
        assert int(row["99%"]) == round(float(row["Latency p99 ms"]))  # Locust's columns: whole ms
        assert int(row["Median Response Time"]) == round(float(row["Latency p50 ms"]))
    assert rows["FillingData"]["Failure Count"] == "0"  # its code 1 is a success (spec 2.34)


class _Rows(HTMLParser):
    """Cells of the report's tables, by table kind and row name."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], list[str]] = {}
        self.kind = ""
        self.current: list[str] | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.kind = a.get("data-kind") or ""
        elif tag == "tr" and a.get("data-name"):
            self.current = []
            self.rows[(self.kind, a["data-name"] or "")] = self.current
        elif tag == "td":
            self.text = ""

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.current is not None:
            self.current.append(self.text.strip())
        elif tag == "tr":
            self.current = None


def test_html_tables_show_the_same_numbers(full_run: SyntheticRun, expected: dict[str, Expected]) -> None:
    parser = _Rows()
    parser.feed((full_run.path / "report.html").read_text(encoding="utf-8"))
    for op in MIX:
        section, name, name_cn, _group, *cells = parser.rows[("interface", op)]
        exp = expected[op]
        spec = load_profile("qingke-mes-v1").operation(op)
        assert (section, name, name_cn) == (spec.section, op, spec.name_cn)  # as an MES team names its interfaces
        cells = ["", "", *cells]
        assert int(cells[2].replace(",", "")) == exp.count
        rate = float(cells[4].rstrip(" %")) / 100 if cells[4] != "0" else 0.0
        assert rate == pytest.approx(exp.failures / exp.count, rel=5e-3)  # shown with 3 digits
        by_code = [
            f"{k}: {n:,} ({n / exp.count * 100:.3g} %)"
            for k, n in sorted(exp.errors.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        assert cells[5] == " · ".join(by_code)  # the error rate by code
        p99 = float(cells[8].replace(",", ""))
        assert abs(p99 - exp.pct_ms(exp.latency, 99)) <= max(exp.pct_ms(exp.latency, 99) * 0.006, 0.006)  # 3 digits
    total = parser.rows[("group", "all")]
    assert int(total[1].replace(",", "")) == expected["Aggregated"].count


def test_slowest_interfaces_and_failures_by_code_answer_first(
    full_run: SyntheticRun, expected: dict[str, Expected]
) -> None:
    html = (full_run.path / "report.html").read_text(encoding="utf-8")
    parser = _Rows()
    parser.feed(html)
    slowest = [(name, cells) for (kind, name), cells in parser.rows.items() if kind == "slowest"]
    by_p99 = sorted(MIX, key=lambda op: -expected[op].pct_ms(expected[op].latency, 99))
    assert [name for name, _ in slowest] == by_p99  # slowest first, every interface of a small run
    section, op, name_cn, *_ = slowest[0][1]
    assert (section, op, name_cn) == (load_profile("qingke-mes-v1").operation(by_p99[0]).section, by_p99[0],
                                      load_profile("qingke-mes-v1").operation(by_p99[0]).name_cn)  # fmt: skip
    assert html.index('id="verdict"') < html.index('id="slowest"') < html.index('id="errors"') < html.index('id="line"')
    assert html.index('id="line"') < html.index('id="interfaces"') < html.index('id="plots"')
    errors = html[html.index('id="errors"') : html.index('id="line"')]
    assert "HTTP 503 Service Unavailable" in errors and "no answer (timeout)" in errors
    assert "refused by the MES (spec: 0 is success" in errors  # Inbound's code 1


def test_history_adds_up_to_the_totals(full_run: SyntheticRun, expected: dict[str, Expected]) -> None:
    with open(full_run.path / "stats_history.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    last: dict[str, dict[str, str]] = {}
    per_name: Counter[str] = Counter()
    for row in rows:
        last[row["Name"]] = row
        per_name[row["Name"]] += round(float(row["Requests/s"]) * float(row["Interval s"]))
    for name, exp in expected.items():
        assert int(last[name]["Total Request Count"]) == exp.count and per_name[name] == exp.count
        assert int(last[name]["Total Failure Count"]) == exp.failures
        assert float(last[name]["Total Average Response Time"]) == pytest.approx(
            sum(exp.latency) / exp.count * 1000, rel=1e-6
        )
        assert float(last[name]["Total Max Response Time"]) == pytest.approx(exp.latency[-1] * 1000)
    stamps = [int(r["Timestamp"]) for r in rows]
    assert stamps == sorted(stamps) and max(int(r["Backlog"]) for r in rows if r["Name"] == "Aggregated") > 100


def test_every_file_of_the_report_is_written(full_run: SyntheticRun) -> None:
    names = {p.name for p in full_run.path.iterdir()}
    assert {"report.html", "stats.csv", "stats_history.csv", "verdict.json", "slo.yaml", "plots"} <= names
    plots = {p.stem for p in (full_run.path / "plots").glob("*.png")}
    assert plots == {"throughput_p99", "spectrum", "errors", "backlog", "output_vs_latency", "interlocks"}
    for p in (full_run.path / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    verdict = json.loads((full_run.path / "verdict.json").read_text())
    assert verdict["met"] is False and any(c["target"] == "interlocks" for c in verdict["checks"])
    html = (full_run.path / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 6 and "http://" not in html and "https://" not in html
    assert html.index('id="verdict"') < html.index('id="answer"') < html.index('id="line"')
    order = [html.index(f'id="{part}"') for part in ("line", "settings", "interfaces", "plots")]
    assert order == sorted(order)
    assert math.isclose(json.loads((full_run.path / "summary.json").read_text())["line"]["yield"], 0.934)


def test_the_outage_table_sets_the_recorded_drain_beside_the_measured_one(full_run: SyntheticRun) -> None:
    parser = _Tables()
    parser.feed((full_run.path / "report.html").read_text(encoding="utf-8"))
    header, row = parser.after["outages"][:2]
    recorded, measured = row[header.index("drain (s, as the run recorded)")], row[-1]
    found = re.fullmatch(r"([\d.]+) \(± ([\d.]+)\)", measured)
    assert found, measured
    value, bucket = float(found[1]), float(found[2])
    assert value - bucket <= float(recorded) <= value  # the log agrees with the run, to a bucket


class _Tables(HTMLParser):
    """Rows (header first) of the tables after each ``<h2 id=...>`` or ``<h3 id=...>``."""

    def __init__(self) -> None:
        super().__init__()
        self.after: dict[str, list[list[str]]] = {}
        self.section = ""
        self.text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3") and dict(attrs).get("id"):
            self.section = dict(attrs).get("id") or ""
        elif tag == "tr" and self.section:
            self.after.setdefault(self.section, []).append([])
        elif tag in ("td", "th"):
            self.text = ""

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.text is not None and self.section in self.after:
            self.after[self.section][-1].append(self.text.strip())
            self.text = None


def test_summary_json_for_machines_says_what_the_report_says(full_run: SyntheticRun) -> None:
    """summary.json (the run's, for machines) and verdict.json agree with stats.csv and the page, figure for figure."""
    summary = json.loads((full_run.path / "summary.json").read_text())
    rows = _stats(full_run)
    for name, row in rows.items():
        s = summary["total"] if name == "Aggregated" else summary["interfaces"][name]
        assert s["count"] == int(row["Request Count"]) and s["failures"] == int(row["Failure Count"])
        assert s["error_rate"] == pytest.approx(float(row["Error Rate"]), abs=1e-6)
        for p in ("p50", "p90", "p99", "p99.9", "max"):
            for kind, column in (("latency_ms", "Latency"), ("service_ms", "Service")):
                assert s[kind][p] == pytest.approx(float(row[f"{column} {p} ms".replace(" max ", " Max ")]), abs=5e-4)
    verdict = json.loads((full_run.path / "verdict.json").read_text())
    html = (full_run.path / "report.html").read_text(encoding="utf-8")
    assert verdict["headline"] in html and verdict["slo_file"].endswith("default.yaml")
    assert summary["report"]["headline"] == verdict["headline"] and summary["report"]["met"] is verdict["met"]
    assert sum(c["passed"] is False for c in verdict["checks"]) == int(verdict["headline"].split()[3])



def test_a_saturated_run_says_in_its_verdict_that_the_figures_are_the_twins_limit(
    full_run: SyntheticRun, tmp_path: Path
) -> None:
    from tests.report.conftest import write_run
    from twin.report import write_report

    run = write_run(tmp_path, with_extras=False, wall_s=60)
    summary = json.loads((run.path / "summary.json").read_text())
    summary["pace"] = {"saturated": True, "speed_asked": 2000, "speed_achieved": 310.5, "saturated_s": 41.2}
    (run.path / "summary.json").write_text(json.dumps(summary))
    verdict = write_report(run.path, slo="default")
    page = (run.path / "report.html").read_text(encoding="utf-8")
    verdict_box = page[page.index('id="verdict"') : page.index("</div>\n", page.index('id="saturated"'))]
    assert "speed 2000 asked, 310.5 achieved" in verdict_box
    assert "the twin&#39;s limit, not the MES&#39;s" in verdict_box
    assert "the twin: time saturated 41.2 s" in " ".join(c.describe() for c in verdict.failed)
    assert 'id="saturated"' not in (full_run.path / "report.html").read_text(encoding="utf-8")  # kept its pace
