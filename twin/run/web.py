"""The live web view of a networked run: ``twin run LINE --web [HOST:]PORT``.

One aiohttp app in the run's own event loop serves one page (``static/``: plain HTML, CSS and canvas
JavaScript, nothing fetched from the network) while the run lasts. Server-sent events push a sample every
second (``twin.run.sampler``: time and speed, load per interface group, errors, the MES link, the line), and
the line again within 0.1 s of an interlock stopping an equipment. A page opened late first gets the bounded
history (``twin.run.history``). The controls (``twin.run.controls``) are POSTs of JSON.

Who may steer: on a loopback address, whoever can reach it (the machine's users; a request must name a
loopback host, so that another site's page cannot reach it by DNS rebinding); on any other address, which
must be named (``0.0.0.0:8089``), the page is readable by anyone who reaches it but a control needs the
embedded MES's admin token (``Authorization: Bearer <token>``), or, against another MES, a token made for
this run and printed with the URL. Controls are refused from another site's page (an ``Origin`` that is not
this server) and must be JSON, which a cross-site form cannot send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web

from twin.errors import ConfigError
from twin.run.controls import Controls
from twin.run.history import History
from twin.run.networked import NetworkedRun
from twin.run.sampler import Sampler

T = TypeVar("T")
STATIC = Path(__file__).with_name("static")
DEFAULT_HOST = "127.0.0.1"
TICK_S = 1.0
WATCH_S = 0.1  # how often the interlock list is looked at between ticks
CLIENT_QUEUE = 256  # events waiting for one slow page before it is dropped (it reconnects and gets the history)
CONTROL_BODY_LIMIT = 64 * 1024

RUN: web.AppKey[NetworkedRun] = web.AppKey("run", NetworkedRun)
VIEW: web.AppKey[WebView] = web.AppKey("view")


@dataclass(frozen=True)
class WebAddress:
    """Where the page is served: ``PORT``, ``HOST:PORT``, ``[IPv6]:PORT``; the host defaults to loopback."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def parse(cls, text: str) -> WebAddress:
        raw = text.strip()
        host, sep, port = raw.rpartition(":")
        if not sep:
            host, port = "", raw
        host = host.strip("[]") or DEFAULT_HOST
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"--web {text!r}: expected [HOST:]PORT with a port from 0 to 65535, e.g. 8089 or "
                              "0.0.0.0:8089")  # fmt: skip
        return cls(host, int(port))

    def url(self, port: int) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


