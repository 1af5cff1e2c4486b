"""The live view and closing summary of a sharded run: the totals, and each shard's rate under them.

The terminal view is the one of a single run (``twin.run.live``: the status line of the totals, redrawn
twice a second or one plain line every 15 s), with a second line giving each shard's requests per second over
the last poll, so that a slow or dead shard shows at once. ``--web`` serves the same page as a single run,
fed by ``twin.run.shardweb`` from the shards' samples.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from twin import aio
from twin.run.live import LiveView, conformance_line, drive, fault_line, fault_summary, pace_line, status_line
from twin.run.sharded import ShardedRun
from twin.run.web import WebAddress


def shards_line(shards: list[dict[str, Any]]) -> str:
    """``shard 0 (line-A02 x4) 1,234/s | shard 1 ... DEAD``."""
    parts = []
    for s in shards:
        copies = len(s["copies"])
        state = "DEAD" if s.get("dead") else f"{s['rate_per_s']:,.0f}/s"
        parts.append(f"shard {s['shard']} ({s['line']} x{copies}) {state}")
    return " | ".join(parts)


def shard_fault_line(fault: dict[str, Any]) -> str:
    if fault.get("kind") == "shard-died":
        return (
            f"SHARD DIED: worker {fault.get('worker')} (shards {fault.get('shards')}) is gone: {fault.get('why')}; "
            "the other shards go on (exit code 3)"
        )
    return fault_line(fault)


def run_sharded_live(session: ShardedRun, *, quiet: bool = False, web: WebAddress | None = None) -> dict[str, Any]:
    """Run every shard with the live view; Ctrl-C (SIGINT) or SIGTERM stops every shard and writes the folder."""
    err = Console(stderr=True, highlight=False, markup=False)
    if not quiet:
        workers = f"{session.workers} worker{'s' if session.workers != 1 else ''}"
        err.print(f"run folder {session.path} ({len(session.shards)} shards on {workers})")
    session.on_fault.append(lambda fault: err.print(shard_fault_line(fault)))

    def view(live: Live | None) -> Any:
        inner = LiveView(err, live)
        printed = [0.0]

        def tick(run: ShardedRun) -> None:
            inner(run)
            st = run.status()
            if live is not None:
                live.update(f"{_status(st, inner)}\n{shards_line(st['shards'])}")
            elif inner._printed != printed[0]:  # the plain line was just printed: the shards under it
                printed[0] = inner._printed
                err.print(shards_line(st["shards"]))

        return tick

    main = drive(session, err, view, quiet=quiet)
    if web is None:
        return aio.run(main)
    from twin.run.shardweb import with_sharded_web_view

    return aio.run(with_sharded_web_view(main, session, web, err.print))


def _status(st: dict[str, Any], inner: LiveView) -> str:
    return status_line(st, inner._rate)


def print_sharded_summary(session: ShardedRun, summary: dict[str, Any]) -> None:
    console = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 150)
    run = summary.get("run", {})
    total = summary.get("total", {})
    console.print(
        f"{session.name} against {summary.get('target_url')} ({len(session.shards)} shards on {session.workers} "
        f"workers, {summary.get('sharded', {}).get('backend')}): {summary.get('state')}, "
        f"{run.get('virtual_s', 0):,.0f} s virtual in {summary.get('wall_s', 0):.1f} s wall"
    )
    lat = total.get("latency_ms", {})
    console.print(
        f"{total.get('count', 0):,} requests ({total.get('rate_per_s', 0):,.0f}/s), {total.get('failures', 0):,} "
        f"failed, p50 {lat.get('p50', 0):.1f} ms p99 {lat.get('p99', 0):.1f} ms, cells out {run.get('cells_out', 0):,}"
    )
    table = Table(title="shards (each one's folder: shards/<n>/)")
    for col in ("shard", "worker", "line", "copies", "state", "requests", "per s", "failed", "cells out", "violations"):
        table.add_column(col, justify="left" if col in ("line", "copies", "state") else "right")
    for s in summary.get("shards", []):
        table.add_row(
            str(s["shard"]),
            str(s["worker"]),
            s["line"],
            ",".join(str(c) for c in s["copies"]),
            s["state"],
            f"{s['requests']:,}",
            f"{s['rate_per_s']:,.0f}",
            f"{s['failures']:,}",
            f"{s['cells_out']:,}",
            f"{s.get('violations', 0):,}",
        )
    console.print(table)
    saturated = pace_line(summary)
    if saturated:
        shards = ", ".join(str(i) for i in summary.get("pace", {}).get("shards_saturated", []))
        console.print(f"{saturated} (shards {shards})")
    checked = conformance_line(summary.get("conformance"))
    if checked:
        console.print(checked)
    for line in fault_summary(summary):
        console.print(line)
    console.print(f"run folder: {session.path}")
