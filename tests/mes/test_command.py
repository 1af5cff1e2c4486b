"""``twin mes serve``: its flags become the MES's settings, and faults set by flag are seen by a client."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mes.conftest import Host
from twin.cli import main
from twin.commands.mes import build_config, serve
from twin.errors import ConfigError
from twin.mes import MesConfig, start_mes
from twin.profile import Profile

BAD_REGISTRY = Path(__file__).resolve().parents[1] / "data" / "registry-not-yaml.yaml"


def _options(*args: str) -> dict[str, Any]:
    return dict(serve.make_context("serve", list(args)).params)


def test_flags_become_the_config() -> None:
    config, outage = build_config(**_options(
        "--port", "0", "--db", ":memory:", "--durability", "normal", "--equipment-address", "*=127.0.0.1:7000",
        "--interlock-timeout", "0.5", "--latency", "lognormal:20:200", "--latency-for", "Inbound=fixed:300",
        "--error-rate-for", "Heartbeat=0.25", "--error-kind", "http500", "--slow-db-ms", "40",
        "--outage-after", "60", "--outage-for", "5", "--outage-mode", "hang",
    ))
    assert (config.port, config.db, config.synchronous, config.interlock_timeout_s) == (0, ":memory:", "NORMAL", 0.5)
    assert config.addresses == {"*": "127.0.0.1:7000"}
    faults = config.faults
    assert str(faults.latency) == "lognormal:20:200" and str(faults.latency_for["Inbound"]) == "fixed:300"
    assert faults.error_rate_for == {"Heartbeat": 0.25} and faults.error_kind == "http500"
    assert faults.slow_db_ms == 40
    assert outage == {"after_s": 60, "for_s": 5, "mode": "hang"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--latency", "gauss:3"), "must be one of fixed"),
        (("--latency-for", "Inbound"), "must be OPERATION=VALUE"),
        (("--error-rate-for", "Heartbeat=lots"), "must be a number from 0 to 1"),
        (("--error-rate", "1.5"), "from 0 to 1"),
        (("--outage-for", "5"), "go together"),
        (("--interlock-timeout", "0"), "more than 0 seconds"),
    ],
)
def test_bad_flags_are_named(args: tuple[str, ...], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_config(**_options(*args))


async def test_an_unknown_interface_in_a_fault_flag_is_refused_with_a_suggestion() -> None:
    config, _ = build_config(**_options("--port", "0", "--db", ":memory:", "--latency-for", "Inbnd=fixed:5"))
    with pytest.raises(ConfigError, match="did you mean Inbound"):
        await start_mes(config)


async def test_faults_from_flags_are_seen_by_a_client(session: aiohttp.ClientSession, profile: Profile) -> None:
    config, _ = build_config(**_options(
        "--port", "0", "--db", ":memory:", "--latency-for", "Heartbeat=fixed:250",
        "--error-rate-for", "TimeSynch=1", "--seed", "3",
    ))
    assert isinstance(config, MesConfig)
    running = await start_mes(config)
    try:
        host = Host(session, running.url, profile)
        await host.login()
        started = time.perf_counter()
        await host.ok("Heartbeat", {"IsOnline": True})
        assert time.perf_counter() - started >= 0.25
        doc = await host.call("TimeSynch", {})
        assert doc["code"] == 9001 and "TimeSynch" in doc["msg"]
    finally:
        await running.stop()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "99999"], "99999 is not in the range 0<=x<=65535"),
        (["--slow-db-ms", "1e308"], "slow_db_ms must be a number from 0 to 10000"),
        (["--latency", "fixed:inf"], "from 0 to 600000 ms"),
        (["--idle-timeout", "nan"], "--idle-timeout must be a finite number"),
        (["--seed", "-1"], "-1 is not in the range x>=0"),
        (["--admin-token", "a b"], "--admin-token must be at least 8 printable characters"),
        (["--crash-after", "0"], "--crash-after must be a finite number of seconds > 0"),
        (["--restart-after", "3"], "--restart-after goes with --crash-after"),
        (["--port", "0", "--host", "999.1.1.1"], "the MES cannot listen on 999.1.1.1:0"),
        (["--equipment-address", "A02-WH-01=127.0.0.1:99999"], "the port must be 1 to 65535"),
        (["--registry", str(BAD_REGISTRY)], "is not valid YAML/JSON at line 2, column 1: expected the node"),
    ],
)
def test_bad_serve_flags_are_one_line_and_exit_2(
    args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["twin", "mes", "serve", "--db", ":memory:", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert info.value.code == 2 and needle in text and "Traceback" not in text, text


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    """``twin mes serve`` as a process; its lines up to the admin token's."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twin", "mes", "serve", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "admin token" not in lines[-1]:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, lines
        lines.append(line)
    return proc, lines


async def _stopped(proc: asyncio.subprocess.Process, within_s: float) -> int | None:
    """The exit code, or None if it had to be killed after ``within_s``."""
    try:
        return await asyncio.wait_for(proc.wait(), within_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None


@pytest.mark.e2e
async def test_serve_prints_its_token_and_sigterm_always_stops_it(tmp_path: Path, profile: Profile) -> None:
    token_file = tmp_path / "token"
    proc, lines = await _start("--db", str(tmp_path / "mes.sqlite"), "--admin-token-file", str(token_file))
    try:
        url = lines[0].split("listening on ", 1)[1].split()[0]
        token = token_file.read_text().strip()
        assert f"admin token {token}  (" in lines[-1] and f"also in {token_file}" in lines[-1]
        admin = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/admin/faults", json={"slow_db_ms": 1e308}, headers=admin) as resp:
                assert resp.status == 400
            async with session.post(url + "/admin/faults", json={"slow_db_ms": 10_000}, headers=admin) as resp:
                assert resp.status == 200  # the slowest disk allowed: every commit takes 10 s
            host = Host(session, url, profile)
            login = asyncio.create_task(host.login())  # waits in the slow commit
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            started = time.perf_counter()
            assert await _stopped(proc, 8) == 0
            assert time.perf_counter() - started < 6  # not the 10 s of the commit, let alone the 60 s of aiohttp
            with contextlib.suppress(aiohttp.ClientError, AssertionError):
                await login  # answered (the slow commit was cut short) or dropped: either way, not hung
    finally:
        await _stopped(proc, 1)


@pytest.mark.e2e
async def test_serve_crash_after_restarts_on_the_same_port(tmp_path: Path) -> None:
    proc, lines = await _start("--db", str(tmp_path / "mes.sqlite"), "--crash-after", "0.5", "--restart-after", "0.2")
    try:
        url = next(ln for ln in lines if "listening on" in ln).split("listening on ", 1)[1].split()[0]
        token = lines[-1].split("admin token ", 1)[1].split()[0]
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line
            lines.append(line)
            if "admin token" in line:
                break
        text = "".join(lines)
        assert "MES killed with SIGKILL after 0.5 s" in text and text.count(f"listening on {url}") == 2
        assert f"admin token {token}" in line  # the same token after the restart
        admin = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session, session.get(url + "/admin/stats", headers=admin) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert await _stopped(proc, 15) == 0
    finally:
        await _stopped(proc, 1)
