"""``twin mes``: the embedded reference MES as a server of its own."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from twin import aio
from twin.errors import ConfigError, TwinError
from twin.transport.embedded import DEFAULT_RESTART_AFTER_S, DIE_WITH_ENV, TOKEN_ENV

if TYPE_CHECKING:
    from twin.mes import MesConfig


class MesDied(TwinError):
    """The supervised MES ended when nobody asked it to (exit 1)."""


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
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="TWIN_MES_PORT",
    help="0 = any free port.",
)
@click.option("--db", default="mes.sqlite", show_default=True, envvar="TWIN_MES_DB", help="SQLite file, or :memory:.")
@click.option(
    "--line",
    "line_refs",
    multiple=True,
    default=["line-A02"],
    show_default=True,
    envvar="TWIN_LINE",
    help="Line name or file: the route and the equipment codes. Repeat it to serve several lines (a factory).",
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
@click.option(
    "--slow-db-ms", type=float, default=0.0, show_default=True, help="Extra milliseconds for every database commit."
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed of the fault injection.")
@click.option(
    "--admin-token",
    default=None,
    envvar="TWIN_MES_ADMIN_TOKEN",
    show_default="a new one, printed at start",
    help="The token /admin/* needs (Authorization: Bearer TOKEN).",
)
@click.option(
    "--admin-token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the admin token to this file (mode 600).",
)
@click.option(
    "--idle-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds before a connection without a complete request (idle, or headers half-sent) is closed.",
)
@click.option(
    "--body-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds a request body may take to arrive once its headers have (else 408 and the connection closed).",
)
@click.option(
    "--crash-after",
    type=float,
    default=None,
    metavar="S",
    help="Fault: kill the MES with SIGKILL after S seconds, then start it again from its database.",
)
@click.option(
    "--restart-after",
    type=float,
    default=None,
    metavar="S",
    show_default=f"{DEFAULT_RESTART_AFTER_S:g}",
    help="With --crash-after: seconds until the MES is started again.",
)
def serve(**options: Any) -> None:
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
    twin mes serve --crash-after 60 --restart-after 10     SIGKILL at 60 s, back 10 s later, same port

    \b
    While it runs:
      GET /  status page      GET /metrics  Prometheus text      GET /swagger.json  the profile
    and, with the admin token (printed at start; header Authorization: Bearer TOKEN):
      GET|POST|DELETE /admin/faults   faults at run time, e.g. {"latency": "fixed:200", "error_rate": 0.1,
                                      "outage": {"after_s": 0, "for_s": 30, "mode": "refuse"}, "slow_db_ms": 50}
      POST /admin/electrolyte-batch   push a batch now (3.2)     GET /admin/interlocks  sent, with outcomes
      GET /admin/trace/CODE           a product, lot or code     GET /admin/stats       counters as JSON

    \b
    Limits: request bodies 1 MiB (2.54 EquFileUpload 32 MiB, admin 4 MiB), else 413 before the body is
    read; a wrong Content-Type is 415; idle connections are closed after --idle-timeout.
    """
    die_with_parent()
    config, outage = build_config(**options)  # every flag is checked here, before anything starts
    if options["crash_after"] is not None:
        aio.run(_supervise(click.get_current_context(), options))
        return
    aio.run(_serve(config, outage, options["admin_token_file"]))


def build_config(
    *,
    host: str,
    port: int,
    db: str,
    line_refs: tuple[str, ...],
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
    admin_token: str | None = None,
    admin_token_file: Path | None = None,
    idle_timeout: float = 30.0,
    body_timeout: float = 30.0,
    crash_after: float | None = None,
    restart_after: float | None = None,
) -> tuple[MesConfig, dict[str, Any] | None]:
    """The options of ``serve`` as an ``MesConfig``, and the outage window (started when the MES is)."""
    from twin.mes import Faults, Latency, MesConfig
    from twin.mes.registry import load_registry, parse_assignments

    for flag, value in (
        ("--interlock-timeout", interlock_timeout),
        ("--batch-every", batch_every),
        ("--slow-db-ms", slow_db_ms),
        ("--outage-after", outage_after),
        ("--outage-for", outage_for),
        ("--idle-timeout", idle_timeout),
        ("--body-timeout", body_timeout),
        ("--error-rate", error_rate),
    ):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{flag} must be a finite number, got {value}")
    if idle_timeout <= 0 or body_timeout <= 0:
        raise ConfigError("--idle-timeout and --body-timeout must be more than 0 seconds")
    if admin_token is not None:
        _check_token(admin_token)
    if crash_after is not None or restart_after is not None:
        _check_crash(crash_after, restart_after)
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
        lines=tuple(line_refs),
        profile=profile_ref,
        synchronous=durability.upper(),
        addresses=mapping,
        interlock_timeout_s=interlock_timeout,
        batch_every_s=batch_every,
        faults=faults,
        admin_token=admin_token,
        idle_timeout_s=idle_timeout,
        body_timeout_s=body_timeout,
    )
    outage = None if outage_after is None else {"after_s": outage_after, "for_s": outage_for, "mode": outage_mode}
    return config, outage


