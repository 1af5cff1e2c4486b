"""`twin report compare` on two real runs: what got worse is flagged, the spectra of both are on one plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.conftest import SyntheticRun, write_run
from twin.cli import main
from twin.report import compare_runs
from twin.report.compare import judge


@pytest.fixture(scope="module")
def slower(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRun:
    """The same line and load, against an MES that answers three times slower."""
    return write_run(tmp_path_factory.mktemp("slower"), seed=1, slow=3.0)  # same seed: only the MES differs


def test_a_slower_mes_is_worse_in_service_time_per_interface(full_run: SyntheticRun, slower: SyntheticRun) -> None:
    c = compare_runs(full_run.path, slower.path, threshold_pct=10)
    worse = {(d.interface, d.metric) for d in c.regressions}
    assert {("all", "p50_ms"), ("Heartbeat", "p50_ms")} <= worse  # their p99 service is the outage's 2 s timeout
    for op in ("Inbound", "Outbound", "EquipmentProcessParam"):
        assert (op, "p50_ms") in worse and (op, "service_p99_ms") in worse
    assert not any(d.metric == "rate_per_s" for d in c.regressions)  # same load, same answers per second
    assert c.exit_code == 1 and not c.only_base and not c.only_new
    back = compare_runs(slower.path, full_run.path, threshold_pct=10)
    assert not back.regressions and {(d.interface, d.metric) for d in back.improvements} >= {("all", "p50_ms")}


def test_a_huge_threshold_flags_nothing(full_run: SyntheticRun, slower: SyntheticRun) -> None:
    assert compare_runs(full_run.path, slower.path, threshold_pct=10_000).exit_code == 0


def test_noise_floors_and_small_samples_are_not_regressions() -> None:
    assert judge("p99_ms", 0.2, 0.9, 10, comparable=True).verdict == ""  # +350 % but under 1 ms
    assert judge("error_rate", 0.0, 0.0005, 10, comparable=True).verdict == ""  # under 0.1 point
    assert judge("error_rate", 0.0, 0.02, 10, comparable=True).verdict == "worse"
    assert judge("p99_ms", 10, 50, 10, comparable=False).verdict == ""  # too few exchanges to tell
    assert judge("rate_per_s", 100, 80, 10, comparable=True).verdict == "worse"  # throughput dropped


@pytest.mark.e2e
def test_cli_writes_a_self_contained_page_and_exits_1_on_regression(
    full_run: SyntheticRun, slower: SyntheticRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cmp" / "compare.html"
    monkeypatch.setattr("sys.argv", ["twin", "report", "compare", str(full_run.path), str(slower.path),
                                     "--threshold", "25", "--out", str(out)])  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main()
    printed = capsys.readouterr()
    assert info.value.code == 1 and "WORSE" in printed.out and "error: the new run is worse" in printed.err
    html = out.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 and 'data-plot="compare_spectra"' in html
    assert "http://" not in html and "https://" not in html and 'data-name="Inbound"' in html
    assert json.loads(out.with_suffix(".json").read_text())["regressions"] > 0
    monkeypatch.setattr("sys.argv", ["twin", "report", "compare", str(full_run.path), str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2 and "no such run folder" in capsys.readouterr().err
