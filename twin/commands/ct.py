"""``twin ct``: the inverter CT wiring check (seed 001), as the cloud with a virtual fleet and as the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from twin import aio
from twin.commands.stopping import until_stopped
from twin.errors import ConfigError

if TYPE_CHECKING:
    from twin.ct.client import CheckReport
    from twin.ct.fleet import Fleet

DEFAULT_TOKEN = "twin-ct-token"
SHOW_AT_MOST = 40


def _span(text: str | None, option: str) -> tuple[float, float] | None:
    """``"60-180"`` -> (60.0, 180.0); ``"5"`` -> (5.0, 5.0)."""
    if text is None:
        return None
    try:
        parts = [float(p) for p in text.split("-", 1)]
    except ValueError:
        raise ConfigError(f"{option} must be seconds or a range like 60-180, got {text!r}") from None
    low, high = parts[0], parts[-1]
    if low < 0 or high < low:
        raise ConfigError(f"{option} must be 0 <= low <= high, got {text!r}")
    return low, high


@click.group()
def ct() -> None:
    """Inverter CT wiring check of an energy-storage cloud (status, start, poll the result).

    \b
      twin ct serve --inverters 200            a cloud with 200 virtual inverters
      twin ct check SN... --url URL            run the check workflow on inverters
    """


@ct.command()
@click.option(
    "--inverters",
    "count",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Virtual inverters in the fleet.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="0 picks a free port.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same fleet.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    show_default=DEFAULT_TOKEN,
    help="Accepted Token header value (repeat the option for more).",
)
@click.option(
    "--check-s", default=None, show_default="the profile's, 60-180", help="How long a check runs (s, or a range LO-HI)."
)
@click.option(
    "--delivery-s",
    default=None,
    show_default="the profile's, 1-5",
    help="Delay before the inverter takes the command (s, or LO-HI).",
)
@click.option("--sn-file", type=click.Path(dir_okay=False, path_type=Path), help="Write every serial number here.")
@click.option(
    "--duration-s", type=float, default=None, show_default="until Ctrl-C", help="Stop after this many seconds."
)
def serve(
    count: int,
    host: str,
    port: int,
    seed: int,
    tokens: tuple[str, ...],
    check_s: str | None,
    delivery_s: str | None,
    sn_file: Path | None,
    duration_s: float | None,
) -> None:
    """Serve the three CT check calls in front of a fleet of virtual inverters."""
    from twin.ct.fleet import generate_fleet
    from twin.ct.spec import load_ct_spec

    spec = load_ct_spec()
    fleet = generate_fleet(
        count, spec, seed=seed, check_s=_span(check_s, "--check-s"), delivery_s=_span(delivery_s, "--delivery-s")
    )
    if sn_file is not None:
        sn_file.write_text("\n".join(fleet.inverters) + "\n", encoding="utf-8")
    aio.run(_serve(fleet, host, port, list(tokens) or [DEFAULT_TOKEN], sn_file, duration_s))


async def _serve(
    fleet: Fleet, host: str, port: int, tokens: list[str], sn_file: Path | None, duration_s: float | None
) -> None:
    from collections import Counter

    from twin.ct.server import CALLS, create_app, start_server

    app = create_app(fleet, tokens)
    try:
        runner, bound = await start_server(app, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    states = Counter(inv.device_status for inv in fleet.inverters.values())
    topologies = Counter(inv.topology for inv in fleet.inverters.values())
    sns = list(fleet.inverters)
    click.echo(f"CT check cloud at http://{host}:{bound}  ({len(fleet)} inverters, Token: {', '.join(tokens)})")
    click.echo("deviceStatus: " + ", ".join(f"{k}: {v}" for k, v in sorted(states.items())))
    click.echo("topology: " + ", ".join(f"{k}: {v}" for k, v in sorted(topologies.items())))
    where = f" (all in {sn_file})" if sn_file else ""
    click.echo(f"serial numbers: {' '.join(sns[:5])}{' ...' if len(sns) > 5 else ''}{where}")
    try:
        await until_stopped(duration_s)
    finally:
        calls = app[CALLS]
        await runner.cleanup()
        click.echo("calls: " + (", ".join(f"{k}: {v}" for k, v in sorted(calls.items())) or "none"))


def _serials(sns: tuple[str, ...], sn_file: Path | None) -> list[str]:
    out = list(sns)
    if sn_file is not None:
        try:
            text = sn_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {sn_file}: {exc.strerror or exc}") from None
        out += [line.strip() for line in text.splitlines() if line.strip()]
    if not out:
        raise ConfigError("name at least one inverter: SN arguments or --sn-file")
    return out


@ct.command()
@click.argument("sns", nargs=-1, metavar="SN...")
@click.option("--url", required=True, envvar="TWIN_CT_URL", help="The cloud's base URL ({{EU}} of the spec).")
@click.option("--token", default=DEFAULT_TOKEN, envvar="TWIN_CT_TOKEN", show_default=True, help="Token header.")
@click.option("--sn-file", type=click.Path(dir_okay=False, path_type=Path), help="Serial numbers, one a line.")
@click.option(
    "--poll-s",
    type=click.FloatRange(min=0.001),
    default=None,
    show_default="the profile's, 10",
    help="Poll period (s).",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0.001),
    default=600.0,
    show_default=True,
    help="Give up on a check after (s).",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 100_000), default=200, show_default=True, help="Inverters checked at once."
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@click.option("--exchange-log", type=click.Path(dir_okay=False, path_type=Path), help="Every call, CSV (gzip).")
def check(
    sns: tuple[str, ...],
    url: str,
    token: str,
    sn_file: Path | None,
    poll_s: float | None,
    timeout_s: float,
    concurrency: int,
    json_out: Path | None,
    exchange_log: Path | None,
) -> None:
    """Run the CT check workflow on each inverter SN, concurrently; exit 1 unless every one is normal."""
    from twin.ct.client import CtCheckNotNormal, check_fleet
    from twin.metrics import ExchangeLog

    wanted = _serials(sns, sn_file)
    log = ExchangeLog(exchange_log) if exchange_log else None
    try:
        report = aio.run(
            check_fleet(
                wanted,
                url=url,
                token=token,
                poll_s=poll_s,
                timeout_s=timeout_s,
                concurrency=concurrency,
                exchange_log=log,
            )
        )
    finally:
        if log is not None:
            log.close()
    _print_report(report)
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    if not report.all_normal():
        bad = len(report.outcomes) - report.counts()["normal"]
        raise CtCheckNotNormal(f"{bad} of {len(report.outcomes)} inverters are not normal (see the table)")


def _print_report(report: CheckReport) -> None:
    console = Console(highlight=False, markup=False, width=160)
    if len(report.outcomes) <= SHOW_AT_MOST:
        table = Table(title="CT check per inverter")
        for col in ("inverter", "outcome", "polls", "s", "detail"):
            table.add_column(col, overflow="fold")
        for o in report.outcomes:
            detail = ("joined a running check; " if o.joined else "") + o.reason
            table.add_row(o.sn, o.outcome, str(o.polls), f"{o.duration_s:.1f}", detail)
        console.print(table)
    counts = report.counts()
    console.print(
        f"{len(report.outcomes)} inverters in {report.wall_s:.1f} s: "
        + ", ".join(f"{k} {counts[k]}" for k in sorted(counts, key=lambda k: -counts[k]))
    )
    console.print("The topology rule (master or three-phase single unit only) cannot be read through the API (CT-14).")
    lat = Table(title="calls (ms)")
    for col in ("call", "count", "failures", "late", "p50", "p99", "max", "p99 from intended"):
        lat.add_column(col, justify="right" if col != "call" else "left")
    summary = report.latency.summary(report.wall_s)["interfaces"]
    for name, s in summary.items():
        svc, itd = s["service_ms"], s["latency_ms"]
        lat.add_row(
            name,
            str(s["count"]),
            str(s["failures"]),
            str(s["late_starts"]),
            f"{svc.get('p50', 0):.1f}",
            f"{svc.get('p99', 0):.1f}",
            f"{svc.get('max', 0):.1f}",
            f"{itd.get('p99', 0):.1f}",
        )
    console.print(lat)
