"""SLO files: met, not met and malformed, through the library and through `twin report` with its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.conftest import SyntheticRun, write_run
from twin.cli import main
from twin.errors import ConfigError
from twin.metrics import LatencyBook
from twin.report.slo import check, load_slo

LOOSE = """
title: loose
groups:
  tracking: [Inbound, Outbound]
objectives:
  - group: all
    p99_ms: 100000
    max_error_rate: 0.5
  - group: tracking
    service_p99_ms: 5000
    min_rate_per_s: 1
  - interface: "*"
    max_ms: 200000
interlocks:
  max_reaction_s: 10
"""
TIGHT = """
objectives:
  - interface: Inbound
    p50_ms: 0.5
  - interface: Heartbeat
    max_error_rate: 0.01
  - interface: NoSuchInterface
    p99_ms: 100
"""


def _slo(tmp_path: Path, text: str, name: str = "slo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["twin", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def _book(run: SyntheticRun) -> LatencyBook:
    return LatencyBook.decode(json.loads((run.path / "histograms.json").read_text()))


def _summary(run: SyntheticRun) -> dict:  # type: ignore[type-arg]
    return json.loads((run.path / "summary.json").read_text())


def test_loose_objectives_are_met_but_a_never_stopped_interlock_is_not(full_run: SyntheticRun, tmp_path: Path) -> None:
    slo = load_slo(_slo(tmp_path, LOOSE))
    verdict = check(slo, _book(full_run).interfaces, _summary(full_run)["wall_s"], _summary(full_run))
    failed = {(c.target, c.metric) for c in verdict.failed}
    assert failed == {("interlocks", "max_reaction_s")}  # 500301 never stopped its equipment
    assert sum(c.target.startswith("interface ") for c in verdict.checks) == 6  # the glob checks each one
    assert verdict.exit_code == 1 and "1 of" in verdict.headline()


def test_tight_objectives_name_what_failed(full_run: SyntheticRun, tmp_path: Path) -> None:
    slo = load_slo(_slo(tmp_path, TIGHT))
    summary = _summary(full_run)
    verdict = check(slo, _book(full_run).interfaces, summary["wall_s"], summary)
    by_target = {c.target: c for c in verdict.checks}
    assert by_target["interface Inbound"].passed is False and by_target["interface Inbound"].actual > 0.5
    assert by_target["interface Heartbeat"].passed is False  # 10 % timeouts during the outage
    assert by_target["interface NoSuchInterface"].passed is False
    assert "no exchanges" in by_target["interface NoSuchInterface"].describe()


def test_interlock_objective_without_interlocks_is_not_checked(tmp_path: Path) -> None:
    slo = load_slo(_slo(tmp_path, "interlocks:\n  max_reaction_s: 1\n"))
    verdict = check(slo, {}, 1.0, {})
    assert verdict.met and verdict.checks[0].passed is None and "no interlocks" in verdict.checks[0].note


PER_CODE = """
interlocks:
  - {name: all, max_reaction_s: 5}
  - {name: alignment, code: "5002*", max_reaction_s: 1.0}
  - {name: winder 1, code: 500201, equipment: A02-WIND-01, max_reaction_s: 0.9}
  - {name: hipot, code: 500202, max_reaction_s: 1.0}
