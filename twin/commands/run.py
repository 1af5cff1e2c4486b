"""``twin run``: the line against an MES (embedded by default), or offline with ``--offline``.

Networked runs are ``twin.run.networked``; their live view and summary are ``twin.run.live``.
Offline runs (``twin.sim.runner.simulate``) print the line's KPIs and the load it would put on the MES.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin.commands.report import load_slo_early, slo_option
from twin.commands.run_checks import check_mes_args, close_run
from twin.commands.run_sharded import run_sharded_command
from twin.durations import parse_duration
from twin.errors import ConfigError
from twin.line.factory import is_factory
from twin.run.interrupts import INTERRUPTS
from twin.run.live import print_live_summary, run_live
from twin.run.networked import NetConfig, prepare
from twin.run.web import WebAddress
from twin.sim.runner import RunConfig, RunResult, simulate
from twin.transport.target import check_positive


@click.command()
@click.argument("line_ref", metavar="LINE")
@click.option("--offline", is_flag=True, help="No network: the in-process MES model, as fast as the CPU goes.")
@click.option("--mes", "mes_url", default=None, metavar="URL", help="Run against this MES, not the embedded one.")
@click.option("--realtime", is_flag=True, help="1 virtual second per wall second (hardware in the loop).")
@click.option("--speed", type=float, default=None, help="N virtual seconds per wall second.  [default: 20]")
@click.option("--duration", "-d", default=None, help="Virtual time: 90s, 15m, 24h, 2d.  [default: 10m; offline 1h]")
@click.option(
    "--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Same seed, same line behaviour."
)
@click.option("--scale", type=int, default=1, show_default=True, help="K copies of the line (distinct codes).")
@click.option(
    "--load",
    default=None,
    metavar="SHAPE",
    show_default="the line file's",
    help="steady | ramp:FROM:TO | step:FACTOR@AT | storm[:WINDOW]@AT (AT: 10m or 50%).",
)
@click.option("--profile", "profile_ref", default=None, help="Another OpenAPI profile (e.g. your MES's swagger.json).")
@click.option("--authorization", default=None, help="A fixed Authorization value, if your MES wants one (1.5.3).")
@click.option("--mes-arg", "mes_args", multiple=True, metavar="ARG", help="Pass ARG to the embedded MES (repeat).")
@click.option(
    "--energy",
    default=None,
    metavar="URL|embedded",
    help="Turn on the plant's energy uplink (seed 003): its platform's register URL, or 'embedded'.",
)
@click.option("--energy-every", default="15m", show_default=True, help="Upload finished energy values this often.")
@click.option("--equipment-prefix", default="127.0.1.", show_default=True, help="First loopback address of the hosts.")
@click.option("--equipment-port", type=int, default=6868, show_default=True, help="Port of every host (section 3).")
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True, help="Seconds before a call fails.")
@click.option("--reports", type=click.Path(file_okay=False), default="reports", show_default=True, help="Run folders.")
@click.option("--no-compare", is_flag=True, help="Skip the offline run of the same seed (the cost of the MES latency).")
@click.option(
    "--warmup", default=None, show_default="the line file's warmup_s", help="Warm-up excluded from the KPIs."
)
@click.option("--cold", is_flag=True, help="Start empty instead of with the line file's initial WIP.")
@click.option(
    "--preroll",
    default="auto",
    metavar="auto|none|DURATION",
    show_default=True,
    help="Bring the line from cold to warm through the MES before the measured window, for at most DURATION "
    "(auto: with --mes, the line file's preroll_s; none with the embedded MES, which is told the opening WIP).",
)
@click.option("--latency-ms", type=float, default=None, help="Offline: constant MES latency instead of the model's.")
@click.option("--refusal-rate", type=float, default=None, help="Offline: share of MES calls the model refuses.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--web", default=None, metavar="[HOST:]PORT", help="Serve a live web view (loopback unless HOST).")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Shard the copies (--scale, or a factory's) over N worker processes on Ray (pip install 'twin[ray]').",
)
@click.option("--ray-address", default=None, metavar="ADDR", help="Run the workers on this Ray cluster (ray start).")
@slo_option
def run(
    line_ref: str,
    offline: bool,
    mes_url: str | None,
    realtime: bool,
    speed: float | None,
    duration: str | None,
    seed: int,
    scale: int,
    load: str | None,
    profile_ref: str | None,
    authorization: str | None,
    mes_args: tuple[str, ...],
    energy: str | None,
    energy_every: str,
    equipment_prefix: str,
    equipment_port: int,
    timeout_s: float,
    reports: str,
    no_compare: bool,
    warmup: str | None,
    cold: bool,
    preroll: str,
    latency_ms: float | None,
    refusal_rate: float | None,
    as_json: bool,
    web: str | None,
    workers: int,
    ray_address: str | None,
    slo: str | None,
) -> None:
    """Run LINE (a name from lines/ or a path) against an MES and write a run folder.

    With no --mes, the embedded MES is started on loopback and the line runs against it over real HTTP;
    every host serves section 3 (interlocks, electrolyte batches) on 127.0.1.x:6868. The run folder
    reports/<line>/<timestamp>/ gets the exchange log, per-interface HDR histograms and summary.json.
    Ctrl-C stops cleanly and still writes the whole folder.

    \b
    twin run line-A02                              10 virtual minutes at 20x against the embedded MES
    twin run line-A02 --realtime -d 1h             real takt, one hour
    twin run line-A02 --mes http://mes:8080 --speed 3 --load storm@5m   (warm through your MES first)
    twin run line-A02 --mes-arg=--outage-after=20 --mes-arg=--outage-for=15
    twin run line-A02 --offline --duration 24h     a simulated day in about a minute: KPIs and MES load
    twin run line-A02 --scale 8 --workers 2        8 copies sharded over 2 worker processes (Ray)
    twin run factory-A                             a factory file: every line and copy, one MES
    """
    sharded = workers != 1 or ray_address is not None or is_factory(line_ref)
    if offline:
        if sharded:
            raise ConfigError("--offline runs one process: leave out --workers, --ray-address and factory files")
        if slo:
            raise ConfigError("--slo judges a run folder; --offline writes none (the KPIs are printed)")
        if web:
            raise ConfigError("--web shows a networked run; --offline runs in a moment without one")
        if mes_url or realtime or speed is not None or load or energy:
            raise ConfigError("--offline runs no network: leave out --mes, --realtime, --speed, --load and --energy")
        _offline(line_ref, duration or "1h", seed, scale, warmup, cold, latency_ms, refusal_rate, profile_ref, as_json)
        return
    if latency_ms is not None or refusal_rate is not None:
        raise ConfigError("--latency-ms and --refusal-rate shape the offline model: use them with --offline")
    if mes_url and mes_args:
        raise ConfigError("--mes-arg is for the embedded MES; your MES at --mes is configured on its side")
    if realtime and speed is not None:
        raise ConfigError("--realtime is --speed 1: give one of them")
    config = NetConfig(
        duration_s=parse_duration(duration or "10m"),
        speed=1.0 if realtime else (speed if speed is not None else 20.0),
        seed=seed,
        scale=scale,
        load=load,
        mes_url=mes_url,
        mes_args=list(mes_args),
        energy=energy,
        energy_every_s=parse_duration(energy_every),
        authorization=authorization,
        profile_ref=profile_ref,
        equipment_prefix=equipment_prefix,
        equipment_port=equipment_port,
        timeout_s=timeout_s,
        reports=Path(reports),
        compare_offline=not no_compare,
        cold=cold,
        warmup_s=parse_duration(warmup) if warmup is not None else None,
        preroll_s=_preroll(preroll, mes_url, cold),
    )
    slo_path = load_slo_early(slo)  # a malformed SLO file is bad input now, not after the run
    web_address = WebAddress.parse(web) if web else None
    check_mes_args(config.mes_args)  # the embedded MES's own argument check, before anything starts
    if sharded:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        run_sharded_command(line_ref, config, workers, ray_address, slo_path, web_address, as_json)
        return
    session = prepare(line_ref, config)
    with INTERRUPTS.stopping(session.stop):  # Ctrl-C/SIGTERM: stop at the next step, write the whole folder
        summary = run_live(session, quiet=as_json, web=web_address)
    # From here a signal waits until the folder (report, plots, CSV, verdict) is whole; then exit 130.
    close_run(session.path, summary, slo_path, as_json=as_json, print_summary=lambda s: print_live_summary(session, s))


def _offline(
    line_ref: str,
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
    if latency_ms is not None:
        check_positive("--latency-ms", latency_ms, zero=True)
    if refusal_rate is not None and not 0 <= refusal_rate <= 1:
        raise ConfigError(f"--refusal-rate must be between 0 and 1, got {refusal_rate:g}")
    config = RunConfig(
        duration_s=parse_duration(duration),
        seed=seed,
        scale=scale,
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


def _preroll(value: str, mes_url: str | None, cold: bool) -> float | None:
    """--preroll: None (no pre-roll), a cap in virtual seconds, or the line file's (auto, with --mes)."""
    value = value.strip().lower()
    if value == "none" or (value == "auto" and (mes_url is None or cold)):
        return None
    if cold:
        raise ConfigError("--cold measures the start-up itself; a pre-roll would measure the warm line: give one")
    if value == "auto":
        return -1.0  # the line file's preroll_s, once the line is loaded
    seconds = parse_duration(value)
    if not seconds > 0:
        raise ConfigError(f"--preroll must be auto, none or a positive duration, got {value!r}")
    return seconds
