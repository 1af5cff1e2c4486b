"""Every optional part of a run folder may be missing: the report says what it left out, and never fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.report.conftest import write_run
from twin.errors import ConfigError
from twin.metrics import Exchange, ExchangeLog, read_exchange_log
from twin.metrics.runfolder import RunFolder
from twin.report import write_report


def test_a_run_without_extras_reports_traffic_only(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_extras=False, wall_s=120)
    verdict = write_report(run.path)
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert verdict.slo_file is None and verdict.exit_code == 0 and "NO SLO CHECKED" in html
    assert "no line KPIs" in html and "no interlock was sent" in html and "had no outage" in html
    assert "no hourly output" in html
    assert {p.stem for p in (run.path / "plots").glob("*.png")} == {"throughput_p99", "spectrum", "errors"}
    assert html.count("data:image/png;base64,") == 3


def test_a_folder_without_log_or_histograms_or_settings_still_reports(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    shutil.copytree(run.path, tmp_path / "no-log")
    shutil.rmtree(tmp_path / "no-log" / "exchanges.parquet")
    (tmp_path / "no-log" / "settings.json").unlink()
    write_report(tmp_path / "no-log")
    html = (tmp_path / "no-log" / "report.html").read_text(encoding="utf-8")
    assert "exchanges.parquet is missing" in html and "settings.json is missing" in html
    assert not (tmp_path / "no-log" / "stats_history.csv").exists()
    shutil.copytree(run.path, tmp_path / "no-hist")
    (tmp_path / "no-hist" / "histograms.json").unlink()
    write_report(tmp_path / "no-hist")
    with open(tmp_path / "no-log" / "stats.csv", encoding="utf-8") as a, open(tmp_path / "no-hist" / "stats.csv") as b:
        counts = [[r.split(",")[:3] for r in f.read().splitlines()] for f in (a, b)]
    assert counts[0] == counts[1]  # rebuilt from the log: the same counts


def test_a_folder_with_the_older_gzip_csv_log_reports_the_same(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_extras=False, wall_s=120)
    shutil.copytree(run.path, tmp_path / "csv")
    with ExchangeLog(tmp_path / "csv" / "exchanges.csv.gz", flush_rows=500) as log:
        for ex in read_exchange_log(run.path / "exchanges.parquet"):
            log.append(ex)
    shutil.rmtree(tmp_path / "csv" / "exchanges.parquet")
    write_report(run.path)
    write_report(tmp_path / "csv")
    for name in ("stats.csv", "stats_history.csv"):
        assert (tmp_path / "csv" / name).read_text() == (run.path / name).read_text()
    assert {p.name for p in (tmp_path / "csv" / "plots").iterdir()} == {p.name for p in (run.path / "plots").iterdir()}


def test_a_run_killed_before_any_exchange(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "empty", {"line": "mini"})
    run.checkpoint()  # what a crash right after the start leaves: state "running", nothing recorded
    run.log.close()
    write_report(run.path)
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "This run did not finish" in html and "state: running" in html
    assert (run.path / "stats.csv").read_text().count("\n") == 2  # header and Aggregated


def test_a_log_cut_between_checkpoints_is_noted(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_extras=False, wall_s=120)
    with ExchangeLog(run.path / "exchanges.parquet") as log:  # rows the histograms never saw
        for _ in range(5):
            log.append(Exchange("Heartbeat", "EQ-1", 1, 1, 1, 1.002, 200, 0, 10, 10))
    write_report(run.path)
    assert "the run stopped between two checkpoints" in (run.path / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "not a run folder: it has no summary.json"),
        (lambda p: (p / "summary.json").write_text("{oops"), "summary.json:1: the run summary is not valid JSON"),
        (lambda p: (p / "summary.json").write_text("[]"), "expected a JSON object"),
        (lambda p: ((p / "summary.json").write_text("{}"), (p / "histograms.json").write_text('{"x": 1}')),
         "not HDR histograms"),
    ],
)  # fmt: skip
def test_what_is_not_a_run_folder_is_bad_input(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_garbage_extras_do_not_break_the_page(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_extras=False, wall_s=120)
    summary = json.loads((run.path / "summary.json").read_text())
    summary.update(line={"hourly": "soon", "oee": {"A": 0.5}, "note": None}, interlocks=[{"code": 1}, "junk"],
                   outages=[{"start_wall": "x"}], output_cost_of_mes_latency=12.5)  # fmt: skip
    (run.path / "summary.json").write_text(json.dumps(summary))
    write_report(run.path)
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "50.00 %" in html and "12.5" in html and 'id="interlocks"' in html and 'id="outages"' in html


def test_summary_json_gets_back_what_a_checkpoint_left_out_and_the_verdict(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_extras=False, wall_s=120)
    before = json.loads((run.path / "summary.json").read_text())
    cut = json.loads((run.path / "summary.json").read_text())
    for part in [cut["total"], *cut["interfaces"].values()]:
        part["latency_ms"], part["service_ms"] = {}, {}  # as a checkpoint without percentiles leaves them
    cut["line_note"] = "kept as the run wrote it"
    (run.path / "summary.json").write_text(json.dumps(cut))
    write_report(run.path)
    after = json.loads((run.path / "summary.json").read_text())
    assert after["line_note"] == "kept as the run wrote it" and after["state"] == before["state"]
    for name in [None, *before["interfaces"]]:
        old, new = (s["total"] if name is None else s["interfaces"][name] for s in (before, after))
        assert new["count"] == old["count"] and new["failures"] == old["failures"]
        for kind in ("latency_ms", "service_ms"):
            assert new[kind] == pytest.approx(old[kind], rel=1e-9)
    assert after["report"]["met"] is True and after["report"]["headline"].startswith("NO SLO CHECKED")
    assert "report.html" in after["report"]["files"] and "summary.json" in after["report"]["files"]


def test_faults_the_run_records_get_a_section_of_their_own(tmp_path: Path) -> None:
    import json

    run = write_run(tmp_path, with_extras=False, wall_s=60)
    summary = json.loads((run.path / "summary.json").read_text())
    summary["faults"] = [{"kind": "mes-latency", "at_s": 12.5, "detail": "lognormal:20:200"}]
    (run.path / "summary.json").write_text(json.dumps(summary))
    write_report(run.path)
    html = (run.path / "report.html").read_text(encoding="utf-8")
    section = html.split('id="faults"')[1].split('id="line"')[0]
    assert "mes-latency" in section and "lognormal:20:200" in section


def test_the_pre_roll_and_the_twins_own_traffic_are_shown_apart(tmp_path: Path) -> None:
    import json

    run = write_run(tmp_path, with_extras=False, wall_s=60)
    summary = json.loads((run.path / "summary.json").read_text())
    summary["preroll"] = {
        "virtual_s": 2966.0, "wall_s": 6.1, "speed_mean": 487.0, "mes_service_ms": 0.32, "ended_because": "warm",
        "stations_warm": 14, "stations": 14, "requests": 10157, "failures": 0,
        "requests_by_interface": {"Heartbeat": 5637, "Inbound": 631},
    }  # fmt: skip
    summary["conformance"] = {
        "exchanges_checked": 5000, "violations": 2, "hosts": 19, "hosts_failed": 1,
        "by_rule": {"heartbeat-period": 2}, "by_interface": {"(heartbeat-period)": 2},
        "examples": [{"host": "MINI-WIND-01", "rule": "heartbeat-period", "message": "heartbeat 25.1 s after"}],
    }  # fmt: skip
    (run.path / "summary.json").write_text(json.dumps(summary))
    write_report(run.path)
    html = (run.path / "report.html").read_text(encoding="utf-8")
    preroll = html.split('id="preroll"')[1].split('id="conformance"')[0]
    assert "the line was warm" in preroll and "14 of 14" in preroll and "10,157" in preroll
    own = html.split('id="conformance"')[1].split('id="line"')[0]
    assert "heartbeat-period" in own and "heartbeat 25.1 s after" in own and "1 of 19" in own
    assert "broke the protocol&#39;s rules 2 times" in html or "broke the protocol's rules 2 times" in html
