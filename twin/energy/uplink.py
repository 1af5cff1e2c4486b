"""The plant's energy uplink: samples in, 15-minute and daily values out, as section 8 of seed 003 asks.

``record(at, data_code, kwh)`` is the plain API the line's equipment (or any meter feed) calls; ``tick(now)``
does whatever is due at virtual time ``now``: register first (8.3) and fetch the base data (8.4), check the
platform version at least daily (8.5), upload the enterprise and its meters (8.6, 8.7) whenever they change,
and at every upload time close the finished periods into batches and send them (8.8). A batch is tried once
and resent up to 3 times on a timeout or a failure; then it stays queued (durably, in ``UplinkStore``) and is
sent first at the next upload, until acknowledged. E2001/E2002 are not resent (EN-17).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from twin.energy.site import DAILY, REALTIME, Site
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
from twin.energy.store import Key, UplinkStore
from twin.errors import ConfigError, TwinError
from twin.metrics import Exchange, LatencyBook
from twin.metrics.exchange import NO_ANSWER

log = logging.getLogger(__name__)
_EPOCH = datetime(2000, 1, 1)


class UplinkCallFailed(TwinError):
    """One call to the platform failed; ``retry`` says whether resending can help (EN-17)."""

    def __init__(self, operation: str, outcome: str, detail: str, *, retry: bool, reregister: bool = False) -> None:
        super().__init__(f"{operation}: {outcome}: {detail}")
        self.operation = operation
        self.outcome = outcome
        self.detail = detail
        self.retry = retry
        self.reregister = reregister


@dataclass(slots=True)
class UplinkConfig:
    register_url: str
    timeout_s: float = 30.0
    retries: int | None = None  # resends after the first try [profile: 3]
    retry_pause_s: float = 1.0
    upload_every_s: float = 86400.0
    upload_offset_s: float = 1800.0
    version_check_s: float | None = None  # [profile: daily]
    close_grace_s: float = 60.0  # a period is closed this long after it ends (late samples still count)
    duty_retry_s: float = 300.0  # after a failed register/version check/enterprise upload, wait this long (virtual)
    max_batch_values: int = 5000
    region: str | None = None
    ca_file: str | None = None  # trust this CA (PEM) for an HTTPS platform, besides the system's (EN-3)


@dataclass(slots=True)
class UplinkEvent:
    at: str
    operation: str
    outcome: str  # ok | E1001... | timeout | unavailable | http NNN | invalid answer | queued | rejected
    detail: str = ""
    batch_id: int | None = None
    values: int = 0
    attempt: int = 0
    ms: float = 0.0


@dataclass(slots=True)
class UplinkStats:
    calls: Counter[str] = field(default_factory=Counter)
    batches_acked: int = 0
    values_acked: int = 0
    resends: int = 0
    queued_after_retries: int = 0
    rejected: int = 0


class EnergyUplink:
    def __init__(
        self,
        site: Site,
        store: UplinkStore,
        config: UplinkConfig,
        *,
        spec: EnergySpec | None = None,
        on_event: Callable[[UplinkEvent], None] | None = None,
    ) -> None:
        self.site = site
        self.store = store
        self.config = config
        self.spec = spec or load_energy_spec()
        self.retries = self.spec.retries if config.retries is None else config.retries
        self.version_check_s = config.version_check_s or self.spec.version_check_s
        self.latency = LatencyBook()
        self.stats = UplinkStats()
        self.events: deque[UplinkEvent] = deque(maxlen=2000)
        self.on_event = on_event
        self._pending: dict[Key, list[Any]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._next_upload: datetime | None = None
        self._quiet_until: datetime | None = None
        self._codes = {p.code for p in site.points}

    # -- samples ------------------------------------------------------------------------------------------
    def record(self, at: datetime, data_code: str, kwh: float) -> None:
        """kWh consumed by ``data_code`` in a short period starting at ``at`` (plant local time, EN-15).

        The period must not cross a quarter hour; its kWh count in the quarter hour and the day that hold ``at``,
        for the code and for the plant total.
        """
        if data_code not in self._codes:
            raise ConfigError(f"data code {data_code!r} is not one of the site's {len(self._codes)} codes")
        if kwh < 0:
            raise ConfigError(f"a sample must be >= 0 kWh, got {kwh} for {data_code}")
        quarter = _floor(at, self.spec.realtime_s)
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        for code in (data_code, *self.site.parents(data_code)):
            for stat_type, start, end in (
                (REALTIME, quarter, quarter + timedelta(seconds=self.spec.realtime_s)),
                (DAILY, day, day + timedelta(days=1)),
            ):
                key = (code, stat_type, format_time(start))
                slot = self._pending.get(key)
                if slot is None:
                    self._pending[key] = [format_time(end), kwh]
                else:
                    slot[1] += kwh

    def flush_samples(self) -> None:
        """Write the samples recorded so far into the durable buckets."""
        if self._pending:
            pending, self._pending = self._pending, {}
            late = self.store.add((key, end, kwh) for key, (end, kwh) in pending.items())
            if late:
                log.warning("energy uplink: %d sample(s) arrived after their period was closed and uploaded", late)

    # -- what is due ---------------------------------------------------------------------------------------------
    async def tick(self, now: datetime) -> None:
        """Do what is due at ``now``: register, version check, enterprise upload, and the data upload."""
        self.flush_samples()
        self.store.close_until(format_time(now - timedelta(seconds=self.config.close_grace_s)))
        if self._quiet_until is None or now >= self._quiet_until:
            self._quiet_until = None if await self._duties(now) else now + timedelta(seconds=self.config.duty_retry_s)
        if self.store.get("provinceId") is None:
            return
        if self._next_upload is None:
            self._next_upload = _next_slot(now, self.config.upload_every_s, self.config.upload_offset_s)
        if now >= self._next_upload:
            self._next_upload = _next_slot(now, self.config.upload_every_s, self.config.upload_offset_s)
            await self.upload(now)

    async def upload(self, now: datetime, *, grace_s: float | None = None) -> bool:
        """Close what has ended, batch it, and send every queued batch in order; True when none is left queued."""
        self.flush_samples()
        grace = self.config.close_grace_s if grace_s is None else grace_s
        self.store.close_until(format_time(now - timedelta(seconds=grace)))
        if self.store.get("provinceId") is None and not await self._ensure_registered(now):
            return False
        self.store.make_batches(format_time(now), self.config.max_batch_values)
        for batch_id in self.store.queued():
            if not await self._send_batch(batch_id, now):
                return False  # the platform is failing: the rest wait for the next upload, in order
        return True

    async def finish(self, now: datetime) -> bool:
        """At the end of a run: close what has ended by ``now`` (no grace, no sample can come) and upload it."""
        return await self.upload(now, grace_s=0.0)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- register, versions, enterprise ---------------------------------------------------------------------------
    async def _duties(self, now: datetime) -> bool:
        """Register, check the versions when due, upload the enterprise when it changed; False if a call failed."""
        if not await self._ensure_registered(now):
            return False
        last_check = self.store.get("version_checked_at")
        if last_check is None or now - datetime.fromisoformat(last_check) >= timedelta(seconds=self.version_check_s):
            if not await self._version_check(now):
                return False
            if self.store.get("provinceId") is None:  # a new registration version: register again now
                return await self._duties(now)
        if self.store.get("config_hash") != self._config_hash():
            return await self._upload_config(now)
        return True

    async def _ensure_registered(self, now: datetime) -> bool:
        if self.store.get("provinceId") is not None:
            return True
        body = {"region": self.config.region or self.site.region, "ascription": "province"}
        try:
            answer = await self._call(REGISTER, self.config.register_url, body, now)
        except UplinkCallFailed:
            return False
        scheme = urlsplit(self.config.register_url).scheme or "https"
        urls = {op: _absolute(str(answer.get(fld, "")), scheme) for op, fld in self.spec.url_fields.items()}
        self.store.put("provinceId", str(answer["provinceId"]))
        self.store.put("urls", json.dumps(urls))
        self.store.forget("config_hash", "version_checked_at")
        # The dictionary is optional for uploading (8.2 a); it is fetched again on a new dicVersion.
        with contextlib.suppress(UplinkCallFailed):
            await self._call(BASE_DATA, urls[BASE_DATA], {"provinceId": answer["provinceId"]}, now)
        return True

    async def _version_check(self, now: datetime) -> bool:
        try:
            answer = await self._call(VERSION, self._url(VERSION), {"provinceId": self.store.get("provinceId")}, now)
        except UplinkCallFailed:
            return False
        self.store.put("version_checked_at", now.isoformat())
        reg, dic = str(answer.get("regVersion", "")), str(answer.get("dicVersion", ""))
        known_reg, known_dic = self.store.get("regVersion"), self.store.get("dicVersion")
        self.store.put("regVersion", reg)
        self.store.put("dicVersion", dic)
        if known_reg is not None and reg != known_reg:
            self._event(now, VERSION, "ok", f"registration version {known_reg} -> {reg}: registering again")
            self.store.forget("provinceId")
        elif known_dic is not None and dic != known_dic:
            self._event(now, VERSION, "ok", f"dictionary version {known_dic} -> {dic}: downloading the base data")
            with contextlib.suppress(UplinkCallFailed):
                await self._call(BASE_DATA, self._url(BASE_DATA), {"provinceId": self.store.get("provinceId")}, now)
        return True

    def _config_hash(self) -> str:
        payload = [self.site.enterprise, self.site.collect_item_config(), [p.code for p in self.site.points]]
        return hashlib.sha256(orjson.dumps(payload)).hexdigest()[:16]

    async def _upload_config(self, now: datetime) -> bool:
        pid, ent = self.store.get("provinceId"), self.site.enterprise_code
        config_body = {
            "provinceId": pid,
            "enterpriseCode": ent,
            "collectItemConfig": self.site.collect_item_config(),
            "enterprise": self.site.enterprise,
            "process": self.site.process_list(),
            "processUnit": self.site.process_units(),
        }
        metering_body = {
            "provinceId": pid,
            "enterpriseCode": ent,
            "meteringData": self.site.metering_data(installed=now.strftime("%Y-%m-%d")),
        }
        for op, body in ((CONFIG, config_body), (METERING, metering_body)):
            if not await self._with_retries(op, body, now):
                return False
        self.store.put("config_hash", self._config_hash())
        return True

    # -- the data upload ---------------------------------------------------------------------------------------------
    async def _send_batch(self, batch_id: int, now: datetime) -> bool:
        values = self.store.values(batch_id)
        uploaded = format_time(now)
        body = {
            "provinceId": self.store.get("provinceId"),
            "enterpriseCode": self.site.enterprise_code,
            "data": [
                {
                    "dataCode": v.data_code,
                    "dataValue": round(v.value, 3),
                    "inputType": self.site.input_type,
                    "statType": v.stat_type,
                    "statDate": v.stat_date,
                    "uploadDate": uploaded,
                    "scope": self.site.point(v.data_code).scope,
                    "valid": True,
                }
                for v in values
            ],
        }
        outcome = await self._with_retries(ENERGY, body, now, batch_id=batch_id, values=len(values))
        if outcome:
            self.store.settle(batch_id, "acked", uploaded)
            self.stats.batches_acked += 1
            self.stats.values_acked += len(values)
            return True
        return False

    async def _with_retries(
        self, op: str, body: dict[str, Any], now: datetime, *, batch_id: int | None = None, values: int = 0
    ) -> bool:
        """One try and up to ``retries`` resends; a batch that still fails stays queued (8.8), one refused as
        malformed (E2001/E2002) is set aside (EN-17)."""
        last = ""
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self.stats.resends += 1
                await asyncio.sleep(self.config.retry_pause_s)
            try:
                await self._call(op, self._url(op), body, now, batch_id=batch_id, values=values, attempt=attempt)
                return True
            except UplinkCallFailed as exc:
                last = f"{exc.outcome}: {exc.detail}"
                if batch_id is not None:
                    self.store.attempt(batch_id, last)
                if exc.reregister:  # not the batch's fault: it goes again once registered (EN-20)
                    self._next_upload = now
                    break
                if not exc.retry:
                    if batch_id is not None:
                        self.store.settle(batch_id, "rejected", format_time(now), last)
                        self.stats.rejected += 1
                        self._event(now, op, "rejected", last, batch_id=batch_id, values=values)
                    return False
        if batch_id is not None:
            self.stats.queued_after_retries += 1
            self._event(
                now,
                op,
                "queued",
                f"{last}; kept queued, sent again at the next upload",
                batch_id=batch_id,
                values=values,
            )
        return False

    # -- one call -----------------------------------------------------------------------------------------------------
    def _url(self, op: str) -> str:
        urls = json.loads(self.store.get("urls") or "{}")
        if not urls.get(op):
            raise UplinkCallFailed(op, "no URL", "register returned no address for it", retry=False)
        return str(urls[op])

    async def _call(self, op: str, url: str, body: dict[str, Any], now: datetime, **event: Any) -> dict[str, Any]:
        """POST one request; returns the answer when responseCode is 0, raises ``UplinkCallFailed`` otherwise."""
        operation = self.spec.op(op)
        operation.validate_request(body)  # the uplink never sends what its own profile forbids
        data = orjson.dumps(body)
        session = self._session or await self._open()
        sent = time.time()
        ex = Exchange(
            op,
            self.site.enterprise_code,
            (now - _EPOCH).total_seconds(),
            sent,
            sent,
            sent,
            NO_ANSWER,
            None,
            len(data),
            0,
        )
        outcome, detail, answer = "ok", "", None
        try:
            async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
                raw = await resp.read()
                ex.status, ex.bytes_in = resp.status, len(raw)
            answer, outcome, detail = self._judge(operation, resp.status, raw)
        except TimeoutError:
            outcome, detail, ex.error = "timeout", f"no answer within {self.config.timeout_s:g} s", "timeout"
        except aiohttp.ClientError as exc:
            outcome, detail, ex.error = "unavailable", f"{type(exc).__name__}: {exc}", type(exc).__name__
        ex.answered_wall = time.time()
        if answer is not None and "responseCode" in answer:
            ex.code = int(str(answer["responseCode"]).lstrip("E") or 0)
        self.latency.record(ex, success=outcome == "ok")
        self.stats.calls[f"{op} {outcome}"] += 1
        self._event(now, op, outcome, detail, ms=(ex.answered_wall - sent) * 1000, **event)
        if outcome != "ok":
            retry = self.spec.codes[outcome].retry if outcome in self.spec.codes else True
            unknown = op != REGISTER and outcome == self.spec.code_named("format") and "provinceid" in detail.lower()
            if unknown:
                self.store.forget("provinceId")  # the platform does not know us (any more): register again (EN-20)
            raise UplinkCallFailed(op, outcome, detail, retry=retry, reregister=unknown)
        assert answer is not None
        return answer

    def _judge(self, operation: Any, status: int, raw: bytes) -> tuple[dict[str, Any] | None, str, str]:
        if status != 200:
            return None, f"http {status}", raw[:200].decode("utf-8", "replace")
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return None, "invalid answer", f"not JSON: {exc}"
        _, issues = operation.check_response(answer)
        if issues:
            return None, "invalid answer", "; ".join(map(str, issues))
        code = str(answer["responseCode"])
        if code != SUCCESS:
            return answer, code, str(answer.get("responseMessage") or self.spec.message(code))
        return answer, "ok", ""

    async def _open(self) -> aiohttp.ClientSession:
        connector = None
        if self.config.ca_file:
            connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=self.config.ca_file))
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session

    def _event(self, now: datetime, op: str, outcome: str, detail: str = "", **kw: Any) -> None:
        event = UplinkEvent(format_time(now), op, outcome, detail, **kw)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- the optional downloads (8.9, 8.10) --------------------------------------------------------------------------
    async def download_config(self, now: datetime) -> dict[str, Any]:
        body = {"provinceId": self.store.get("provinceId"), "enterpriseCode": self.site.enterprise_code}
        return await self._call(CONFIG_DOWNLOAD, self._url(CONFIG_DOWNLOAD), body, now)

    async def download_energy(self, now: datetime, stat_type: int, day: str) -> list[dict[str, Any]]:
        body = {
            "provinceId": self.store.get("provinceId"),
            "enterpriseCode": self.site.enterprise_code,
            "statType": stat_type,
            "statDate": day,
        }
        return list((await self._call(ENERGY_DOWNLOAD, self._url(ENERGY_DOWNLOAD), body, now)).get("data") or [])


def _floor(at: datetime, period_s: int) -> datetime:
    seconds = int((at - _EPOCH).total_seconds()) // period_s * period_s
    return _EPOCH + timedelta(seconds=seconds)


def _next_slot(now: datetime, every_s: float, offset_s: float) -> datetime:
    """The first upload time after ``now``: multiples of ``every_s`` past midnight (2000-01-01), plus the offset."""
    if every_s <= 0:
        raise ConfigError(f"the upload period must be > 0 s, got {every_s}")
    offset = offset_s % every_s
    since = (now - _EPOCH).total_seconds() - offset
    return _EPOCH + timedelta(seconds=(since // every_s + 1) * every_s + offset)


def _absolute(url: str, scheme: str) -> str:
    """A service address as register returned it, with the register URL's scheme when it has none (EN-4)."""
    return url if "://" in url or not url else f"{scheme}://{url}"
