"""``twin energy``: the energy-monitoring uplink (seed 003), as the platform and as the plant's uplink."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from twin import aio
from twin.commands.stopping import until_stopped
from twin.errors import ConfigError


@click.group()
def energy() -> None:
    """Energy-monitoring uplink: 15-minute and daily electricity values to the Nantong platform protocol.

    \b
      twin energy serve                                        a platform peer (validating, storing, faults)
      twin energy upload --line line-A02 --url URL --duration 2h --speed 600
    """


@energy.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True, help="0 picks a free port.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="in memory",
    help="SQLite file of the stored values.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered with --error-code.",
)
@click.option(
    "--error-code",
    type=click.Choice(["E1001", "E1002", "E2001", "E2002"]),
    default="E1001",
    show_default=True,
    help="Return code of the answers --error-rate fails.",
)
@click.option(
    "--slow-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Share answered --slow-s late."
)
@click.option(
    "--slow-s", type=click.FloatRange(min=0), default=40.0, show_default=True, help="How late a slow answer is (s)."
)
@click.option("--reg-version", default="1", show_default=True, help="regVersion the version check answers.")
@click.option("--dic-version", default="1", show_default=True, help="dicVersion the version check answers.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Serve HTTPS: PEM cert.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The certificate's key.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same behaviour.")
@click.option(
    "--duration-s", type=float, default=None, show_default="until Ctrl-C", help="Stop after this many seconds."
)
def serve(
    host: str,
    port: int,
    db: Path | None,
    error_rate: float,
    error_code: str,
    slow_rate: float,
    slow_s: float,
    reg_version: str,
    dic_version: str,
    cert: Path | None,
    key: Path | None,
    seed: int,
    duration_s: float | None,
) -> None:
    """Serve the platform side of the eight interfaces, storing what it receives."""
    import numpy as np

    from twin.energy.platform import Platform, PlatformFaults, server_tls

    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together (HTTPS needs both)")
    tls = server_tls(cert, key) if cert is not None and key is not None else None

    faults = PlatformFaults(
        error_rate=error_rate,
        error_code=error_code,
        slow_rate=slow_rate,
        slow_s=slow_s,
        rng=np.random.default_rng(seed),
    )
    platform = Platform(db=db or ":memory:", faults=faults, versions=(reg_version, dic_version), ssl_context=tls)
    aio.run(_serve(platform, host, port, duration_s))


async def _serve(platform: Any, host: str, port: int, duration_s: float | None) -> None:
    try:
        await platform.start(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"energy platform at {platform.url}  (register at {platform.url}/register)")
    click.echo(
        f"faults at run time: POST {platform.url}/twin/faults"
        ' {"operation", "code", "slow_s", "count"} or {"outage_s"}; stats: GET /twin/stats'
    )
    platform.on_event = _print_event
    try:
        await until_stopped(duration_s)
    finally:
        stats = platform.stats()
        await platform.stop()
        click.echo("stats: " + json.dumps(stats, ensure_ascii=False))


@energy.command()
@click.option("--line", "line_ref", required=True, help="Line file (name or path): its stations consume.")
@click.option("--url", required=True, envvar="TWIN_ENERGY_URL", help="The platform's register URL (8.3).")
@click.option("--duration", default="2h", show_default=True, help="Virtual time to run: 2h, 90m, 1d...")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001),
    default=60.0,
    show_default=True,
    help="Virtual seconds per wall second.",
)
@click.option(
    "--start",
    "start_text",
    default=None,
    show_default="now, to the quarter hour",
    help="Virtual start, 'YYYY-MM-DD HH:MM' plant time.",
)
@click.option("--upload-every", default="1d", show_default=True, help="Upload period (EN-16): 1d, 1h, 15m...")
@click.option("--upload-offset", default="30m", show_default=True, help="Upload time past the period's start.")
@click.option(
    "--timeout-s", type=click.FloatRange(min=0.01), default=30.0, show_default=True, help="Wait for an answer (s)."
)
@click.option(
    "--retry-pause-s", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Pause before a resend (s)."
)
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA (PEM) for HTTPS.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="in memory",
    help="The uplink's queue (SQLite).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same behaviour.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the summary here.")
@click.option("--quiet", is_flag=True, help="Print only the summary, not every call.")
def upload(
    line_ref: str,
    url: str,
    duration: str,
    speed: float,
    start_text: str | None,
    upload_every: str,
    upload_offset: str,
    timeout_s: float,
    retry_pause_s: float,
    ca_file: str | None,
    db: Path | None,
    seed: int,
    json_out: Path | None,
    quiet: bool,
) -> None:
    """Consume energy as LINE's equipment would and upload it to the platform at URL."""
    from twin.durations import parse_duration
    from twin.energy.driver import run_uplink, site_for_line
    from twin.energy.uplink import UplinkConfig

    start = None
    if start_text is not None:
        try:
            start = datetime.fromisoformat(start_text)
        except ValueError:
            raise ConfigError(f"--start must be 'YYYY-MM-DD HH:MM', got {start_text!r}") from None
    site = site_for_line(line_ref)
    config = UplinkConfig(
        register_url=url,
        timeout_s=timeout_s,
        retry_pause_s=retry_pause_s,
        ca_file=ca_file,
        upload_every_s=parse_duration(upload_every, "--upload-every"),
        upload_offset_s=parse_duration(upload_offset, "--upload-offset"),
    )

    click.echo(
        f"{len(site.points)} data codes: the plant total, {sum(1 for p in site.points if p.count)} stations, "
        f"{sum(1 for p in site.points if p.load_kw)} utilities; uploading to {url}"
    )
    run = aio.run(
        run_uplink(
            site,
            config,
            duration_s=parse_duration(duration, "--duration"),
            speed=speed,
            start=start,
            seed=seed,
            db=db or ":memory:",
            on_event=None if quiet else _show,
        )
    )
    summary = run.summary()
    assert run.uplink is not None
    run.uplink.store.close()
    _print_summary(summary)
    if json_out is not None:
        json_out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    _fail_unless_acknowledged(summary)


