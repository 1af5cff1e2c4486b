"""The embedded MES's admin API seen from a process that did not start it: its URL and admin token.

A shard of a sharded run (``twin.run.shard``) runs in a worker process; the driver started the one embedded
MES. The shard still owes that MES its go-live data load (``POST /admin/opening-wip``: the cells already in
its copies' line), so it is handed the MES's URL and admin token and speaks to the same API as
``EmbeddedMes`` does (same answers: the JSON document, or None when it cannot be had).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson


class MesAdmin:
    """``await MesAdmin(url, token).post_json('/admin/opening-wip', doc)``: one admin call, its JSON answer."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.admin_token = token
        self.timeout_s = timeout_s

    async def get_json(self, path: str) -> Any:
        return await self._json("GET", path)

    async def post_json(self, path: str, doc: Any) -> Any:
        return await self._json("POST", path, orjson.dumps(doc))

    async def _json(self, method: str, path: str, body: bytes | None = None) -> Any:
        """The answer as JSON (200 or 400, which carries why), or None if the MES cannot say."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as http,
                http.request(method, self.url + path, data=body, headers=headers) as resp,
            ):
                return orjson.loads(await resp.read()) if resp.status in (200, 400) else None
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return None
