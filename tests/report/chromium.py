"""Load a page in headless Chromium over the DevTools protocol: console errors, images, network, screenshot.

Chromium is started with a fresh profile, no background networking, and the DevTools port chosen by the
browser (port 0, read back from DevToolsActivePort); everything stays on loopback and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--disable-default-apps",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  plot: i.dataset.plot || '', complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"""
#: Elements reaching past the viewport's right (or left) edge that no scroll box of theirs holds, and widths.
OVERFLOW_JS = """(() => {
  const W = document.documentElement.clientWidth, out = [];
  const boxed = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (!r.width || (r.right <= W + 0.5 && r.left >= -0.5) || boxed(el)) continue;
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + el.className : '')
             + ' right=' + Math.round(r.right));
  }
  return JSON.stringify({client: W, scroll: document.documentElement.scrollWidth, overflow: out.slice(0, 20)});
})()"""


def chromium_binary() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    text: str = ""
    width: int = 0  # the viewport's width (CSS px)
    scroll_width: int = 0  # the page's: wider than ``width`` means the page scrolls sideways
    overflow: list[str] = field(default_factory=list)  # elements past the viewport's edge, outside a scroll box


class _Session:
    def __init__(self, ws: Any, report: PageReport) -> None:
        self.ws, self.report, self.ids = ws, report, itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()

    async def pump(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.waiting:
                self.waiting.pop(msg["id"]).set_result(msg)
                continue
            method, params = msg.get("method", ""), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.report.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                self.report.errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                self.report.errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                self.report.requests.append(params["request"]["url"])
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


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if marker.is_file() and (lines := marker.read_text().split()):
            return int(lines[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before opening DevTools")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


async def _inspect(port: int, url: str, screenshot: Path, width: int) -> PageReport:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as fh:  # loopback only
        page = next(t for t in json.load(fh) if t["type"] == "page")
    report = PageReport()
    async with connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
        s = _Session(ws, report)
        pump = asyncio.create_task(s.pump())
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                await s.call(f"{domain}.enable")
            await s.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False
            )
            await s.call("Page.navigate", url=url)
            await asyncio.wait_for(s.loaded.wait(), 30)
            await asyncio.sleep(0.3)  # let late console messages arrive
            value = await s.call("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)
            report.images = json.loads(value["result"]["value"])
            report.title = (await s.call("Runtime.evaluate", expression="document.title"))["result"]["value"]
            report.text = (await s.call("Runtime.evaluate", expression="document.body.innerText"))["result"]["value"]
            value = await s.call("Runtime.evaluate", expression=OVERFLOW_JS, returnByValue=True)
            layout = json.loads(value["result"]["value"])
            report.width, report.scroll_width, report.overflow = layout["client"], layout["scroll"], layout["overflow"]
            shot = await s.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=await _page_clip(s, width)
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    return report


async def _page_clip(s: _Session, width: int) -> dict[str, float]:
    metrics = await s.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    return {"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000), "scale": 1}


def inspect_page(html: Path, screenshot: Path, *, width: int = 1280, timeout_s: float = 60) -> PageReport:
    """Open ``html`` from disk in headless Chromium ``width`` CSS px wide and report what a reader would see."""
    binary = chromium_binary()
    assert binary, "chromium is not installed"
    # chromium may still be writing its profile as it exits: a leftover temp file must not fail the test
    with tempfile.TemporaryDirectory(prefix="twin-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(Path(profile), proc, 30)
            page = _inspect(port, html.resolve().as_uri(), screenshot, width)
            return asyncio.run(asyncio.wait_for(page, timeout_s))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
