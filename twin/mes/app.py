"""The embedded MES as an aiohttp application, and how to run it in-process or as a server.

``create_app(config)`` builds it: typed ``web.AppKey`` state, the database, the section-3 client and
the background tasks (batch schedule, outage windows) in ``cleanup_ctx``. ``start_mes(config)`` runs it
with ``AppRunner`` + ``TCPSite`` (127.0.0.1 port 0 by default in tests) and returns its URL; ``twin run``
embeds it that way, and ``twin mes serve`` runs it until interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from twin.errors import ConfigError
from twin.mes import admin, guard
from twin.mes.callouts import Callouts
from twin.mes.config import MesConfig
from twin.mes.equipment import EquipmentClient
from twin.mes.registry import equipment_addresses, equipment_codes
from twin.mes.route import Plant, Route
from twin.mes.seed import MesData, load_mes_data
from twin.mes.service import MES, Mes
from twin.mes.state import MesState
from twin.mes.store import Store
from twin.profile import Profile, load_profile
from twin.sim.linefile import load_line

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 5.0  # on stop, requests still running get this long (a hanging one must not block SIGTERM)


class Runtime:
    """What exists only once the app runs: its listener (set by ``start_mes``) and background tasks."""

    def __init__(self) -> None:
        self.listener: Listener | None = None
        self.tasks: set[asyncio.Task[None]] = set()


RUNTIME = web.AppKey("runtime", Runtime)


class Listener:
    """The listening socket, so an outage window can close it and open it again on the same port."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, site: web.TCPSite) -> None:
        self.runner, self.host, self.port, self.site = runner, host, port, site

    async def close(self) -> None:
        if self.site is not None:
            await self.site.stop()
            self.site = None
        server = self.runner.server
        for handler in list(server.connections if server is not None else ()):
            handler.force_close()  # a refused MES also drops its kept-alive connections

    async def reopen(self) -> None:
        if self.site is None:
            self.site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
            await self.site.start()


@functools.lru_cache(maxsize=8)
def _loaded(line_ref: str, profile_ref: str | None, data_dir: Path | None) -> tuple[Profile, Route, MesData]:
    """Line, profile and master data are read-only once loaded: several MES in one process share them."""
    profile = load_profile(profile_ref) if profile_ref else None
    line, prof = load_line(line_ref, profile=profile)
    data = load_mes_data(prof, data_dir)
    if "long_stop_s" in line.periods:
        data.long_stop_s = float(line.periods["long_stop_s"])
    return prof, Route(line, data), data


def build_mes(config: MesConfig) -> Mes:
    """Load (or reuse) the line, its profile and the master data; open nothing yet."""
    loaded = [_loaded(str(line), config.profile, config.data_dir) for line in config.lines]
    prof, _, data = loaded[0]
    other = [route.line.name for p, route, _ in loaded if p.title != prof.title]
    if other:
        raise ConfigError(f"one MES speaks one profile: line {other[0]} has another than {loaded[0][1].line.name}")
    store = Store(config.db, synchronous=config.synchronous, slow_commit_ms=config.faults.slow_db_ms)
    mes = Mes(config, prof, Plant([route for _, route, _ in loaded]), data, store)
    config.faults.check_operations(mes.operation_ids())
    return mes


async def _storage(app: web.Application) -> AsyncIterator[None]:
    mes = app[MES]
    snapshot = await asyncio.to_thread(mes.store.open)
    mes.state = MesState.load(snapshot)
    mes.exchanges_stored = snapshot.exchanges
    log.info(
        "MES database %s: %d documents, %d exchanges",
        mes.config.db,
        sum(len(v) for v in snapshot.docs.values()),
        snapshot.exchanges,
    )
    yield
    await asyncio.to_thread(mes.store.close)


async def _stop_waiting(app: web.Application) -> None:
    """On stop, before requests in flight are waited for: an injected slow commit ends now."""
    app[MES].store.stop_waiting()


