"""The equipment side of section 3: what each virtual host serves for the MES to call.

The spec has the MES call ``POST http://{equipment host}:6868/api/SendInterLock`` and ``/api/SendBatchSfc``.
So that the MES addresses equipment exactly as in the plant, each virtual equipment listens on its own
loopback address (127.0.1.x, port 6868 by default; Linux routes all of 127/8 to lo). Where that is not
possible (another OS, a port already taken), one listener serves them all and routes by ``EquipmentCode``.

Answers follow 3.1/3.2: 200 on success, 400 with ``{"Msg": ...}`` on failure. Requests are validated
against the profile's section-3 operations, in either casing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from twin.profile import Profile

log = logging.getLogger(__name__)

DEFAULT_PORT = 6868

#: Called with (equipment code, interlock code, message); returns an error text to refuse, or None.
InterlockHandler = Callable[[str, str, str], Awaitable[str | None]]
#: Called with (equipment code, batch barcode); returns an error text to refuse, or None.
BatchHandler = Callable[[str, str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one equipment's host listens."""

    equipment: str
    host: str
    port: int = DEFAULT_PORT


def loopback_endpoints(codes: list[str], *, prefix: str = "127.0.1.", port: int = DEFAULT_PORT) -> list[Endpoint]:
    """127.0.1.1, 127.0.1.2, ... in order; past .254 it carries into the third octet (127.0.2.1 ...)."""
    first, second, third = (int(p) for p in prefix.rstrip(".").split("."))
    out = []
    for i, code in enumerate(codes):
        third_octet, last = divmod(i, 254)
        out.append(Endpoint(code, f"{first}.{second}.{third + third_octet}.{last + 1}", port))
    return out


def _bad(msg: str) -> web.Response:
    return web.Response(status=400, body=orjson.dumps({"Msg": msg}), content_type="application/json")


class EquipmentServer:
    """Serves section 3 for a set of equipment, each on its own address, or one shared listener."""

    def __init__(
        self,
        profile: Profile,
        *,
        on_interlock: InterlockHandler,
        on_batch: BatchHandler,
    ) -> None:
        self.profile = profile
        self.on_interlock = on_interlock
        self.on_batch = on_batch
        self._runner: web.AppRunner | None = None
        self.bound: dict[str, str] = {}  # equipment code -> base URL actually listening
        self._by_address: dict[tuple[str, int], str] = {}

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/SendInterLock", self._interlock)
        app.router.add_post("/api/SendBatchSfc", self._batch)
        return app

    async def _read(self, request: web.Request, ref: str) -> tuple[dict | None, web.Response | None]:
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return None, _bad(f"body is not JSON: {exc}")
        data, issues = self.profile.operation(ref).check_request(payload)
        if issues:
            return None, _bad("; ".join(str(i) for i in issues))
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        addressed = self._by_address.get((sock[0], sock[1])) if sock else None
        code = data["EquipmentCode"]
        if code not in self.bound:
            return None, _bad(f"EquipmentCode {code} is not served here")
        if addressed is not None and addressed != code:
            return None, _bad(f"this host is {addressed}, not {code}")
        return data, None

    async def _interlock(self, request: web.Request) -> web.Response:
        data, error = await self._read(request, "SendInterLock")
        if error is not None:
            return error
        assert data is not None
        refusal = await self.on_interlock(data["EquipmentCode"], data["InterlockCode"], data["InterlockMessage"])
        return _bad(refusal) if refusal else web.Response(status=200)

    async def _batch(self, request: web.Request) -> web.Response:
        data, error = await self._read(request, "SendBatchSfc")
        if error is not None:
            return error
        assert data is not None
        refusal = await self.on_batch(data["EquipmentCode"], data["BatchSfc"])
        return _bad(refusal) if refusal else web.Response(status=200)

    async def start(self, endpoints: list[Endpoint], *, fallback_host: str = "127.0.0.1") -> Mapping[str, str]:
        """Listen for every endpoint; where an address cannot be bound, route through one shared listener.

        Returns equipment code -> base URL (``http://127.0.1.3:6868``) that the MES's registry should use.
        """
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        shared: str | None = None
        for ep in endpoints:
            try:
                site = web.TCPSite(self._runner, ep.host, ep.port, reuse_address=True)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self._by_address[(ep.host, port)] = ep.equipment
                self.bound[ep.equipment] = f"http://{ep.host}:{port}"
            except OSError as exc:
                if shared is None:
                    site = web.TCPSite(self._runner, fallback_host, 0)
                    await site.start()
                    shared = f"http://{fallback_host}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
                    log.warning(
                        "cannot listen on %s:%s (%s); routing by EquipmentCode on %s",
                        ep.host,
                        ep.port,
                        exc.strerror,
                        shared,
                    )
                self.bound[ep.equipment] = shared
        return dict(self.bound)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
