"""One equipment's session with the MES, as the twin plays the host PC of a station whose PLC is real.

The host side of sections 1.5 and 2 that a PLC cannot do itself: log in and keep the token (2.1), send each
call with it, and, when the MES cannot be reached, report it and try again with back-off instead of failing
(1.5.8: a host keeps what it owes and sends it when the MES is back). A business refusal (code other than 0)
is an answer, not an outage: it is returned to the caller, who decides (the MES's word is final).
Every exchange is kept (the latest ``KEPT``) so a run and a test can say what the station told the MES.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from twin.errors import MesRefused, MesUnavailable
from twin.hil.events import Backoff
from twin.profile import Profile
from twin.profile.casing import lower_keys

log = logging.getLogger(__name__)

KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Sent:
    """One call and the MES's answer (``status`` 0 and ``error`` when there was none)."""

    operation: str
    section: str
    request: dict[str, Any]
    at: float
    elapsed_s: float
    status: int = 0
    code: int | None = None
    msg: str = ""
    data: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code == 0

    def describe(self) -> str:
        if self.error:
            return f"{self.section} {self.operation}: no answer ({self.error})"
        outcome = "ok" if self.ok else f"refused {self.code}: {self.msg}"
        return f"{self.section} {self.operation}: {outcome} ({self.elapsed_s * 1000:.0f} ms)"


def _lower(payload: Any) -> dict[str, Any]:
    return lower_keys(payload) if isinstance(payload, dict) else {}


@dataclass(slots=True, kw_only=True)
class SessionConfig:
    mes_url: str
    equipment: str
    user: str = "op1001"
    password: str = "pa55word"  # the embedded MES's seed account (lines/*.yaml operator)
    timeout_s: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, factor=2.0, max_s=30.0))

    @property
    def resource(self) -> str:
        return f"R-{self.equipment}"


class MesSession:
    """Calls of one equipment to the MES, with its token; ``call`` once, ``deliver`` until answered."""

    def __init__(
        self,
        profile: Profile,
        config: SessionConfig,
        *,
        on_exchange: Callable[[Sent], None] | None = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.token = ""
        self.sent: deque[Sent] = deque(maxlen=KEPT)
        self.outages = 0
        self.on_exchange = on_exchange
        self._http: aiohttp.ClientSession | None = None
        self._login_op = profile.operation("OperatorLogin")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        return self._http

    async def call(self, ref: str, values: dict[str, Any] | None = None) -> Sent:
        """One attempt; ``MesUnavailable`` when there is no answer (no connection, timeout, 5xx)."""
        op = self.profile.operation(ref)
        cfg = self.config
        context = {"now": datetime.now(UTC), "equipment_code": cfg.equipment, "resource_code": cfg.resource}
        body = self.profile.build_request(op, values or {}, context=context)
        headers = {"Content-Type": "application/json"}
        if self.token and op.needs_auth:
            headers["Authorization"] = self.token
        started, t0 = time.time(), time.monotonic()
        try:
            async with self._session().post(
                cfg.mes_url.rstrip("/") + op.path, data=orjson.dumps(body), headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            sent = Sent(op.operation_id, op.section or "", body, started, time.monotonic() - t0, error=_why(exc))
            self._keep(sent)
            raise MesUnavailable(f"{cfg.equipment}: {sent.describe()}") from exc
        try:
            answer = _lower(orjson.loads(raw)) if raw else {}
        except orjson.JSONDecodeError:
            answer = {"msg": raw[:200].decode("utf-8", errors="replace")}
        code = answer.get("code")
        sent = Sent(
            op.operation_id,
            op.section or "",
            body,
            started,
            time.monotonic() - t0,
            status,
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            str(answer.get("msg") or ""),
            answer.get("data"),
            "" if status < 500 else f"HTTP {status}",
        )
        self._keep(sent)
        if status >= 500:
            raise MesUnavailable(f"{cfg.equipment}: {sent.describe()}")
        return sent

    def _keep(self, sent: Sent) -> None:
        self.sent.append(sent)
        if self.on_exchange is not None:
            self.on_exchange(sent)

    async def deliver(self, ref: str, values: dict[str, Any] | None = None, *, attempts: int | None = None) -> Sent:
        """Call until the MES answers (a refusal is an answer), backing off between attempts.

        ``attempts`` bounds the tries (the last ``MesUnavailable`` is raised); None tries until cancelled,
        as a host does with what it owes the MES.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.call(ref, values)
            except MesUnavailable as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                delay = self.config.backoff.delay(attempt)
                if attempt == 1:
                    self.outages += 1
                log.warning("%s; attempt %d, retry in %.2f s", exc, attempt, delay)
                await asyncio.sleep(delay)

    async def login(self) -> Sent:
        """2.1 until the MES answers; the token is kept when it accepts."""
        cfg = self.config
        values = {"OperatorUserID": cfg.user, "OperatorPassword": cfg.password}
        sent = await self.deliver(self._login_op.operation_id, values)
        token = _lower(sent.data).get("authorization") if sent.ok else None
        if token:
            self.token = str(token)
        return sent

    async def recipe(self, product: str) -> tuple[str, str, list[dict[str, Any]]] | None:
        """2.7 then 2.8: (recipe code, version, the MES's parameter list) of the product's first set; None when
        the MES has no set for this equipment's process (nothing to verify)."""
        listing = await self.deliver("GetRecipeList", {"ProductCode": product})
        if not listing.ok:
            raise MesRefused("2.7 GetRecipeList", listing.code, listing.msg)
        rows = listing.data if isinstance(listing.data, list) else [listing.data] if listing.data else []
        if not any(rows):
            return None
        row = _lower(rows[0])
        recipe = str(row.get("recipecode") or "")
        detail = await self.deliver("GetRecipeDetail", {"RecipeCode": recipe})
        if not detail.ok:
            raise MesRefused(f"2.8 GetRecipeDetail {recipe}", detail.code, detail.msg)
        data = _lower(detail.data)
        params = [_lower(p) for p in data.get("paramlist") or ()]
        return recipe, str(data.get("version") or row.get("version") or ""), params


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
