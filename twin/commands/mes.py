"""``twin mes``: the embedded reference MES as a server of its own."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from twin.errors import ConfigError

if TYPE_CHECKING:
    from twin.mes import MesConfig


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{what} {item!r} must be OPERATION=VALUE, e.g. Inbound=fixed:200")
        out[key] = value
    return out


@click.group()
def mes() -> None:
    """The embedded reference MES: the strict MES the twin runs against by default."""


@mes.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="TWIN_MES_HOST", help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, envvar="TWIN_MES_PORT", help="0 = any free port.")
@click.option("--db", default="mes.sqlite", show_default=True, envvar="TWIN_MES_DB", help="SQLite file, or :memory:.")
@click.option(
    "--line",
    "line_ref",
    default="line-A02",
    show_default=True,
    envvar="TWIN_LINE",
    help="Line name or file: the route and the equipment codes.",
)
@click.option("--profile", "profile_ref", default=None, help="Another profile than the line's.")
@click.option(
    "--durability",
    type=click.Choice(["full", "normal"]),
    default="full",
    show_default=True,
    help="full: each group commit is on disk before its answers; normal: in the OS cache (survives a "
    "killed MES, not a power cut).",
)
@click.option(
    "--equipment-address",
    "addresses",
    multiple=True,
    metavar="CODE=HOST[:PORT]",
    help="Where an equipment's host listens (section 3); *=HOST:PORT for all. Default 127.0.1.N:6868.",
)
@click.option(
    "--registry",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML/JSON file mapping equipment codes to addresses.",
)
@click.option(
    "--interlock-timeout",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds before an equipment that does not answer a section-3 call counts as offline.",
)
@click.option(
    "--batch-every",
    type=float,
    default=0.0,
    help="Push a new electrolyte batch (3.2) to the filling machines every N seconds (0: only on request).",
)
@click.option(
    "--latency",
    default=None,
    metavar="DIST",
    help="Added latency for every interface: fixed:MS, uniform:LO:HI, normal:MEAN:SD, lognormal:MEDIAN:P99, exp:MEAN.",
)
@click.option(
    "--latency-for",
    multiple=True,
    metavar="OP=DIST",
    help="Added latency for one interface (operation id, e.g. Inbound=fixed:500); repeatable; wins over --latency.",
)
@click.option(
    "--error-rate", type=float, default=0.0, help="Share of requests (0 to 1) refused on purpose (code 9001)."
)
@click.option(
    "--error-rate-for", multiple=True, metavar="OP=RATE", help="Error rate for one interface, e.g. Heartbeat=0.1."
)
@click.option(
    "--error-kind",
    type=click.Choice(["code", "http500"]),
    default="code",
    show_default=True,
    help="How an injected error looks: code 9001 in a 200 answer, or HTTP 500 with it.",
)
@click.option("--outage-after", type=float, default=None, help="Seconds from start until an outage window.")
@click.option("--outage-for", type=float, default=None, help="Length of the outage window in seconds.")
@click.option(
    "--outage-mode",
    type=click.Choice(["refuse", "hang"]),
    default="refuse",
    show_default=True,
    help="refuse: connections refused (and kept-alive ones dropped); hang: requests get no answer until it ends.",
)
@click.option("--slow-db-ms", type=float, default=0.0, help="Extra milliseconds for every database commit.")
@click.option("--seed", type=int, default=None, help="Random seed of the fault injection.")
def serve(**options: object) -> None:
    """Serve the 58 MES interfaces of section 2 until interrupted (Ctrl-C or SIGTERM).

    Every request needs the bearer token of 2.1 OperatorLogin (accounts in the profile's data folder),
    is validated against the profile (camelCase or PascalCase) and checked against the business rules;
    a refusal has code != 0 and a message naming what is wrong. Everything is stored in SQLite (WAL) and
    answered only once committed. Prints the URL, then runs until stopped.

    \b
    twin mes serve                                 line-A02, port 8080, ./mes.sqlite
    twin mes serve --port 0 --db :memory:          throwaway, any free port
    twin mes serve --latency lognormal:20:200 --error-rate 0.02
    twin mes serve --latency-for Inbound=fixed:500 --error-rate-for Heartbeat=0.1
    twin mes serve --outage-after 60 --outage-for 30 --outage-mode hang
    twin mes serve --equipment-address '*=127.0.0.1:6868'   one listener for every section-3 call

    \b
    While it runs (no token needed; it listens on loopback by default):
      GET /  status page      GET /metrics  Prometheus text      GET /swagger.json  the profile
      GET|POST|DELETE /admin/faults   faults at run time, e.g. {"latency": "fixed:200", "error_rate": 0.1,
                                      "outage": {"after_s": 0, "for_s": 30, "mode": "refuse"}, "slow_db_ms": 50}
      POST /admin/electrolyte-batch   push a batch now (3.2)     GET /admin/interlocks  sent, with outcomes
      GET /admin/trace/CODE           a product, lot or code     GET /admin/stats       counters as JSON
    """
    config, outage = build_config(**options)  # type: ignore[arg-type]
    asyncio.run(_serve(config, outage))


def build_config(
    *,
    host: str,
    port: int,
    db: str,
    line_ref: str,
    profile_ref: str | None,
    durability: str,
    addresses: tuple[str, ...],
    registry: Path | None,
    interlock_timeout: float,
    batch_every: float,
    latency: str | None,
    latency_for: tuple[str, ...],
    error_rate: float,
    error_rate_for: tuple[str, ...],
    error_kind: str,
    outage_after: float | None,
    outage_for: float | None,
    outage_mode: str,
    slow_db_ms: float,
    seed: int | None,
) -> tuple[MesConfig, dict[str, Any] | None]:
    """The options of ``serve`` as an ``MesConfig``, and the outage window (started when the MES is)."""
    from twin.mes import Faults, Latency, MesConfig
    from twin.mes.registry import load_registry, parse_assignments

    mapping = load_registry(registry) if registry else {}
    mapping.update(parse_assignments(addresses))
    faults = Faults(
        latency=Latency.parse(latency) if latency else None,
        latency_for={k: Latency.parse(v) for k, v in _pairs(latency_for, "--latency-for").items()},
        error_rate=error_rate,
        error_rate_for={k: _rate(v, k) for k, v in _pairs(error_rate_for, "--error-rate-for").items()},
        error_kind=error_kind,
        slow_db_ms=slow_db_ms,
        seed=seed,
    )
    if (outage_after is None) != (outage_for is None):
        raise ConfigError("--outage-after and --outage-for go together")
    if interlock_timeout <= 0:
        raise ConfigError(f"--interlock-timeout must be more than 0 seconds, got {interlock_timeout:g}")
    if batch_every < 0 or slow_db_ms < 0:
        raise ConfigError("--batch-every and --slow-db-ms cannot be negative")
    config = MesConfig(
        host=host,
        port=port,
        db=db,
        line=line_ref,
        profile=profile_ref,
        synchronous=durability.upper(),
        addresses=mapping,
        interlock_timeout_s=interlock_timeout,
        batch_every_s=batch_every,
        faults=faults,
    )
    outage = None if outage_after is None else {"after_s": outage_after, "for_s": outage_for, "mode": outage_mode}
    return config, outage


def _rate(value: str, op: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--error-rate-for {op}={value}: the rate must be a number from 0 to 1") from None


async def _serve(config: MesConfig, outage: dict[str, Any] | None) -> None:
    from twin.mes import start_mes
    from twin.mes.faults import parse_outage

    loop = asyncio.get_running_loop()
    if outage is not None:
        config.faults.outage = parse_outage(outage, loop.time())
    running = await start_mes(config)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mes = running.mes
    click.echo(
        f"twin MES listening on {running.url}  (line {mes.route.line.name}: {len(mes.route.places)} equipment, "
        f"{len(mes.route.steps)} route steps; db {config.db}, synchronous {config.synchronous})"
    )
    click.echo(
        f"status {running.url}/  metrics {running.url}/metrics  swagger {running.url}/swagger.json  "
        f"admin {running.url}/admin/faults   Ctrl-C stops"
    )
    if mes.faults.active():
        click.echo(f"faults injected on purpose: {mes.faults.to_json(loop.time())}")
    try:
        await stop.wait()
    finally:
        await running.stop()
        click.echo("twin MES stopped")
