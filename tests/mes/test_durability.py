"""Nothing acknowledged is lost: SIGKILL the MES under load, restart it on the same file, and every
exchange that got code 0 is there, and the state it changed is back."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.mes.conftest import Host, fresh
from twin.profile import Profile

WINDERS = [f"A02-WIND-0{n}" for n in range(1, 5)]
pytestmark = pytest.mark.e2e


async def _serve(db: Path) -> tuple[asyncio.subprocess.Process, str]:
    """``twin mes serve`` in a subprocess on a free port; its URL read from what it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from twin.cli import main; main()", "mes", "serve", "--port", "0", "--db", str(db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    text = line.decode()
    assert "listening on" in text, text
    return proc, text.split("listening on ", 1)[1].split()[0]


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def _load(host: Host, acked: set[str], stop: asyncio.Event, worker: int) -> None:
    """Jelly rolls, one after the other, until the server dies; keep those answered with code 0."""
    winder = WINDERS[worker % len(WINDERS)]
    while not stop.is_set():
        code = fresh(f"JRD{worker}-")
        try:
            doc = await host.call("CollingPolar", {"Sfc": code, "Passed": 1, "NgList": []}, winder)
        except (TimeoutError, aiohttp.ClientError):
            return  # the server is gone
        if doc["code"] == 0:
            acked.add(code)


async def test_every_acknowledged_exchange_survives_sigkill(tmp_path: Path, profile: Profile) -> None:
    db = tmp_path / "mes.sqlite"
    proc, url = await _serve(db)
    acked: set[str] = set()
    try:
        async with aiohttp.ClientSession() as session:
            host = Host(session, url, profile)
            await host.login()
            for winder in WINDERS:
                await host.verify(winder)
            stop = asyncio.Event()
            workers = [asyncio.create_task(_load(host, acked, stop, n)) for n in range(24)]
            for _ in range(200):  # bounded: until a good number were acknowledged, under load
                if len(acked) >= 400:
                    break
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)  # mid-flight: requests are being written and answered
            await proc.wait()
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
            token = host.token
        assert len(acked) >= 100
        with sqlite3.connect(db) as conn:
            logged = {sfc for (sfc,) in conn.execute(
                "SELECT sfc FROM exchanges WHERE operation = 'CollingPolar' AND code = 0")}
        assert acked <= logged, f"{len(acked - logged)} acknowledged exchanges lost"

        proc, url = await _serve(db)  # restart on the same file: the state is back too
        async with aiohttp.ClientSession() as session:
            host = Host(session, url, profile)
            host.token = token  # tokens survive a restart, like the JWT of a real MES
            for code in sorted(acked)[:20]:
                await host.refused("CollingPolar", {"Sfc": code, "Passed": 1, "NgList": []}, "A02-WIND-05",
                                   "already exists")
            await host.verify("A02-HP-01")
            await host.ok("Inbound", {"Sfc": sorted(acked)[0]}, "A02-HP-01")
    finally:
        await _kill(proc)