class Hub:
    """The pages listening: one bounded queue each; a page that cannot keep up is dropped, never waited for."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[bytes | None]] = set()

    def send(self, name: str, data: Any) -> None:
        if not self.queues:
            return
        frame = _event(name, data)
        for q in list(self.queues):
            try:
                q.put_nowait(frame)
            except asyncio.QueueFull:
                self.drop(q)

    def drop(self, q: asyncio.Queue[bytes | None]) -> None:
        self.queues.discard(q)
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)

    def close(self) -> None:
        for q in list(self.queues):
            self.drop(q)


class WebView:
    """``async with WebView(run, address) as view:`` serves the page while the block (the run) goes on."""

    def __init__(
        self,
        run: NetworkedRun,
        address: WebAddress,
        *,
        token: str | None = None,
        tick_s: float = TICK_S,
        say: Callable[[str], None] | None = None,
        sampler: Any = None,
        controls: Any = None,
    ) -> None:
        self.run = run
        self.address = address
        self.tick_s = tick_s
        self.say = say
        # a sharded run brings its own (twin.run.shardweb): the same figures, added up from its shards' samples
        self.sampler = sampler if sampler is not None else Sampler(run)
        self.history = History()
        self.controls = controls if controls is not None else Controls(run)
        self.hub = Hub()
        self.url = ""
        self.last: dict[str, Any] = {}
        self.line: dict[str, Any] = {}
        # Controls need a token when the page is served beyond loopback: the embedded MES's admin token, or one
        # made here when there is no embedded MES to take it from.
        self.token_needed = not address.loopback
        self._token = token or (secrets.token_urlsafe(18) if self.token_needed and run.config.mes_url else None)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._seen_interlocks = 0
        self._laid_out = False

    # -- life cycle --------------------------------------------------------------------------------------
    async def __aenter__(self) -> WebView:
        guard = [_loopback_host] if self.address.loopback else []
        app = web.Application(client_max_size=CONTROL_BODY_LIMIT, middlewares=guard)
        app[RUN] = self.run
        app[VIEW] = self
        app.router.add_get("/", _index)
        app.router.add_static("/static", STATIC)
        app.router.add_get("/events", _events)
        app.router.add_get("/api/state", _state)
        app.router.add_post("/api/control/{name}", _control)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"--web: cannot listen on {self.address.host}:{self.address.port}: {exc.strerror or exc}"
            ) from None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # port 0: the one we got
        self.url = self.address.url(port)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        if self.say is not None:
            self.say(f"web view {self.url}" + self._access_note())
        return self

    def _access_note(self) -> str:
        if not self.token_needed:
            return ""
        if self._token and self.run.config.mes_url:
            return f" (served on {self.address.host}; controls need the token {self._token})"
        return f" (served on {self.address.host}; controls need the embedded MES's admin token)"

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        with contextlib.suppress(Exception):  # the final state is a courtesy; the run's end must not fail on it
            self._sample()
        self.hub.send("end", {"state": self.run.folder.state, "run_folder": str(self.run.path)})
        self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what the pages get ------------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """Everything a page needs to draw at once: the layout, the history, the line now, the controls so far."""
        return {
            "layout": self.sampler.layout(),
            "history": self.history.to_json(),
            "last": self.last,
            "line": self.line,
            "controls": self.controls.log[-200:],
            "token_needed": self.token_needed,
            "tick_s": self.tick_s,
        }

    def _sample(self) -> None:
        sample = self.sampler.sample()
        kept = {k: v for k, v in sample.items() if k != "errors"}  # the history draws charts: no error table
        coarse = self.history.add(kept, self.sampler.minute)
        self.last = sample
        self.line = self.sampler.line()
        self._seen_interlocks = self.line["interlocks_total"]
        if not self._laid_out and self.sampler.ready():
            self._laid_out = True
            self.hub.send("layout", self.sampler.layout())
        self.hub.send("tick", {"sample": sample, "line": self.line, "coarse": coarse})

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._sample()
            due += self.tick_s
            if due < loop.time():  # a stalled loop: start counting again rather than catch up in a burst
                due = loop.time() + self.tick_s
            while (wait := due - loop.time()) > 0:
                await asyncio.sleep(min(wait, WATCH_S))
                if len(self.run.interlocks) != self._seen_interlocks:
                    self.line = self.sampler.line()  # the stopped station turns red now, not at the next tick
                    self._seen_interlocks = self.line["interlocks_total"]
                    self.hub.send("line", self.line)

    # -- who may steer -------------------------------------------------------------------------------------
    def expected_token(self) -> str | None:
        if not self.token_needed:
            return None
        return self._token or getattr(self.run.mes, "admin_token", None) or ""

    def refuse(self, request: web.Request) -> str | None:
        """Why this control request may not be taken, or None."""
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return f"controls are taken from this server's own page, not from {origin}"
        if request.content_type != "application/json":
            return "a control is a JSON body (Content-Type: application/json)"
        expected = self.expected_token()
        if expected is None:
            return None
        if not expected:
            return "the embedded MES is not up yet: its admin token is not known"
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        presented = value.strip() if scheme.lower() == "bearer" else request.headers.get("X-Admin-Token", "")
        if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            return "controls need the admin token: Authorization: Bearer <token>"
        return None


def _host_name(host_header: str) -> str:
    """The host of a ``Host`` header: ``127.0.0.1:8089`` -> 127.0.0.1, ``[::1]:8089`` -> ::1."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


@web.middleware
async def _loopback_host(request: web.Request, handler: Any) -> web.StreamResponse:
    """A view served on loopback answers only requests addressed to loopback: a page of another site that
    rebinds its own name to 127.0.0.1 (DNS rebinding) cannot read the run or steer it."""
    if not WebAddress(_host_name(request.host), 0).loopback:
        return web.json_response({"ok": False, "error": f"this view answers loopback names only, not {request.host}"},
                                 status=403)  # fmt: skip
    return await handler(request)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _events(request: web.Request) -> web.StreamResponse:
    view = request.app[VIEW]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    q: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
    view.hub.queues.add(q)
    try:
        await resp.write(_event("hello", view.hello()))
        while (frame := await q.get()) is not None:
            await resp.write(frame)
    except (ConnectionError, RuntimeError):  # the page went away (RuntimeError: the transport is closing)
        pass
    finally:
        view.hub.queues.discard(q)
    return resp


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[VIEW].hello(), dumps=lambda d: orjson.dumps(d).decode())


async def _control(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    why = view.refuse(request)
    if why is not None:
        status = 401 if "token" in why else 403
        return web.json_response({"ok": False, "error": why}, status=status)
    try:
        args = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        return web.json_response({"ok": False, "error": f"the body is not JSON: {exc}"}, status=400)
    if not isinstance(args, dict):
        return web.json_response({"ok": False, "error": "the body must be a JSON object"}, status=400)
    entry = await view.controls.apply(request.match_info["name"], args, by=request.remote or "")
    view.hub.send("control", entry)
    return web.json_response(entry, status=200 if entry["ok"] else 400, dumps=lambda d: orjson.dumps(d).decode())


def parse_web_address(text: str) -> WebAddress:
    """``--web``'s value, checked before the run starts (a bad one is bad input, exit 2)."""
    return WebAddress.parse(text)


async def with_web_view(
    main: Coroutine[Any, Any, T], run: NetworkedRun, address: WebAddress | None, say: Callable[[str], None]
) -> T:
    """Await ``main`` (the run) with the page served around it when ``address`` is given (``--web``)."""
    if address is None:
        return await main
    try:
        view = WebView(run, address, say=say)
        await view.__aenter__()
    except BaseException:
        main.close()  # never started: no "coroutine was never awaited"
        raise
    try:
        return await main
    finally:
        await view.__aexit__(None, None, None)
