"""The validating host proxy: sits between real host PCs and the MES, forwards, records and checks.

Host -> MES (section 2): every request is forwarded to the upstream MES as it came (body, Authorization,
Content-Type) and the MES's answer returned as it came; in between, the request is matched to its operation
and checked against the profile, the answer too, and the exchange is recorded twice: in the run folder's
exchange log (times and sizes, for the latency figures of ``twin.metrics``) and in the journal (payloads, for
the conformance rules, which also run live and log each violation as it happens).

MES -> host (section 3): the proxy also listens for ``/api/SendInterLock`` and ``/api/SendBatchSfc`` and
forwards each to the host named by its ``EquipmentCode``: the host map says where each host's 6868 listener
is; a host not in the map is reached at the address it calls from, port 6868 (spec 1.5.6: hosts have fixed
addresses). A host that cannot be reached is retried with back-off (connection refused only: a timed-out call
may have been acted on), then reported to the MES as 502/504 and recorded.

If the MES cannot be reached the host gets 502 with ``{"code": 502, "msg": "twin proxy: ..."}``: the proxy
never makes up a business answer, so the host's offline handling (1.5.8) is what gets exercised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web

from twin.errors import ConfigError, UnknownOperation
from twin.hil.conformance import Conformance
from twin.hil.events import Backoff
from twin.hil.journal import HOST_TO_MES, JOURNAL, MES_TO_HOST, JournalWriter, Recorded, digest, redact
from twin.hil.rules import Settings, Violation
from twin.metrics import ExchangeLog, LatencyBook
from twin.metrics.exchange import NO_ANSWER, Exchange
from twin.metrics.log import LOG_NAME
from twin.metrics.runfolder import write_json
from twin.profile import Operation, Profile
from twin.transport.pool import HttpError, HttpPool

log = logging.getLogger(__name__)

SECTION3_PATHS = ("/api/SendInterLock", "/api/SendBatchSfc")
FORWARDED_HEADERS = ("Authorization", "Content-Type")
MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    upstream: str
    record_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    section3_host: str | None = None
    section3_port: int | None = None
    host_map: dict[str, str] = field(default_factory=dict)
    host_port: int = 6868
    upstream_timeout_s: float = 10.0
    host_timeout_s: float = 5.0
    host_attempts: int = 3
    host_backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.2, factor=2.0, max_s=2.0, jitter=0.0))
    settings: Settings | None = None
    processes: dict[str, str] = field(default_factory=dict)


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def _field(payload: Any, name: str) -> Any:
    if not isinstance(payload, dict):
        return None
    return next((v for k, v in payload.items() if str(k).lower() == name), None)


class HostProxy:
    """One proxy: a listener for hosts (and the MES's section-3 calls), a client to the MES and to hosts."""

    def __init__(
        self,
        profile: Profile,
        config: ProxyConfig,
        *,
        on_violation: Callable[[Violation], None] | None = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.on_violation = on_violation
        self.conformance = Conformance(profile, settings=config.settings, processes=config.processes)
        self.settings = self.conformance.ctx.settings
        login = self.conformance.ctx.behaviour["login"]
        self._login_op = self.conformance.ctx.op_id(login["section"])
        self._redact = {"password_field": login["password"], "token_field": login["token"]}
        self._upstream = config.upstream.rstrip("/")
        self.peers: dict[str, str] = {}
        self.url = ""
        self.section3_url = ""
        self.violations: list[Violation] = []
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None  # section 3: the MES's calls to the hosts
        self._pool: HttpPool | None = None  # the hosts' calls to the MES: the twin's one host-to-MES client
        self._log: ExchangeLog | None = None
        self.book = LatencyBook()
        self.started = 0.0
        self._journal: JournalWriter | None = None

    @property
    def upstream(self) -> str:
        return self._upstream

    @upstream.setter
    def upstream(self, url: str) -> None:
        """Point at another MES (the embedded one, once it listens); the recording's settings follow."""
        self._upstream = url.rstrip("/")
        if self._pool is not None:  # calls in flight finish on the old pool; its idle connections close now
            self._pool.close_idle()
            self._pool = None  # the next call opens one to the new MES
        if self._journal is not None:
            write_json(self.config.record_dir / "settings.json", self._settings_record())

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> str:
        cfg = self.config
        cfg.record_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self._log = ExchangeLog(cfg.record_dir / LOG_NAME)  # exchanges.parquet, as a run folder has
        self._journal = JournalWriter(cfg.record_dir / JOURNAL)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self.url = await self._listen(self._app(with_hosts=True), cfg.listen_host, cfg.listen_port)
        self.section3_url = self.url
        if cfg.section3_port is not None:
            host = cfg.section3_host or cfg.listen_host
            self.section3_url = await self._listen(self._app(with_hosts=False), host, cfg.section3_port)
        write_json(cfg.record_dir / "settings.json", self._settings_record())
        log.info("proxy listening on %s -> %s; section 3 on %s", self.url, self.upstream, self.section3_url)
        return self.url

    async def _listen(self, app: web.Application, host: str, port: int) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runners.append(runner)
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        return f"http://{host}:{bound[1]}"

    def _app(self, *, with_hosts: bool) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        for path in SECTION3_PATHS:
            app.router.add_post(path, self._from_mes)
        if with_hosts:
            app.router.add_route("*", "/{tail:.*}", self._from_host)
        return app

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        for violation in self.conformance.finish():
            self._report(violation)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._log is not None:
            self._log.close()
            self._log = None
            self._write_summary()

    def _write_summary(self) -> None:
        """Counts only: percentiles come from ``histograms.json`` (HDR, exact) when a report asks for them,
        because computing them here would hold the event loop for seconds on a long recording."""
        record_dir = self.config.record_dir
        write_json(record_dir / "histograms.json", self.book.encode())
        per_op = {op: {"count": s.count, "failures": s.failures} for op, s in sorted(self.book.interfaces.items())}
        write_json(
            record_dir / "summary.json",
            {
                "state": "finished",
                "started": self.started,
                "wall_s": time.time() - self.started,
                "exchanges": sum(s.count for s in self.book.interfaces.values()),
                "conformance_violations": len(self.violations),
                "interfaces": per_op,
            },
        )

    async def __aenter__(self) -> HostProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _settings_record(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "kind": "proxy",
            "listening": {"hosts": self.url, "section3": self.section3_url},
            "profile": self.profile.name,
            "upstream": self.upstream,
            "listen": f"{cfg.listen_host}:{cfg.listen_port}",
            "host_map": cfg.host_map,
            "rules": {k: getattr(self.settings, k) for k in Settings.__dataclass_fields__},
            "processes": cfg.processes,
        }

    # -- recording -------------------------------------------------------------------------------------
    def _record(self, rec: Recorded, request_bytes: int, answer_bytes: int) -> None:
        assert self._journal is not None and self._log is not None
        if rec.operation == self._login_op:
            rec.request, rec.response = redact(rec.request, rec.response, **self._redact)
        self._journal.append(rec)
        ok = rec.status == 200 and (rec.direction == MES_TO_HOST or rec.code == 0)
        ex = Exchange(
            rec.operation or rec.path,
            rec.host,
            0.0,
            rec.received,
            rec.forwarded,
            rec.answered,
            rec.status or NO_ANSWER,
            rec.code,
            request_bytes,
            answer_bytes,
            rec.error,
        )
        self._log.append(ex)
        self.book.record(ex, success=ok)
        for violation in self.conformance.feed(rec):
            self._report(violation)

    def _report(self, violation: Violation) -> None:
        self.violations.append(violation)
        if self.on_violation is not None:  # the caller shows it (twin proxy prints VIOLATION ...): once
            self.on_violation(violation)
        else:
            log.warning("%s breaks %s: %s", violation.host, violation.rule, violation.message)

    def _resolve(self, path: str, payload: Any, method: str) -> tuple[Operation | None, list[str]]:
        try:
            op, _data, issues = self.profile.match(path, payload if payload is not None else {}, method)
        except UnknownOperation:
            return None, []
        return op, [str(i) for i in issues]

    # -- host -> MES ---------------------------------------------------------------------------------
    async def _from_host(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None and self._journal is not None
        received = time.time()
        body = await request.read()
        payload = _json(body)
        op, issues = self._resolve(request.path, payload, request.method)
        if isinstance(payload, str):
            issues = ["body is not JSON", *issues]
        equipment = str(_field(payload, "equipmentcode") or "")
        peer = request.remote or ""
        if equipment and peer:
            self.peers[equipment] = peer
        headers = "".join(f"{h}: {request.headers[h]}\r\n" for h in FORWARDED_HEADERS if h in request.headers)
        forwarded = time.time()
        status, raw, error, ctype = await self._to_mes(request.method, request.path_qs, body, headers.encode())
        answered = time.time()
        answer = _json(raw)
        code = _field(answer, "code")
        answer_issues = [str(i) for i in op.check_response(answer, status)[1]] if op and status and answer else []
        rec = Recorded(
            self._journal.next_seq(),
            HOST_TO_MES,
            request.path,
            op.operation_id if op else "",
            (op.section or "") if op else "",
            equipment,
            peer,
            received,
            forwarded,
            answered,
            status,
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            payload,
            answer,
            issues,
            answer_issues,
            error,
            digest(request.headers.get("Authorization")),
        )
        self._record(rec, len(body), len(raw))
        if status == NO_ANSWER:
            return web.json_response({"code": 502, "msg": f"twin proxy: MES {error}"}, status=502)
        return web.Response(body=raw, status=status, headers={"Content-Type": ctype})

    async def _to_mes(self, method: str, target: str, body: bytes, headers: bytes) -> tuple[int, bytes, str, str]:
        """(status, body, error, content type) of the MES's answer; status 0 and an error text when none came."""
        if self._pool is None:
            self._pool = HttpPool(self._upstream, timeout_s=self.config.upstream_timeout_s, keep_headers=True)
        try:
            status, raw, answer_headers = await self._pool.request(method, target, body, headers)
        except HttpError as exc:
            if exc.kind == "timeout":
                return NO_ANSWER, b"", f"timeout after {self.config.upstream_timeout_s:g} s", ""
            if exc.kind == "refused":
                return NO_ANSWER, b"", f"unreachable: {exc}", ""
            return NO_ANSWER, b"", f"failed: {exc}", ""
        ctype = next((v for k, v in answer_headers if k.lower() == b"content-type"), b"application/json")
        return status, raw, "", ctype.decode("latin-1")

    async def _forward(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bytes, str, str]:
        """(status, body, error, content type); status 0 and an error text when there was no answer."""
        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                raw = await resp.read()
                return resp.status, raw, "", resp.headers.get("Content-Type", "application/json")
        except TimeoutError:
            return NO_ANSWER, b"", f"timeout after {timeout_s:g} s", ""
        except aiohttp.ClientConnectionError as exc:
            return NO_ANSWER, b"", f"unreachable: {exc}", ""
        except aiohttp.ClientError as exc:
            return NO_ANSWER, b"", f"failed: {type(exc).__name__}: {exc}", ""

    # -- MES -> host (section 3) ---------------------------------------------------------------------
    def host_url(self, equipment: str) -> str | None:
        """Where an equipment's host listens: the host map, else the address it calls from."""
        if equipment in self.config.host_map:
            return self.config.host_map[equipment].rstrip("/")
        peer = self.peers.get(equipment)
        return f"http://{peer}:{self.config.host_port}" if peer else None

    async def _from_mes(self, request: web.Request) -> web.StreamResponse:
        assert self._journal is not None
        received = time.time()
        body = await request.read()
        payload = _json(body)
        op, issues = self._resolve(request.path, payload, "post")
        equipment = str(_field(payload, "equipmentcode") or "")
        target = self.host_url(equipment) if equipment else None
        forwarded = time.time()
        attempts, status, raw, error, ctype = 0, NO_ANSWER, b"", "", ""
        if target is None:
            code = equipment or "CODE"
            error = f"no host known for EquipmentCode {equipment or '(none)'}: give --host-map {code}=URL"
        while target is not None and attempts < self.config.host_attempts:
            attempts += 1
            headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
            status, raw, error, ctype = await self._forward(
                "POST", target + request.path, body, headers, self.config.host_timeout_s
            )
            if status != NO_ANSWER or not error.startswith("unreachable") or attempts >= self.config.host_attempts:
                break
            delay = self.config.host_backoff.delay(attempts)
            log.warning("host %s at %s %s; retry %d in %.2f s", equipment, target, error, attempts, delay)
            await asyncio.sleep(delay)
        answered = time.time()
        answer = _json(raw)
        checked = op is not None and status == 400 and answer
        answer_issues = [str(i) for i in op.check_response(answer, status)[1]] if checked and op else []
        rec = Recorded(
            self._journal.next_seq(),
            MES_TO_HOST,
            request.path,
            op.operation_id if op else "",
            (op.section or "") if op else "",
            equipment,
            self.peers.get(equipment, ""),
            received,
            forwarded,
            answered,
            status,
            None,
            payload,
            answer,
            issues,
            answer_issues,
            error,
            "",
            max(attempts, 1),
        )
        self._record(rec, len(body), len(raw))
        if target is None:
            return web.json_response({"Msg": f"twin proxy: {error}"}, status=400)
        if status == NO_ANSWER:
            gateway = 504 if error.startswith("timeout") else 502
            return web.json_response({"Msg": f"twin proxy: host {equipment} {error}"}, status=gateway)
        return web.Response(body=raw, status=status, headers={"Content-Type": ctype or "application/json"})


def parse_host_map(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``CODE=URL`` items, or files (YAML or JSON: a mapping code -> URL); a URL may omit ``http://``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" in item and not Path(item).is_file():
            code, url = (p.strip() for p in item.split("=", 1))
            entries: dict[str, Any] = {code: url}
        else:
            path = Path(item)
            try:
                entries = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"--host-map {item}: not CODE=URL and not a readable YAML/JSON file ({exc})") from exc
            if not isinstance(entries, dict):
                raise ConfigError(f"--host-map {item}: expected a mapping of EquipmentCode to URL")
        for code, url in entries.items():
            if not code or not url:
                raise ConfigError(f"--host-map {item}: empty equipment code or URL")
            url = str(url)
            out[str(code)] = url if "://" in url else f"http://{url}"
    return out