def _rate(value: str, op: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--error-rate-for {op}={value}: the rate must be a number from 0 to 1") from None


def _check_token(token: str) -> None:
    if len(token) < 8 or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError("--admin-token must be at least 8 printable characters without spaces")


def _check_crash(crash_after: float | None, restart_after: float | None) -> None:
    if crash_after is None:
        raise ConfigError("--restart-after goes with --crash-after (the MES is restarted after a crash)")
    if not math.isfinite(crash_after) or crash_after <= 0:
        raise ConfigError(f"--crash-after must be a finite number of seconds > 0, got {crash_after}")
    if restart_after is not None and (not math.isfinite(restart_after) or restart_after < 0):
        raise ConfigError(f"--restart-after must be a finite number of seconds >= 0, got {restart_after}")


def _write_token(path: Path, token: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
    except OSError as exc:
        raise ConfigError(f"--admin-token-file {path}: cannot write it ({exc.strerror or exc})") from None


async def _serve(config: MesConfig, outage: dict[str, Any] | None, token_file: Path | None = None) -> None:
    from twin.mes import start_mes
    from twin.mes.faults import parse_outage

    loop = asyncio.get_running_loop()
    if outage is not None:
        config.faults.outage = parse_outage(outage, loop.time())
    running = await start_mes(config)
    stop = asyncio.Event()
    aio.handle_signals(loop, _stopper(stop))
    mes = running.mes
    try:
        if token_file is not None:
            _write_token(token_file, running.admin_token)
    except ConfigError:
        await running.stop()
        raise
    click.echo(
        f"twin MES listening on {running.url}  ({mes.plant.describe()}; db {config.db}, "
        f"synchronous {config.synchronous})"
    )
    click.echo(
        f"status {running.url}/  metrics {running.url}/metrics  swagger {running.url}/swagger.json  "
        f"admin {running.url}/admin/faults   Ctrl-C stops"
    )
    where = f"; also in {token_file}" if token_file is not None else ""
    click.echo(f"admin token {running.admin_token}  (/admin/* needs 'Authorization: Bearer <token>'{where})")
    if mes.faults.active():
        click.echo(f"faults injected on purpose: {mes.faults.to_json(loop.time())}")
    watchdog = asyncio.create_task(_watch_parent(stop))
    try:
        await stop.wait()
    finally:
        watchdog.cancel()
        try:
            await asyncio.wait_for(running.stop(), STOP_TIMEOUT_S)
        except TimeoutError:
            click.echo(f"twin MES did not stop within {STOP_TIMEOUT_S:g} s: leaving anyway", err=True)
        click.echo("twin MES stopped")


STOP_TIMEOUT_S = 20.0  # SIGTERM always stops the MES: what is not closed by then is left to the OS


def _stopper(stop: asyncio.Event) -> Callable[[], None]:
    """The first SIGINT/SIGTERM stops in order; a second one while stopping ends the process at once."""

    def handler() -> None:
        if stop.is_set():
            os._exit(1)
        stop.set()

    return handler


# -- the MES dies with its parent --------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """When started by a supervisor (``twin run``'s EmbeddedMes, or ``serve --crash-after``), which sets
    ``TWIN_MES_DIE_WITH`` to its pid: ask Linux for SIGKILL when that parent dies, and if it is already
    gone, go now. The MES never outlives what started it."""
    parent = os.environ.pop(DIE_WITH_ENV, "")
    if not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os._exit(1)
    os.environ["_TWIN_MES_PARENT"] = parent


async def _watch_parent(stop: asyncio.Event) -> None:
    """Second line of defence where the parent-death signal is not available: poll the parent."""
    parent = os.environ.get("_TWIN_MES_PARENT", "")
    if not parent.isdigit():
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(1.0)
    stop.set()


# -- a crash rehearsal: a supervising parent ---------------------------------------------------------------
def _child_args(ctx: click.Context, options: dict[str, Any]) -> list[str]:
    """The options given on the command line, as arguments for a child ``twin mes serve`` (those from the
    environment reach it through the environment); never the crash flags, the host or the port."""
    args: list[str] = []
    skip = ("host", "port", "crash_after", "restart_after", "admin_token_file")
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name not in options or name in skip:
            continue
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        value = options[name]
        flag = param.opts[0]
        for item in value if param.multiple else (value,):
            args += [flag, str(item)]
    return args


async def _supervise(ctx: click.Context, options: dict[str, Any]) -> None:
    """``serve --crash-after``: the MES runs as a child that this process kills and restarts on the same port
    (a process cannot restart itself after SIGKILL). The child's output is ours; the token is kept."""
    from twin.transport.embedded import EmbeddedMes

    args = _child_args(ctx, options)
    for flag, key in (("--crash-after", "crash_after"), ("--restart-after", "restart_after")):
        if options[key] is not None:
            args += [flag, str(options[key])]
    token_file = options["admin_token_file"]
    os.environ[TOKEN_ENV] = options["admin_token"] or secrets.token_urlsafe(24)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    aio.handle_signals(loop, _stopper(stop))
    supervisor = EmbeddedMes(
        Path.cwd(), args, host=options["host"], port=options["port"], echo=sys.stdout, token_file=token_file
    )
    async with supervisor as running:
        click.echo(
            f"twin MES supervisor: SIGKILL after {running.crash_after_s:g} s, then a new MES on {running.url} "
            f"{running.restart_after_s:g} s later"
        )
        dead = asyncio.create_task(running.dead.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({dead, stopped}, return_when=asyncio.FIRST_COMPLETED)
        dead.cancel()
        stopped.cancel()
    if running.died is not None:
        raise MesDied(f"the MES died unexpectedly (exit code {running.exit_code})")
