"""The platform peer of the energy uplink: the eight interfaces over aiohttp, storing what it receives in SQLite.

Each request is checked against the profile and answered with table 3's codes: E2001 when a required item is
missing, E2002 when a value is malformed (or the body is not JSON, or the provinceId was never issued, EN-20),
E1002 when the database fails, E1001 for anything else that goes wrong inside, never a traceback. Values are kept
by (enterprise, dataCode, statType, statDate), so a resent batch replaces itself and is counted as received
again (EN-18). Faults are injected on purpose: return codes, slow answers (the client times out while the
platform still stores), and outages (the port closes and connections drop) - from Python, from the command line,
or at run time through ``POST /twin/faults``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from twin.energy.platform_store import PlatformStore
from twin.energy.spec import (
    BASE_DATA,
    CONFIG,
    CONFIG_DOWNLOAD,
    ENERGY,
    ENERGY_DOWNLOAD,
    METERING,
    REGISTER,
    SUCCESS,
    VERSION,
    EnergySpec,
    format_time,
    load_energy_spec,
)

log = logging.getLogger(__name__)


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    """An HTTPS context for the platform from a certificate and its key (PEM files), as 8.1 asks (EN-3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Refusal(Exception):
    """A request answered with a return code other than 0."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class FaultRule:
    operation: str  # an operation id or "*"
    code: str | None = None  # answer this return code instead
    slow_s: float = 0.0  # answer this late (the request is still stored)
    remaining: int = 1


@dataclass(slots=True)
class PlatformFaults:
    """Faults to inject: explicit rules first (consumed one by one), then random rates."""

    rules: list[FaultRule] = field(default_factory=list)
    error_rate: float = 0.0
    error_code: str = "E1001"
    slow_rate: float = 0.0
    slow_s: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(1))

    def add(self, operation: str = "*", *, code: str | None = None, slow_s: float = 0.0, count: int = 1) -> None:
        self.rules.append(FaultRule(operation, code, slow_s, count))

    def take(self, operation: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.operation in ("*", operation) and rule.remaining > 0:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return rule
        if self.error_rate and self.rng.random() < self.error_rate:
            return FaultRule(operation, code=self.error_code)
        if self.slow_rate and self.rng.random() < self.slow_rate:
            return FaultRule(operation, slow_s=self.slow_s)
        return None


class Platform:
    """One platform instance: ``await start()``, ``await outage(True/False)``, ``await stop()``."""

    def __init__(
        self,
        *,
        spec: EnergySpec | None = None,
        db: Path | str = ":memory:",
        faults: PlatformFaults | None = None,
        versions: tuple[str, str] = ("1", "1"),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.spec = spec or load_energy_spec()
        self.store = PlatformStore(db)
        self.faults = faults or PlatformFaults()
        self.reg_version, self.dic_version = versions
        self.calls: Counter[str] = Counter()
        self.down = False
        self.ssl_context = ssl_context
        self.host, self.port = "127.0.0.1", 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        #: called with one line per request answered (client, operation, return code, time); the CLI prints it
        self.on_event: Callable[[str], None] | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            REGISTER: self._register,
            BASE_DATA: self._base_data,
            VERSION: self._version,
            CONFIG: self._config,
            METERING: self._metering,
            ENERGY: self._energy,
            CONFIG_DOWNLOAD: self._config_download,
            ENERGY_DOWNLOAD: self._energy_download,
        }

    # -- life cycle ---------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        for op in self.spec.profile:
            app.router.add_post(op.path or "/", self._route(op.operation_id))
        for alias, op_id in self.spec.path_aliases.items():
            app.router.add_post(alias, self._route(op_id))
        app.router.add_post("/twin/faults", self._control)
        app.router.add_get("/twin/stats", self._stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        self.host = host
        await self._listen(port)
        return self.port

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, port, ssl_context=self.ssl_context)
        await self._site.start()
        self.port = int(self._site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def outage(self, down: bool) -> None:
        """Close the port and drop connections (down), or listen again on the same port."""
        if down and not self.down:
            self.down = True
            if self._site is not None:
                await self._site.stop()
                self._site = None
        elif not down and self.down:
            await self._listen(self.port)
            self.down = False

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    # -- requests ---------------------------------------------------------------------------------------
    def _route(self, op_id: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.down and request.transport is not None:
                request.transport.close()  # an outage: the connection drops without an answer
                return web.Response(status=503)
            self.calls[op_id] += 1
            started = time.monotonic()
            try:
                answer = await self._answer(op_id, request)
            except Refusal as exc:
                answer = {"responseCode": exc.code, "responseMessage": exc.message}
            except sqlite3.Error as exc:
                log.exception("energy platform: database error in %s", op_id)
                answer = {"responseCode": self.spec.code_named("database"), "responseMessage": f"数据库异常: {exc}"}
            except Exception as exc:  # the platform answers, whatever went wrong inside it
                log.exception("energy platform: %s failed", op_id)
                answer = {"responseCode": self.spec.code_named("service"), "responseMessage": f"平台服务异常: {exc}"}
            self.calls[f"{op_id} {answer['responseCode']}"] += 1
            if self.on_event is not None:
                ms = (time.monotonic() - started) * 1000
                self.on_event(f"{request.remote} {op_id}: {answer['responseCode']} ({ms:.0f} ms)")
            return web.Response(body=orjson.dumps(answer), content_type="application/json")

        return handle

    async def _answer(self, op_id: str, request: web.Request) -> dict[str, Any]:
        fault = self.faults.take(op_id)
        if fault is not None and fault.code is not None:
            raise Refusal(fault.code, f"injected: {self.spec.message(fault.code)}")
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Refusal(self.spec.code_named("format"), f"请求不是合法的JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Refusal(self.spec.code_named("format"), "请求必须是JSON对象")
        data, issues = self.spec.op(op_id).check_request(body)
        if issues:
            missing = [i for i in issues if i.message == "required field is missing"]
            code = self.spec.code_named("missing" if missing else "format")
            raise Refusal(code, "; ".join(map(str, issues)))
        if op_id != REGISTER and not self.store.registered(str(data["provinceId"])):
            raise Refusal(
                self.spec.code_named("format"), f"provinceId {data['provinceId']} was not issued by this platform"
            )
        answer = await self._handlers[op_id](data)
        if fault is not None and fault.slow_s:
            await asyncio.sleep(fault.slow_s)  # stored already: an answer that comes too late (EN-18)
        return {"responseCode": SUCCESS, "responseMessage": "RECEIVE SUCCESS", **answer}

    # -- the eight interfaces -------------------------------------------------------------------------------
    async def _register(self, data: dict[str, Any]) -> dict[str, Any]:
        province_id = secrets.token_hex(16)
        self.store.register(province_id, str(data["region"]), str(data["ascription"]))
        base = self.url
        return {"provinceId": province_id} | {
            field_name: f"{base}{self.spec.op(op).path}" for op, field_name in self.spec.url_fields.items()
        }

    async def _base_data(self, data: dict[str, Any]) -> dict[str, Any]:
        example = self.spec.op(BASE_DATA).response_examples["200"]["realistic"]
        return {"data": example["data"]}

    async def _version(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"regVersion": self.reg_version, "dicVersion": self.dic_version}

    async def _config(self, data: dict[str, Any]) -> dict[str, Any]:
        self.store.save_config(str(data["enterpriseCode"]), data, format_time(datetime.now()))
        return {}

    async def _metering(self, data: dict[str, Any]) -> dict[str, Any]:
        self.store.save_metering(str(data["enterpriseCode"]), data["meteringData"], format_time(datetime.now()))
        return {}

    async def _energy(self, data: dict[str, Any]) -> dict[str, Any]:
        self.store.save_values(str(data["enterpriseCode"]), data["data"])
        return {}

    async def _config_download(self, data: dict[str, Any]) -> dict[str, Any]:
        found = self.store.config(str(data["enterpriseCode"]))
        if found is None:
            raise Refusal(
                self.spec.code_named("format"), f"enterpriseCode {data['enterpriseCode']} has no configuration"
            )
        config, updated = found
        keep = ("collectItemConfig", "enterprise", "group", "process", "processUnit")
        return {"updatetime": updated, **{k: config[k] for k in keep if k in config}}

    async def _energy_download(self, data: dict[str, Any]) -> dict[str, Any]:
        day = str(data["statDate"])[:10]
        return {"data": self.store.day_values(str(data["enterpriseCode"]), int(data["statType"]), day)}

    # -- control --------------------------------------------------------------------------------------------
    async def _control(self, request: web.Request) -> web.Response:
        """Inject faults at run time: {"operation", "code", "slow_s", "count"} or {"outage_s": N}."""
        try:
            body = await request.json()
            if "outage_s" in body:
                asyncio.get_running_loop().call_soon(self._schedule_outage, float(body["outage_s"]))
            else:
                self.faults.add(
                    str(body.get("operation", "*")),
                    code=body.get("code"),
                    slow_s=float(body.get("slow_s", 0)),
                    count=int(body.get("count", 1)),
                )
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    def _schedule_outage(self, seconds: float) -> None:
        async def run() -> None:
            await self.outage(True)
            await asyncio.sleep(seconds)
            await self.outage(False)

        task = asyncio.get_running_loop().create_task(run())
        self._outage_task = task  # keep a reference until it ends

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def stats(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), **self.store.counts()}
