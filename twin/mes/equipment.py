"""The MES calling equipment (spec section 3): interlocks (3.1) and electrolyte batches (3.2).

``POST http://{equipment}:6868/api/SendInterLock`` (or ``SendBatchSfc``) with the body as section 3
prints it (PascalCase names). 200 means delivered; 400 carries the host's ``Msg``; no answer within the
timeout means the equipment is offline (3.1 说明 2), and the interlock is not delivered. Every call is
recorded with its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from twin.profile import Profile

log = logging.getLogger(__name__)

OUTCOMES = ("delivered", "rejected", "offline", "unreachable", "error", "no-address")


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: str  # one of OUTCOMES
    address: str
    status: int | None = None
    detail: str = ""
    elapsed_ms: float = 0.0


class EquipmentClient:
    """Section-3 calls with one pooled session, a timeout, and an outcome for every call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        profile: Profile,
        addresses: Mapping[str, str],
        *,
        timeout_s: float = 3.0,
    ) -> None:
        self.session = session
        self.addresses = dict(addresses)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._interlock = profile.operation("SendInterLock")
        self._batch = profile.operation("SendBatchSfc")

    async def send_interlock(self, equipment: str, code: str, message: str) -> Outcome:
        body = {"InterlockCode": code, "InterlockMessage": message, "EquipmentCode": equipment}
        self._interlock.validate_request(body)
        return await self._post(equipment, self._interlock.path, body)

    async def send_batch(self, equipment: str, batch_sfc: str) -> Outcome:
        body = {"BatchSfc": batch_sfc, "EquipmentCode": equipment}
        self._batch.validate_request(body)
        return await self._post(equipment, self._batch.path, body)

    async def _post(self, equipment: str, path: str, body: dict[str, Any]) -> Outcome:
        address = self.addresses.get(equipment, "")
        if not address:
            return Outcome("no-address", "", detail=f"no address is registered for {equipment}")
        url = f"http://{address}{path}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with self.session.post(
                url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, timeout=self.timeout
            ) as resp:
                text = await resp.text(errors="replace")
                elapsed = (loop.time() - started) * 1000.0
                if resp.status == 200:
                    return Outcome("delivered", address, 200, text[:200], elapsed)
                if resp.status == 400:
                    return Outcome("rejected", address, 400, _msg(text), elapsed)
                return Outcome("error", address, resp.status, text[:200], elapsed)
        except TimeoutError:
            elapsed = (loop.time() - started) * 1000.0
            return Outcome("offline", address, None, f"no answer within {self.timeout.total:g} s", elapsed)
        except aiohttp.ClientError as exc:
            elapsed = (loop.time() - started) * 1000.0
            return Outcome("unreachable", address, None, str(exc) or type(exc).__name__, elapsed)


def _msg(text: str) -> str:
    """The ``Msg`` of a 400 answer (3.1: {"Msg": "出现异常"}), or the text itself."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text[:200]
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.lower() == "msg":
                return str(value)
    return text[:200]
