"""What ``twin run`` checks before a run and notes after it, beyond the run's own options (``prepare``).

* ``--mes-arg`` goes to the embedded MES's command line: it is checked by that command's own parser and
  checks (``twin mes serve``) before anything starts, so ``--mes-arg=--bogus`` is one line and exit 2,
  not a run folder whose MES never came up.
* A signal that came after the run ended (while its folder and report were written) is noted in
  ``summary.json``: state ``interrupted``, with the signal and when it came.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from twin.errors import ConfigError
from twin.metrics.runfolder import write_json


def check_mes_args(args: list[str]) -> None:
    """Parse ``args`` as ``twin mes serve`` would, and run its own checks of the values; ConfigError if not."""
    if not args:
        return
    from twin.commands import mes as mes_command  # the MES's command: imported only when it is needed

    if any(a in ("--help", "-h") for a in args):
        raise ConfigError("--mes-arg: --help is not an argument for a run (see `twin mes serve --help`)")
    serve = mes_command.serve
    try:
        ctx = serve.make_context("twin mes serve", list(args))
    except click.ClickException as exc:
        raise ConfigError(f"--mes-arg: {exc.format_message()}") from None
    build = getattr(mes_command, "build_config", None)
    if build is None:
        return
    try:
        build(**ctx.params)
    except TypeError:
        return  # the command's checks changed shape: the MES checks its arguments itself when it starts
    except ConfigError as exc:
        raise ConfigError(f"--mes-arg: {exc}") from None


def mark_interrupted(folder: Path, signum: int, phase: str | None) -> None:
    """summary.json says ``interrupted`` whenever the command exits 130, with which signal and when."""
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    during = {"stop": "the run", "defer": "writing the run folder and report"}.get(phase or "", "starting")
    if summary.get("state") == "finished":
        summary["finished_before_interrupt"] = True  # the model ran its whole length; the signal came after
        if phase == "stop":
            during = "the end of the run (after its last step)"
    summary["state"] = "interrupted"
    summary["interrupted"] = {"signal": signal.Signals(signum).name, "during": during}
    write_json(path, summary)


def close_run(
    path: Path,
    summary: dict[str, Any],
    slo_path: Path | None,
    *,
    as_json: bool,
    print_summary: Callable[[dict[str, Any]], None],
) -> None:
    """After a run (one process or sharded): the summary said, the report and verdict written, and the exit
    code: 130 interrupted (the folder is whole, the run is not), 3 hurt (a run that lost its MES, a shard or
    records never passes as done), 1 an SLO not met. A signal from here on waits until the folder is whole."""
    from twin.commands.report import report_run
    from twin.report import write_report
    from twin.report.slo import SloNotMet
    from twin.run.hurt import RunHurt
    from twin.run.interrupts import EXIT_INTERRUPTED, INTERRUPTS

    interrupted = summary.get("state") == "interrupted" or INTERRUPTS.received is not None
    hurt = summary.get("hurt") or []
    slo_failed: SloNotMet | None = None
    if as_json:
        verdict = write_report(path, slo=slo_path)
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        slo_failed = None if verdict.met else SloNotMet(verdict.headline())
    else:
        print_summary(summary)
        try:
            report_run(path, slo_path)  # every run folder gets its report and verdict
        except SloNotMet as exc:
            slo_failed = exc
    if INTERRUPTS.received is not None:
        interrupted = True
        mark_interrupted(path, INTERRUPTS.received, INTERRUPTS.phase)
    if interrupted:
        click.echo(f"interrupted: the run folder is complete: {path}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if hurt:
        raise RunHurt("; ".join(hurt))
    if slo_failed is not None:
        raise slo_failed
