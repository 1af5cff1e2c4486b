"""``twin run``: simulate a line and print its KPIs and the load it puts on the MES.

Offline by default (no network: an in-process MES model answers after a latency model), one virtual hour
unless ``--duration`` says otherwise. ``--realtime`` and ``--speed N`` run the same model through the
asyncio bridge against the same in-process MES; the networked target (the embedded MES, or ``--mes URL``)
plugs into the bridge's transport seam.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin.errors import ConfigError
from twin.sim.runner import RunConfig, RunResult, parse_duration, simulate


@click.command()
@click.argument("line_ref", metavar="LINE")
@click.option(
    "--offline", "mode", flag_value="offline", default=True, help="No network: in-process MES model (default)."
)
@click.option("--realtime", "mode", flag_value="realtime", help="1 virtual second per wall second, through the bridge.")
@click.option("--speed", type=float, default=None, help="N virtual seconds per wall second, through the bridge.")
@click.option("--duration", "-d", default="1h", show_default=True, help="Virtual time to simulate: 90s, 15m, 24h, 2d.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same result.")
@click.option("--scale", type=int, default=1, show_default=True, help="Copies of the line (distinct equipment codes).")
@click.option("--warmup", default=None, help="Warm-up excluded from the KPIs (default: the line file's warmup_s).")
@click.option("--cold", is_flag=True, help="Start empty instead of with the line file's initial WIP.")
@click.option("--latency-ms", type=float, default=None, help="Constant MES latency instead of the line file's model.")
@click.option(
    "--refusal-rate", type=float, default=None, help="Share of MES calls the model refuses (fault injection)."
)
@click.option("--profile", "profile_ref", default=None, help="Another OpenAPI profile than the line file names.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def run(
    line_ref: str,
    mode: str,
    speed: float | None,
    duration: str,
    seed: int,
    scale: int,
    warmup: str | None,
    cold: bool,
    latency_ms: float | None,
    refusal_rate: float | None,
    profile_ref: str | None,
    as_json: bool,
) -> None:
    """Simulate LINE (a name from lines/ or a path) and print its KPIs and its calls per MES interface.

    \b
    twin run line-A02                          one virtual hour offline (a few seconds)
    twin run line-A02 --duration 24h --seed 7  a day: good cells, yield, OEE, WIP, bottleneck, MES load
    twin run lines/mini.yaml --speed 60        the model through the realtime bridge, 60x faster
    """
    if speed is not None and speed <= 0:
        raise ConfigError(f"--speed must be positive, got {speed:g}")
    if refusal_rate is not None and not 0 <= refusal_rate <= 1:
        raise ConfigError(f"--refusal-rate must be between 0 and 1, got {refusal_rate:g}")
    config = RunConfig(
        duration_s=parse_duration(duration),
        seed=seed,
        scale=scale,
        speed=1.0 if mode == "realtime" else speed,
        warmup_s=parse_duration(warmup) if warmup is not None else None,
        cold=cold,
        latency=latency_ms / 1000.0 if latency_ms is not None else None,
        refusal_rate=refusal_rate,
        profile_ref=profile_ref,
    )
    err = Console(stderr=True, highlight=False)
    if as_json or not err.is_terminal:
        result = simulate(line_ref, config)
    else:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[t]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task(f"simulating {line_ref}", total=config.duration_s, t="")
            result = simulate(
                line_ref,
                config,
                progress=lambda now: bar.update(
                    task, completed=now, t=f"{now / 3600:.2f} h of {config.duration_s / 3600:g} h"
                ),
            )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    print_result(result)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_result(result: RunResult) -> None:
    console = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 140)
    k, cfg = result.kpis, result.config
    hours = k.hours
    copies = f"{k.copies} cop{'y' if k.copies == 1 else 'ies'}"
    console.print(
        f"{k.line} {cfg.mode}, seed {cfg.seed}, {copies} ({k.equipment} equipment): "
        f"{cfg.duration_s / 3600:g} h simulated in {result.wall_s:.1f} s wall "
        f"({result.sim_per_wall:,.0f} sim-s per wall-s, {result.events:,} SimPy events, {result.calls:,} MES calls)"
    )
    console.print(f"KPI window: {hours:.2f} h; warm-up: {result.warmup_note}; initial WIP {k.initial_wip:,} units")
    console.print(
        f"good cells out {k.good_cells:,}   cells per hour {k.cells_per_hour:,.1f} ({k.cells_per_hour / 60:.1f} PPM)"
        f"   yield (RTY) {_pct(k.yield_rty)}   bottleneck {k.bottleneck}"
        f"   alarms {k.alarms:,}   MES refusals {k.refusals:,}"
    )
    table = Table(title="stations (OEE = cycles x ideal cycle / available time x quality; util = busy or occupied)")
    for col in ("station", "count", "cycles", "good", "NG", "held", "OEE", "util", "avail", "active"):
        table.add_column(col, justify="left" if col == "station" else "right")
    for s in k.stations:
        mark = " <" if s.id == k.bottleneck else ""
        table.add_row(
            s.id + mark,
            str(s.count),
            f"{s.made:,}",
            f"{s.good:,}",
            f"{s.ng:,}",
            f"{s.held:,}",
            _pct(s.oee),
            _pct(s.utilisation),
            _pct(s.availability),
            _pct(s.active),
        )
    console.print(table)
    wip = Table(title="WIP per buffer (units; trays for tray buffers)")
    for col in ("buffer", "capacity", "mean", "at end", "peak"):
        wip.add_column(col, justify="left" if col == "buffer" else "right")
    for b in k.buffers:
        wip.add_row(
            b.name, "-" if b.capacity is None else str(b.capacity), f"{b.mean:,.1f}", f"{b.final:,}", f"{b.peak:,}"
        )
    console.print(wip)
    calls = Table(
        title=f"MES calls per interface per hour (the load the MES must take; {k.calls_per_hour:,.0f}/h in all)"
    )
    for col in ("section", "interface", "per hour", "busiest hour", "in window"):
        calls.add_column(col, justify="left" if col in ("section", "interface") else "right")
    for c in k.calls:
        calls.add_row(c.section, c.operation, f"{c.per_hour:,.1f}", f"{c.peak_hour:,}", f"{c.total:,}")
    console.print(calls)
