"""One equipment's session with the MES, as the twin plays the host PC of a station whose PLC is real.

The host side of sections 1.5 and 2 that a PLC cannot do itself: log in and keep the token (2.1), send each
call with it, and, when the MES cannot be reached, report it and try again with back-off instead of failing
(1.5.8: a host keeps what it owes and sends it when the MES is back). A business refusal (code other than 0)
is an answer, not an outage: it is returned to the caller, who decides (the MES's word is final).
Every exchange is kept (the latest ``KEPT``) so a run and a test can say what the station told the MES.
Requests go through the twin's one MES client (``twin.transport.http.MesClient``), the one the line uses; the
back-off between attempts is the host's (``Backoff``), as a client never retries on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twin.errors import MesRefused, MesUnavailable
from twin.hil.events import Backoff
from twin.metrics.exchange import NO_ANSWER
from twin.profile import Profile
from twin.profile.casing import lower_keys
from twin.profile.recipes import first_recipe, recipe_detail, recipe_version
from twin.transport.http import MesClient

log = logging.getLogger(__name__)

KEPT = 10_000
CONNECTIONS = 2  # one equipment's calls: a heartbeat may overlap a report


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
        self._http: MesClient | None = None
        self._login_op = profile.operation("OperatorLogin")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _client(self) -> MesClient:
        """The twin's one MES client (``twin.transport.http``), at the MES the config names now (a test or a run
        may point the session at another MES while it runs)."""
        url = self.config.mes_url.rstrip("/")
        if self._http is not None and self._http.base_url != url:
            await self.close()
        if self._http is None:
            self._http = MesClient(url, timeout_s=self.config.timeout_s, connections=CONNECTIONS)
        return self._http

    async def call(self, ref: str, values: dict[str, Any] | None = None) -> Sent:
        """One attempt; ``MesUnavailable`` when there is no answer (no connection, timeout, 5xx)."""
        op = self.profile.operation(ref)
        cfg = self.config
        context = {"now": datetime.now(UTC), "equipment_code": cfg.equipment, "resource_code": cfg.resource}
        body = self.profile.build_request(op, values or {}, context=context)
        token = self.token if self.token and op.needs_auth else None
        client = await self._client()
        reply = await client.call(op, body, equipment=cfg.equipment, token=token)
        ex = reply.exchange
        elapsed = ex.answered_wall - ex.sent_wall
        if reply.status == NO_ANSWER:
            sent = Sent(op.operation_id, op.section or "", body, ex.sent_wall, elapsed, error=reply.error)
            self._keep(sent)
            raise MesUnavailable(f"{cfg.equipment}: {sent.describe()}")
        code = reply.code
        sent = Sent(
            op.operation_id,
            op.section or "",
            body,
            ex.sent_wall,
            elapsed,
            reply.status,
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            reply.msg or reply.error,  # an answer that is not JSON: what was wrong with it
            reply.data,
            "" if reply.status < 500 else f"HTTP {reply.status}",
        )
        self._keep(sent)
        if reply.status >= 500:
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
        row = first_recipe(listing.data)
        if row is None:
            return None
        recipe = str(row.get("recipecode") or "")
        detail = await self.deliver("GetRecipeDetail", {"RecipeCode": recipe})
        if not detail.ok:
            raise MesRefused(f"2.8 GetRecipeDetail {recipe}", detail.code, detail.msg)
        data, params = recipe_detail(detail.data)
        return recipe, recipe_version(data, row), params
