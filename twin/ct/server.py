"""The cloud in front of a virtual inverter fleet: the three CT check calls over aiohttp.

Every request is checked against the profile (Token header, query parameter, JSON body) and a malformed one is
answered in the protocol's own envelope with ``successful: false`` and one of the twin's error codes (CT-9), never
with a traceback. Routes come from the profile's paths, plus the corrected spelling of the misspelt path (CT-1).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web

from twin.ct.fleet import Fleet, Inverter
from twin.ct.spec import RESULT_OP, START_OP, STATUS_OP

log = logging.getLogger(__name__)

FLEET = web.AppKey("fleet", Fleet)
TOKENS = web.AppKey("tokens", frozenset)
CALLS = web.AppKey("calls", Counter)

Handler = Callable[[web.Request], Awaitable[Any]]


class ApiFailure(Exception):
    """A request the cloud refuses: the error name (x-error-codes) and the reason for ``info``."""

    def __init__(self, name: str, info: str) -> None:
        super().__init__(info)
        self.name = name
        self.info = info


class Reply:
    """A successful envelope whose info carries a note (a startCheck answered false, CT-13)."""

    __slots__ = ("body", "info")

    def __init__(self, body: Any, info: str) -> None:
        self.body = body
        self.info = info


def envelope(body: Any, *, code: int = 0, info: str | None = None) -> web.Response:
    payload = {"errorCode": code, "info": info, "body": body, "successful": code == 0}
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


def _handler(op_id: str, work: Callable[[web.Request, Fleet], Awaitable[Any]]) -> Handler:
    """Wrap one call: count it, check the token, turn refusals and surprises into error envelopes."""

    async def handle(request: web.Request) -> web.Response:
        fleet = request.app[FLEET]
        request.app[CALLS][op_id] += 1
        codes = fleet.spec.error_codes
        try:
            token = request.headers.get("Token")
            if not token or token not in request.app[TOKENS]:
                raise ApiFailure("token", "Token header missing" if not token else "Token not accepted")
            answer = await work(request, fleet)
            if isinstance(answer, Reply):
                request.app[CALLS][f"{op_id} not issued"] += 1
                return envelope(answer.body, info=answer.info)
            return envelope(answer)
        except ApiFailure as exc:
            request.app[CALLS][f"{op_id} refused"] += 1
            return envelope(None, code=codes[exc.name], info=exc.info)
        except Exception as exc:  # the cloud answers, whatever went wrong inside it
            log.exception("CT cloud: %s failed", op_id)
            return envelope(None, code=codes["internal"], info=f"internal error: {type(exc).__name__}")

    return handle


def _inverter(fleet: Fleet, sn: Any, name: str) -> Inverter:
    if sn is None or sn == "":
        raise ApiFailure("missing", f"parameter {name} is required")
    if not isinstance(sn, str) or not fleet.spec.sn_pattern.fullmatch(sn):
        raise ApiFailure("malformed", f"{name} must be a serial number of 6-32 letters and digits, got {sn!r}")
    inv = fleet.get(sn)
    if inv is None:
        raise ApiFailure("not-found", f"no device with {name} {sn}")
    return inv


async def _status(request: web.Request, fleet: Fleet) -> dict[str, Any]:
    return _inverter(fleet, request.query.get("sn"), "sn").status(fleet.now())


async def _result(request: web.Request, fleet: Fleet) -> dict[str, Any]:
    return _inverter(fleet, request.query.get("sn"), "sn").result(fleet.now())


async def _start(request: web.Request, fleet: Fleet) -> bool | Reply:
    raw = await request.read()
    try:
        payload = orjson.loads(raw) if raw else None  # JSON whatever the Content-Type says (CT-3)
    except orjson.JSONDecodeError as exc:
        raise ApiFailure("malformed", f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiFailure("missing", 'the body must be a JSON object {"deviceSn": ...}')
    data, issues = fleet.spec.op(START_OP).check_request(payload)
    if issues:
        missing = any(i.message == "required field is missing" for i in issues)
        raise ApiFailure("missing" if missing else "malformed", "; ".join(str(i) for i in issues))
    inv = _inverter(fleet, data["deviceSn"], "deviceSn")
    issued, reason = fleet.start(inv)
    return True if issued else Reply(False, reason or "not issued")


def create_app(fleet: Fleet, tokens: Iterable[str]) -> web.Application:
    """The cloud's aiohttp application over ``fleet``, accepting the given tokens."""
    app = web.Application()
    app[FLEET] = fleet
    app[TOKENS] = frozenset(tokens)
    app[CALLS] = Counter()
    spec = fleet.spec
    routes = {
        spec.op(STATUS_OP).path: ("GET", _handler(STATUS_OP, _status)),
        spec.op(START_OP).path: ("POST", _handler(START_OP, _start)),
        spec.op(RESULT_OP).path: ("GET", _handler(RESULT_OP, _result)),
    }
    for alias, target in spec.path_aliases.items():
        routes[alias] = routes[target]
    for path, (method, handler) in routes.items():
        app.router.add_route(method, path, handler)
    return app


async def start_server(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Serve ``app``; returns the runner (call ``cleanup()`` to stop) and the port bound (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)
