"""``twin run`` of a sharded run: ``--workers N``, ``--ray-address``, or a factory file.

The same command as one process (``twin.commands.run``), with the driver of ``twin.run.sharded``: options
checked first (Ray missing is exit 2 with the install command), one live view with the total and each shard's
rate, one report of the whole folder, and the same exit codes (130 interrupted, 3 hurt, e.g. a shard died).
"""

from __future__ import annotations

from pathlib import Path

from twin.commands.run_checks import close_run
from twin.run.interrupts import INTERRUPTS
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
    """Run it, say it, report it and exit with its code; ``twin run`` has checked the options (``--mes-arg``
    included) before."""
    session = prepare_sharded(ref, config, workers=workers, ray_address=ray_address)
    with INTERRUPTS.stopping(session.stop):
        summary = run_sharded_live(session, quiet=as_json, web=web)
    close_run(
        session.path, summary, slo_path, as_json=as_json, print_summary=lambda s: print_sharded_summary(session, s)
    )