"""


def test_interlock_objectives_per_code_and_equipment(full_run: SyntheticRun, tmp_path: Path) -> None:
    slo = load_slo(_slo(tmp_path, PER_CODE))
    verdict = check(slo, {}, 1.0, _summary(full_run))  # 500201 0.8 s, 500203 1.4 s, 500301 never stopped
    by_name = {c.objective: c for c in verdict.checks}
    assert by_name["all"].passed is False and "1 of 3 interlocks never stopped" in by_name["all"].note
    assert by_name["alignment"].passed is False and by_name["alignment"].actual == 1.4
    assert by_name["alignment"].target == "interlocks 5002*"
    assert by_name["winder 1"].passed is True and by_name["winder 1"].actual == 0.8
    assert by_name["hipot"].passed is None and "no matching interlock" in by_name["hipot"].note
    assert slo.interlock_limit(500201) == 1.0 and slo.interlock_limit("500301") == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("objectives:\n  - group: all\n    p99_ms: fast\n", ":3: objectives[0].p99_ms: 'fast' is not of type 'number'"),
        ("objectives:\n  - group: nope\n    p99_ms: 5\n", ":2: objectives[0].group: unknown group 'nope'"),
        ("objectives:\n  - interface: A\n    group: all\n    p99_ms: 5\n", "name exactly one of interface"),
        ("objectives:\n  - group: all\n", "no limit given"),
        ("objectives:\n  - group: all\n    p98_ms: 5\n", "Additional properties are not allowed ('p98_ms'"),
        ("groups:\n  all: [X]\nobjectives: []\n", "groups"),
        ("title: nothing\n", "checks nothing"),
        ("objectives: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
        ("interlocks:\n  - {code: 500201}\n", ":2: interlocks[0]: 'max_reaction_s' is a required property"),
        ("interlocks:\n  max_reaction_s: 0\n", ":2: interlocks.max_reaction_s: 0 is less than or equal to"),
    ],
)
def test_a_malformed_file_names_line_key_and_rule(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_slo(_slo(tmp_path, text))
    assert message in str(info.value) and str(tmp_path / "slo.yaml") in str(info.value)


def test_the_shipped_example_loads_by_name() -> None:
    slo = load_slo("default")
    assert slo.source.name == "default.yaml" and [o.max_reaction_s for o in slo.interlocks] == [2.0]
    assert {"status", "tracking", "trays"} <= set(slo.groups)


@pytest.mark.e2e
def test_twin_report_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    run = write_run(tmp_path / "reports", with_extras=False, wall_s=120)
    code, out = _run_cli(["report", str(run.path), "--slo", str(_slo(tmp_path, LOOSE))], monkeypatch, capsys)
    assert code == 0 and "SLOs MET" in out
    assert json.loads((run.path / "verdict.json").read_text())["met"] is True
    code, out = _run_cli(["report", str(run.path), "--slo", str(_slo(tmp_path, TIGHT, "tight.yaml"))], monkeypatch,
                         capsys)  # fmt: skip
    assert code == 1 and "error: SLOs NOT MET" in out and "not met: interface Inbound: p50 latency" in out
    code, out = _run_cli(["report", str(run.path)], monkeypatch, capsys)  # the folder keeps the last SLO file
    assert code == 1 and "SLOs NOT MET" in out
    code, out = _run_cli(["report", str(run.path), "--slo", str(_slo(tmp_path, "title: x\n", "bad.yaml"))],
                         monkeypatch, capsys)  # fmt: skip
    assert code == 2 and out.startswith("error: ") and "Traceback" not in out
    code, out = _run_cli(["report", str(tmp_path / "nowhere")], monkeypatch, capsys)
    assert code == 2 and "no such run folder" in out
    code, out = _run_cli(["report", "build", str(run.path), "--slo", "no-such-slo"], monkeypatch, capsys)
    assert code == 2 and "no SLO file 'no-such-slo'" in out and "default" in out


SATURATED = {
    "saturated": True,
    "speed_asked": 2000.0,
    "speed_achieved": 310.5,
    "pace": {"saturated": True, "speed_asked": 2000.0, "speed_achieved": 310.5, "saturated_s": 41.2},
}


def test_a_saturated_run_fails_twin_kept_pace_and_one_that_kept_up_passes(tmp_path: Path) -> None:
    slo = load_slo("default")
    assert slo.twin is not None and slo.twin["max_saturated_s"] == 0
    failed = check(slo, {}, 1.0, SATURATED)
    kept = next(c for c in failed.checks if c.objective == "twin kept pace")
    assert kept.passed is False and kept.actual == 41.2 and "time saturated 41.2 s" in kept.describe()
    calm = {"pace": {"saturated": False, "saturated_s": 0.0, "speed_asked": 20.0, "speed_achieved": 19.9}}
    assert next(c for c in check(slo, {}, 1.0, calm).checks if c.objective == "twin kept pace").passed is True
    older = next(c for c in check(slo, {}, 1.0, {}).checks if c.objective == "twin kept pace")
    assert older.passed is None and "did not record its pace" in older.note  # a folder from before: not judged
    alone = load_slo(_slo(tmp_path, "twin:\n  max_saturated_s: 5\n"))  # a file may check the twin alone
    assert check(alone, {}, 1.0, SATURATED).failed[0].target == "the twin"
