"""The embedded MES of a run, as a process of its own on loopback.

``twin run`` with no ``--mes`` runs the line against ``twin mes serve`` started here. It runs in its own
process so that the MES and the line model each get a core of a 2-core machine (DESIGN decision 6: the
embedded MES must never be the bottleneck of a default run), and so that what the twin measures is a
real HTTP service, not a function call. Its log goes to ``mes.log`` in the run folder; its database is
the run folder's ``mes.sqlite``, so the MES side of a run can be inspected afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from twin.errors import TwinError

_LISTENING = re.compile(rb"listening on (http://\S+)")


class MesStartError(TwinError):
    """The embedded MES did not come up."""


class EmbeddedMes:
    """``async with EmbeddedMes(folder, args) as mes: mes.url``: start, wait until it listens, stop."""

    def __init__(self, folder: Path, args: list[str], *, start_timeout_s: float = 60.0) -> None:
        self.folder = folder
        self.args = args
        self.start_timeout_s = start_timeout_s
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    async def __aenter__(self) -> EmbeddedMes:
        self._log = (self.folder / "mes.log").open("wb")
        cmd = [sys.executable, "-m", "twin", "mes", "serve", "--host", "127.0.0.1", "--port", "0", *self.args]
        self._log.write(b"$ " + " ".join(cmd).encode() + b"\n")
        self._log.flush()
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=self._log, start_new_session=True
        )
        try:
            self.url = await asyncio.wait_for(self._listening(), self.start_timeout_s)
        except (TimeoutError, MesStartError) as exc:
            await self.stop()
            detail = (self.folder / "mes.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise MesStartError(f"the embedded MES did not start ({exc or 'timeout'}): {' | '.join(detail)}") from None
        return self

    async def _listening(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = await self._proc.stdout.readline()
            if not line:
                raise MesStartError(f"exited with code {await self._proc.wait()}")
            self._log.write(line)
            self._log.flush()
            if m := _LISTENING.search(line):
                asyncio.get_running_loop().create_task(self._copy_stdout())
                return m.group(1).decode()

    async def _copy_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            async for line in self._proc.stdout:
                self._log.write(line)

    async def stats(self) -> dict[str, Any] | None:
        """The MES's own counts (``GET /admin/stats``), or None if it cannot say."""
        return await self.get_json("/admin/stats")

    async def get_json(self, path: str) -> Any:
        return await self._json("GET", path)

    async def post_json(self, path: str, doc: Any) -> Any:
        return await self._json("POST", path, orjson.dumps(doc))

    async def _json(self, method: str, path: str, body: bytes | None = None) -> Any:
        """The admin API's answer as JSON, or None if it cannot be had (the run goes on and says so)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.request(method, self.url + path, data=body) as resp,
            ):
                return orjson.loads(await resp.read()) if resp.status in (200, 400) else None
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return None

    async def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
