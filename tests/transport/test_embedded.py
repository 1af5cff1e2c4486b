"""The embedded MES process of ``twin run``: its admin token, its death seen at once, a crash rehearsed
(SIGKILL, restart on the same port from the same database, nothing acknowledged lost or stored twice),
and never an orphan when ``twin run`` is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.mes.conftest import Host, fresh
from twin.errors import ConfigError
from twin.mes.app import _loaded
from twin.profile import Profile
from twin.transport.embedded import EmbeddedMes, MesArgsError, split_crash_args

pytestmark = pytest.mark.e2e
WINDERS = [f"A02-WIND-0{n}" for n in range(1, 5)]


@pytest.fixture(scope="module")
def profile() -> Profile:
    return _loaded("line-A02", None, None)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_crash_flags_are_the_supervisors() -> None:
    assert split_crash_args(["--db", "x", "--crash-after=30", "--restart-after", "2.5"]) == (["--db", "x"], 30.0, 2.5)
    assert split_crash_args(["--crash-after", "4"]) == ([], 4.0, 5.0)
    for bad in (
        ["--crash-after=0"],
        ["--crash-after=nan"],
        ["--crash-after=x"],
        ["--restart-after=3"],
        ["--crash-after=1", "--restart-after=-1"],
    ):
        with pytest.raises(ConfigError):
            split_crash_args(bad)


async def test_admin_token_is_written_read_and_sent(tmp_path: Path) -> None:
    async with EmbeddedMes(tmp_path, ["--db", ":memory:"]) as mes:
        token = (tmp_path / "admin-token").read_text().strip()
        assert token == mes.admin_token and len(token) >= 24
        assert oct((tmp_path / "admin-token").stat().st_mode & 0o777) == "0o600"
        for _ in range(100):  # the line after "listening on" is copied to the log as it comes
            if f"admin token {token}" in (tmp_path / "mes.log").read_text():
                break
            await asyncio.sleep(0.02)
        assert f"admin token {token}" in (tmp_path / "mes.log").read_text()
        stats = await mes.stats()
        assert stats is not None and "operations" in stats
        async with aiohttp.ClientSession() as http, http.get(mes.url + "/admin/stats") as resp:
            assert resp.status == 401


async def test_bad_mes_args_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(MesArgsError) as info:
        async with EmbeddedMes(tmp_path, ["--bogus"]):
            pass
    assert info.value.exit_code == 2 and "No such option" in str(info.value)


async def test_an_unexpected_death_is_seen_at_once(tmp_path: Path) -> None:
    seen: list[float] = []
    async with EmbeddedMes(tmp_path, ["--db", ":memory:"]) as mes:
        mes.on_death(lambda m: seen.append(time.time()))
        assert mes.died is None and mes.up
        killed = time.time()
        assert mes.pid is not None
        os.kill(mes.pid, signal.SIGKILL)
        await asyncio.wait_for(mes.dead.wait(), 5)
        assert mes.died is not None and mes.died - killed < 1.0
        assert mes.exit_code == -signal.SIGKILL and not mes.up
        assert [e.kind for e in mes.events] == ["died"] and len(seen) == 1 and seen[0] - mes.died < 0.5
    assert "ended with code -9 when nobody asked it to" in (tmp_path / "mes.log").read_text()


async def _load(host: Host, acked: list[str], stop: asyncio.Event, worker: int) -> None:
    """Jelly rolls one after the other; one whose answer is lost is sent again until answered, as a host's
    outbox does (then "already exists" means it was stored before the crash, answer lost)."""
    winder = WINDERS[worker % len(WINDERS)]
    while not stop.is_set():
        code, tries = fresh(f"JRC{worker}-"), 0
        while True:
            tries += 1
            try:
                doc = await host.call("CollingPolar", {"Sfc": code, "Passed": 1, "NgList": []}, winder)
                break
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.05)  # the MES is down
        if doc["code"] == 0 or (tries > 1 and "already exists" in doc["msg"]):
            acked.append(code)


async def test_a_crash_rehearsal_loses_nothing_acknowledged(tmp_path: Path, profile: Profile) -> None:
    db = tmp_path / "mes.sqlite"
    args = ["--db", str(db), "--durability", "normal", "--crash-after=2", "--restart-after=0.5"]
    async with EmbeddedMes(tmp_path, args) as mes, aiohttp.ClientSession() as session:
        url, token = mes.url, mes.admin_token
        told: list[str] = []
        mes.on_event(lambda event: told.append(event.kind))
        host = Host(session, url, profile)
        await host.login()
        for winder in WINDERS:
            await host.verify(winder)
        acked: list[str] = []
        stop = asyncio.Event()
        workers = [asyncio.create_task(_load(host, acked, stop, n)) for n in range(8)]
        deadline = time.monotonic() + 30
        while len(mes.events) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        before = len(acked)
        await asyncio.sleep(0.5)  # some more after the restart, on the same URL and login
        stop.set()
        await asyncio.gather(*workers)
        assert [e.kind for e in mes.events] == ["crashed", "restarted"] == told, mes.events
        assert mes.events[0].exit_code == -signal.SIGKILL and mes.died is None and mes.up
        ((crashed, restarted),) = mes.crashes
        assert restarted is not None and 0.5 <= restarted - crashed < 15
        assert mes.url == url and mes.admin_token == token and before >= 20 and len(acked) > before
        stats = await mes.stats()  # the admin token still opens the restarted MES
        assert stats is not None
    with sqlite3.connect(db) as conn:  # a resent record whose first answer was lost is "already recorded"
        stored = dict(
            conn.execute(
                "SELECT sfc, COUNT(*) FROM exchanges WHERE operation = 'CollingPolar' AND code = 0"
                " AND msg NOT LIKE '%already recorded%' GROUP BY sfc"
            ).fetchall()
        )
        in_file = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
    assert stats["db"]["exchanges"] == in_file  # the restarted MES counts what came before the crash too
    wrong = {code: stored.get(code) for code in acked if stored.get(code) != 1}
    assert not wrong, f"acknowledged records lost (None) or stored twice: {wrong}"
    log = (tmp_path / "mes.log").read_text()
    assert log.count(f"listening on {url}") == 2 and "--crash-after" not in log.split("\n", 1)[0]


def test_the_mes_never_outlives_a_killed_parent(tmp_path: Path) -> None:
    """``kill -9`` of the process that started the MES (``twin run``): the MES goes too."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from twin.transport.embedded import EmbeddedMes\n"
        "async def main():\n"
        f"    async with EmbeddedMes(Path({str(tmp_path)!r}), ['--db', ':memory:']) as mes:\n"
        "        print(mes.pid, flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphan = _alive(pid)
        if orphan:
            os.kill(pid, signal.SIGKILL)  # leave nothing behind, even when the test fails
        assert not orphan, "the embedded MES outlived its parent"
