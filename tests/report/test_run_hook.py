"""How `twin run --slo FILE` ends: the SLO file checked before the run, the report written after it, exit 0/1/2.

`twin run` uses ``slo_option``, ``load_slo_early`` and ``report_run`` from ``twin.commands.report``; here a
command shaped like it (a run folder written through ``RunFolder``, then the report) runs through the CLI's
one error boundary, so the exit codes are the ones a CI pipeline sees.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from tests.report.conftest import write_run
from twin.cli import cli, main
from twin.commands.report import load_slo_early, report_run, slo_option

MET = "objectives:\n  - group: all\n    max_error_rate: 0.5\n"
NOT_MET = "objectives:\n  - interface: Inbound\n    p50_ms: 0.001\n"


@click.command("fake-run")
@click.argument("root", type=click.Path(path_type=Path))
@slo_option
def fake_run(root: Path, slo: str | None) -> None:
    """What `twin run` does around its run: check the SLO file first, report at the end."""
    slo_path = load_slo_early(slo)
    root.mkdir(parents=True, exist_ok=True)
    (root / "started").write_text("the run started")
    run = write_run(root, with_extras=False, wall_s=120)
    report_run(run.path, slo_path)


def _exit(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(cli, "commands", {**cli.commands, "fake-run": fake_run})  # undone after the test
    monkeypatch.setattr("sys.argv", ["twin", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    return int(info.value.code or 0)


def test_a_run_meeting_its_slos_exits_0_with_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    slo = tmp_path / "met.yaml"
    slo.write_text(MET)
    assert _exit(["fake-run", str(tmp_path / "r"), "--slo", str(slo)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "SLOs MET: 1 of 1 checks passed" in out and "report: " in out
    folder = Path(out.split("report: ")[1].split()[0]).parent
    assert (folder / "report.html").is_file() and (folder / "slo.yaml").read_text() == MET


def test_a_run_missing_its_slos_exits_1_naming_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    slo = tmp_path / "tight.yaml"
    slo.write_text(NOT_MET)
    assert _exit(["fake-run", str(tmp_path / "r"), "--slo", str(slo)], monkeypatch) == 1
    captured = capsys.readouterr()
    assert "not met: interface Inbound: p50 latency" in captured.out
    assert captured.err.startswith("error: SLOs NOT MET: 1 of 1 checks failed")


def test_a_malformed_slo_file_stops_the_run_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    slo = tmp_path / "bad.yaml"
    slo.write_text("objectives:\n  - group: all\n    p99_ms: soon\n")
    root = tmp_path / "r"
    root.mkdir()
    assert _exit(["fake-run", str(root), "--slo", str(slo)], monkeypatch) == 2
    assert "bad.yaml:3: objectives[0].p99_ms: 'soon' is not of type 'number'" in capsys.readouterr().err
    assert not (root / "started").exists()
