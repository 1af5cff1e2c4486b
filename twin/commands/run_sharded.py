"""``twin run`` of a sharded run: ``--workers N``, ``--ray-address``, or a factory file.

The same command as one process (``twin.commands.run``), with the driver of ``twin.run.sharded``: options
checked first (Ray missing is exit 2 with the install command), one live view with the total and each shard's
rate, one report of the whole folder, and the same exit codes (130 interrupted, 3 hurt, e.g. a shard died).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from twin.commands.report import report_run
from twin.commands.run_checks import check_mes_args, mark_interrupted
from twin.report import write_report
from twin.report.slo import SloNotMet
from twin.run.hurt import RunHurt
from twin.run.interrupts import EXIT_INTERRUPTED, INTERRUPTS
from twin.run.networked import NetConfig
from twin.run.sharded import prepare_sharded
from twin.run.shardlive import print_sharded_summary, run_sharded_live
from twin.run.web import WebAddress


def run_sharded_command(
    ref: str,
    config: NetConfig,
    workers: int,
    ray_address: str | None,
    slo_path: Path | None,
    web: WebAddress | None,
    as_json: bool,
) -> None:
    check_mes_args(config.mes_args)
    session = prepare_sharded(ref, config, workers=workers, ray_address=ray_address)
    with INTERRUPTS.stopping(session.stop):
        summary = run_sharded_live(session, quiet=as_json, web=web)
    interrupted = summary.get("state") == "interrupted" or INTERRUPTS.received is not None
    hurt = summary.get("hurt") or []
    slo_failed: SloNotMet | None = None
    if as_json:
        verdict = write_report(session.path, slo=slo_path)
        summary = json.loads((session.path / "summary.json").read_text(encoding="utf-8"))
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        slo_failed = None if verdict.met else SloNotMet(verdict.headline())
    else:
        print_sharded_summary(session, summary)
        try:
            report_run(session.path, slo_path)
        except SloNotMet as exc:
            slo_failed = exc
    if INTERRUPTS.received is not None:
        interrupted = True
        mark_interrupted(session.path, INTERRUPTS.received, INTERRUPTS.phase)
    if interrupted:
        click.echo(f"interrupted: the run folder is complete: {session.path}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if hurt:
        raise RunHurt("; ".join(hurt))
    if slo_failed is not None:
        raise slo_failed