def _show(e: Any) -> None:
    """One line per call of the uplink."""
    batch = f" batch {e.batch_id} ({e.values} values)" if e.batch_id is not None else ""
    tries = f" try {e.attempt}" if e.attempt > 1 else ""
    click.echo(f"{e.at}  {e.operation:<18} {e.outcome:<11}{batch}{tries} {e.ms:7.1f} ms  {e.detail}".rstrip())


def _fail_unless_acknowledged(summary: dict[str, Any]) -> None:
    """Exit 1 (a failed check) when a finished period's value was not acknowledged by the end of the run."""
    from twin.energy.uplink import UplinkCallFailed

    v = summary["values"]
    owed = v["closed"] + v["queued"] + v["rejected"]
    if owed:
        detail = (
            f"{owed} values not acknowledged ({v['queued']} queued, {v['closed']} never sent, {v['rejected']} rejected)"
        )
        raise UplinkCallFailed("UploadEnergyData", "not all acknowledged", detail, retry=True)


def _print_summary(s: dict[str, Any]) -> None:
    console = Console(highlight=False, markup=False, width=140)
    v = s["values"]
    console.print(
        f"{s['virtual_start']} -> {s['virtual_end']} in {s['wall_s']:.1f} s wall: {s['kwh_total']:,.0f} kWh in total; "
        f"values acknowledged {v['acked']}, queued {v['queued']}, never sent {v['closed']}, rejected {v['rejected']}, "
        f"still open {v['open']} "
        f"(periods not ended); {s['batches_acked']} batches, {s['resends']} resends, "
        f"{s['queued_after_retries']} times queued after 3 resends"
    )
    table = Table(title="calls (ms)")
    for col in ("call", "count", "failures", "p50", "p99", "max"):
        table.add_column(col, justify="left" if col == "call" else "right")
    for name, st in s["latency"].items():
        svc = st["service_ms"]
        table.add_row(
            name,
            str(st["count"]),
            str(st["failures"]),
            f"{svc.get('p50', 0):.1f}",
            f"{svc.get('p99', 0):.1f}",
            f"{svc.get('max', 0):.1f}",
        )
    console.print(table)


def _print_event(text: str) -> None:
    """One line per client event, with the time it happened."""
    click.echo(f"{datetime.now():%H:%M:%S.%f}"[:-3] + " " + text)