async def _equipment_client(app: web.Application) -> AsyncIterator[None]:
    mes = app[MES]
    codes = [code for route in mes.plant.routes for code in equipment_codes(route.line)]
    addresses = equipment_addresses(codes, mes.config.addresses)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = EquipmentClient(session, mes.profile, addresses, timeout_s=mes.config.interlock_timeout_s)
        mes.callouts = Callouts(client, mes.store, mes.state, mes.metrics)
        yield
        await mes.callouts.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    tasks = app[RUNTIME].tasks
    mes = app[MES]
    if mes.config.batch_every_s > 0:
        tasks.add(asyncio.create_task(_batch_schedule(mes, mes.config.batch_every_s)))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _batch_schedule(mes: Mes, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await admin.push_electrolyte(mes, None, None)
        except Exception:  # one failed push must not end the schedule
            log.exception("scheduled electrolyte batch push failed")


def schedule_outage(app: web.Application) -> None:
    """(Re)start the task that closes and reopens the listener for a ``refuse`` outage window.

    A cancelled task never reopens (the app may be shutting down); the task that replaces it reopens a
    listener an earlier window left closed, so clearing an outage through the admin API brings it back.
    """
    tasks = app[RUNTIME].tasks
    for task in [t for t in tasks if t.get_name() == "outage"]:
        task.cancel()
        tasks.discard(task)
    outage = app[MES].faults.outage
    window = (outage.start, outage.end) if outage is not None and outage.mode == "refuse" else None
    task = asyncio.create_task(_outage(app, window), name="outage")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _outage(app: web.Application, window: tuple[float, float] | None) -> None:
    listener = app[RUNTIME].listener
    if listener is None:  # not served through start_mes (a test client): requests are dropped instead
        return
    await listener.reopen()
    if window is None:
        return
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, window[0] - loop.time()))
    await listener.close()
    await asyncio.sleep(max(0.0, window[1] - loop.time()))
    await listener.reopen()


def create_app(config: MesConfig, mes: Mes | None = None) -> web.Application:
    """The MES as an aiohttp app; its admin token is ``config.admin_token`` or a new one (``mes.admin_token``)."""
    mes = mes or build_mes(config)
    mes.admin_token = config.admin_token or secrets.token_urlsafe(24)
    middleware = guard.middleware(mes, mes.admin_token, mes.metrics.refusals)
    app = web.Application(client_max_size=guard.MAX_BODY_LIMIT, middlewares=[middleware])
    app[MES] = mes
    app[RUNTIME] = Runtime()
    app.cleanup_ctx.extend([_storage, _equipment_client, _background])
    app.on_shutdown.append(_stop_waiting)
    admin.add_routes(app, schedule_outage)
    return app


@dataclass(slots=True)
class RunningMes:
    """An MES serving on a real socket: ``url`` is where equipment send their requests."""

    app: web.Application
    runner: web.AppRunner
    url: str

    @property
    def mes(self) -> Mes:
        return self.app[MES]

    @property
    def admin_token(self) -> str:
        """What ``/admin/*`` needs, as ``Authorization: Bearer <token>`` (``admin_headers``)."""
        return self.mes.admin_token

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mes.admin_token}"}

    def requests_by_interface(self) -> dict[str, dict[str, int]]:
        """What the MES answered so far, per interface (operation id): requests, ok (code 0) and refused.

        Read in-process, no HTTP: ``twin run`` checks its own counts against these. A shared path is
        counted under the operation it was matched to (2.28 ``Outbound`` or 2.50 ``BoundOutbound``)."""
        return {
            op: {"requests": row["requests"], "ok": row["ok"], "refused": row["refused"]}
            for op, row in self.mes.metrics.per_operation().items()
        }

    def refusals(self) -> dict[str, int]:
        """Refused requests by reason (``invalid``, ``route``, ``unauthorised``, ... ``fault``)."""
        return dict(self.mes.metrics.refusals)

    def interlock_counts(self) -> dict[tuple[str, str], int]:
        """Interlocks whose call to the equipment has ended, by (code, outcome): delivered, offline, ..."""
        return dict(self.mes.metrics.interlocks)

    async def interlocks(self) -> list[dict[str, Any]]:
        """Every interlock recorded, oldest first: id, at, code, equipment, detector, address, message,
        outcome ("pending" while the call runs), detail, finished_at. Includes those of earlier runs on the
        same database file."""
        callouts = self.mes.callouts
        return await callouts.interlocks() if callouts is not None else []

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_mes(config: MesConfig | None = None) -> RunningMes:
    """Start the MES in this event loop (127.0.0.1, any free port unless the config says otherwise)."""
    config = config or MesConfig(port=0, db=":memory:")
    app = create_app(config)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=config.idle_timeout_s,  # idle and half-sent connections are closed after this
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OverflowError as exc:  # a port out of 0-65535 that slipped past the CLI
        await runner.cleanup()
        raise ConfigError(f"the MES cannot listen on {config.host}:{config.port}: {exc}") from exc
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"the MES cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    port = runner.addresses[0][1]
    app[RUNTIME].listener = Listener(runner, config.host, port, site)
    if app[MES].faults.outage is not None:
        schedule_outage(app)
    return RunningMes(app, runner, f"http://{config.host}:{port}")


@asynccontextmanager
async def serve_mes(config: MesConfig | None = None) -> AsyncIterator[RunningMes]:
    """``async with serve_mes() as mes:`` an MES for the duration of the block."""
    running = await start_mes(config)
    try:
        yield running
    finally:
        await running.stop()
