"""``twin mes``: the embedded reference MES as a server of its own."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from twin.errors import ConfigError


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
@click.option("--batch-every", type=float, default=0.0, help="Push a new electrolyte batch (3.2) every N seconds.")
@click.option(
    "--latency",
    default=None,
    metavar="DIST",
    help="Added latency for every interface: fixed:MS, uniform:LO:HI, normal:MEAN:SD, lognormal:MEDIAN:P99, exp:MEAN.",
)
@click.option("--latency-for", multiple=True, metavar="OP=DIST", help="Added latency for one interface.")
@click.option("--error-rate", type=float, default=0.0, help="Share of requests refused on purpose (code 9001).")
@click.option("--error-rate-for", multiple=True, metavar="OP=RATE", help="Error rate for one interface.")
@click.option("--error-kind", type=click.Choice(["code", "http500"]), default="code", show_default=True)
@click.option("--outage-after", type=float, default=None, help="Seconds from start until an outage window.")
@click.option("--outage-for", type=float, default=None, help="Length of the outage window in seconds.")
@click.option("--outage-mode", type=click.Choice(["refuse", "hang"]), default="refuse", show_default=True)
@click.option("--slow-db-ms", type=float, default=0.0, help="Extra milliseconds for every database commit.")
@click.option("--seed", type=int, default=None, help="Random seed of the fault injection.")
def serve(
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
) -> None:
    """Serve the MES interfaces of section 2 until interrupted (Ctrl-C).

    \b
    twin mes serve                                 line-A02, port 8080, ./mes.sqlite
    twin mes serve --port 0 --db :memory:          throwaway, any free port
    twin mes serve --latency lognormal:20:200 --error-rate 0.02
    twin mes serve --outage-after 60 --outage-for 30 --outage-mode hang
    """
    from twin.mes import Faults, Latency, MesConfig
    from twin.mes.registry import load_registry, parse_assignments

    mapping = load_registry(registry) if registry else {}
    mapping.update(parse_assignments(addresses))
    faults = Faults(
        latency=Latency.parse(latency) if latency else None,
        latency_for={k: Latency.parse(v) for k, v in _pairs(latency_for, "--latency-for").items()},
        error_rate=error_rate,
        error_rate_for={k: float(v) for k, v in _pairs(error_rate_for, "--error-rate-for").items()},
        error_kind=error_kind,
        slow_db_ms=slow_db_ms,
        seed=seed,
    )
    if (outage_after is None) != (outage_for is None):
        raise ConfigError("--outage-after and --outage-for go together")
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
    asyncio.run(_serve(config, outage))


async def _serve(config: object, outage: dict[str, object] | None) -> None:
    from twin.mes import MesConfig, start_mes
    from twin.mes.faults import parse_outage

    assert isinstance(config, MesConfig)
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
    try:
        await stop.wait()
    finally:
        await running.stop()
        click.echo("twin MES stopped")
