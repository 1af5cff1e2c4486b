"""Drive a page in headless Chromium over the DevTools protocol, inside the test's own event loop.

The run under test and the browser's protocol connection share one asyncio loop, so a test can click a
button on the page and then read both the page and the run. The flags and the binary are those of
``tests.report.chromium``: a fresh profile, no background networking, DevTools on a port the browser picks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from tests.report.chromium import FLAGS, chromium_binary


class Page:
    """One tab: ``evaluate`` JavaScript, ``wait_for`` a condition, ``screenshot``; console errors collected."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.loaded = asyncio.Event()

    async def pump(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.waiting:
                self.waiting.pop(msg["id"]).set_result(msg)
                continue
            method, params = msg.get("method", ""), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                self.errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Page.loadEventFired":
                self.loaded.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.waiting[n] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        reply = await asyncio.wait_for(self.waiting[n], 20)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.call(f"{domain}.enable")
        await self.call("Page.navigate", url=url)
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 15.0, every_s: float = 0.02) -> float:
        """Poll ``expression`` until it is truthy; the seconds it took."""
        start = time.monotonic()
        while not await self.evaluate(expression):
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"the page never made {expression!r} true in {timeout_s:g} s")
            await asyncio.sleep(every_s)
        return time.monotonic() - start

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if marker.is_file() and (lines := marker.read_text().split()):
            return int(lines[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before opening DevTools")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


@contextlib.asynccontextmanager
async def browser_page(url: str, *, width: int = 1440, height: int = 1000) -> AsyncIterator[Page]:
    """A headless Chromium showing ``url``; closed (and its profile removed) on the way out."""
    binary = chromium_binary()
    assert binary, "chromium is not installed"
    flags = [f for f in FLAGS if not f.startswith("--window-size")] + [f"--window-size={width},{height}"]
    with tempfile.TemporaryDirectory(prefix="twin-web-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [binary, *flags, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = await asyncio.to_thread(_devtools_port, Path(profile), proc)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as fh:  # loopback only
                target = next(t for t in json.load(fh) if t["type"] == "page")
            async with connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
                page = Page(ws)
                pump = asyncio.create_task(page.pump())
                try:
                    await page.open(url)
                    yield page
                finally:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
