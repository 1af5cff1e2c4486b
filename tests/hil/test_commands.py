"""``twin plc`` and ``twin proxy`` from the command line, through the one error boundary."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import orjson
import pytest

from tests.hil.conftest import UpstreamMes
from tests.hil.hosts import FakeHost
from tests.hil.test_rules import Script
from twin.cli import main
from twin.hil.journal import JOURNAL
from twin.profile import Profile

TWIN = [sys.executable, "-c", "from twin.cli import main; main()"]


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["twin", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def test_plc_maps_and_show(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out = run(["plc", "maps"], monkeypatch, capsys)
    assert code == 0 and "winder.modbus" in out and "winder.opcua" in out
    code, out = run(["plc", "show", "winder.modbus"], monkeypatch, capsys)
    assert code == 0 and "input_register 10-21" in out and "string[24] ascii" in out
    assert "interlock timeout 3000 ms" in out
    code, out = run(["plc", "show", "nope"], monkeypatch, capsys)
    assert code == 2 and out.startswith("error: no I/O map 'nope'")


async def _serve(*extra: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *TWIN,
        "plc",
        "serve",
        "--map",
        "winder.modbus",
        "--port",
        "0",
        "--cycle-s",
        "0.1",
        "--duration-s",
        "20",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    match = re.search(r"on (127\.0\.0\.1:\d+)", line)
    assert match, line
    return proc, match.group(1)


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    return out.decode()


@pytest.mark.e2e
async def test_plc_serve_watch_and_interlock(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, address = await _serve()
    try:
        code, out = await asyncio.to_thread(
            run,
            ["plc", "watch", "--map", "winder.modbus", "--connect", address, "--duration-s", "1.5", "--json"],
            monkeypatch,
            capsys,
        )
        assert code == 0, out
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert events[0]["kind"] == "link-up"
        assert any(e["kind"] == "cycle" and e["barcode"].startswith("JR") for e in events)
        code, out = await asyncio.to_thread(
            run,
            ["plc", "interlock", "--map", "winder.modbus", "--connect", address, "--timeout-s", "1"],
            monkeypatch,
            capsys,
        )
        assert code == 0 and "passed" in out, out
    finally:
        served = await _stop(proc)
    assert "host wrote interlock = True" in served and "host wrote interlock = False" in served


@pytest.mark.e2e
async def test_plc_interlock_fails_when_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, address = await _serve("--ignore-interlock")
    try:
        code, out = await asyncio.to_thread(
            run,
            ["plc", "interlock", "--map", "winder.modbus", "--connect", address, "--timeout-s", "0.3"],
            monkeypatch,
            capsys,
        )
    finally:
        await _stop(proc)
    assert code == 1 and "FAILED" in out


@pytest.mark.e2e
async def test_plc_host_turns_a_plcs_cycles_into_mes_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, address = await _serve()
    try:
        args = ["plc", "host", "--map", "winder.modbus", "--connect", address, "--equipment", "A02-WIND-01"]
        args += ["--mes", "embedded", "--report", "2.44", "--listen", "127.0.0.1:0", "--duration-s", "2", "--json"]
        code, out = await asyncio.to_thread(run, args, monkeypatch, capsys)
    finally:
        served = await _stop(proc)
    assert code == 0, out
    summary = json.loads(out[out.index("{\n") :])
    assert summary["equipment"] == "A02-WIND-01" and summary["parts"] >= 3
    assert summary["calls"]["2.44 CollingPolar"]["ok"] == summary["calls"]["2.44 CollingPolar"]["calls"] >= 3
    assert summary["calls"]["2.9 Recipe"]["ok"] == 1
    assert re.search(r"MES 2\.44 CollingPolar: ok", out) and "PLC cycle complete" in out
    assert "host wrote param_wd0001_upper = 14.0" in served  # the MES's limits, written down to the PLC
    code, out = run(["plc", "host", *args[2:8], "--mes", "mes:8080"], monkeypatch, capsys)
    assert code == 2 and "--mes must be a URL" in out


def _journal(mes: Profile, path: Path, *, heartbeat_gap: float) -> None:
    script = Script(mes)
    script.login("A02-HP-01")
    script.call("A02-HP-01", "2.2", {"IsOnline": True}, at=5)
    script.call("A02-HP-01", "2.2", {"IsOnline": True}, at=5 + heartbeat_gap)
    path.mkdir(parents=True, exist_ok=True)
    with (path / JOURNAL).open("wb") as fh:
        for rec in script.records:
            fh.write(orjson.dumps(rec.as_dict()) + b"\n")


def test_proxy_report_exit_codes_and_files(
    mes: Profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _journal(mes, tmp_path / "bad", heartbeat_gap=30)
    code, out = run(["proxy", "report", str(tmp_path / "bad")], monkeypatch, capsys)
    assert code == 1 and "A02-HP-01 (10.0.0.9)  FAIL" in out
    assert "error: 1 of 1 hosts failed (A02-HP-01): see the report" in out
    assert {p.name for p in (tmp_path / "bad").iterdir()} >= {"conformance.json", "conformance.txt", "conformance.html"}
    code, out = run(["proxy", "report", str(tmp_path / "bad"), "--heartbeat-s", "30", "--json"], monkeypatch, capsys)
    assert code == 0 and json.loads(out)["summary"]["passed"] == 1
    code, out = run(["proxy", "report", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "holds no proxy recording" in out


def test_proxy_needs_an_upstream(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["proxy", "--listen", "127.0.0.1:0"], monkeypatch, capsys)
    assert code == 2 and "--upstream" in out
    code, out = run(["proxy", "--listen", "127.0.0.1:0", "--upstream", "mes:5000"], monkeypatch, capsys)
    assert code == 2 and "must be a URL" in out


@pytest.mark.e2e
async def test_proxy_command_records_and_reports(mes: Profile, upstream: UpstreamMes, tmp_path: Path) -> None:
    import aiohttp

    record = tmp_path / "rec"
    proc = await asyncio.create_subprocess_exec(
        *TWIN,
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream.url,
        "--report-dir",
        str(record),
        "--duration-s",
        "2",
        "--heartbeat-s",
        "0.5",
        "--heartbeat-tolerance-s",
        "0.2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    url = re.match(r"proxy (http://\S+) ->", first).group(1)
    async with aiohttp.ClientSession() as session:
        host = FakeHost(session, mes, url, "A02-HP-01")
        await host.login()
        for _ in range(2):
            await host.call("2.2", {"IsOnline": True})
            await asyncio.sleep(0.5)
        await host.state("1")
        await host.state("1")
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1, (out, err)
    assert b"VIOLATION A02-HP-01 state-on-change" in err
    assert err.count(b"state-on-change") == 1  # printed once, not again as a log warning
    assert b"A02-HP-01 (127.0.0.1)  FAIL" in out
    settings = json.loads((record / "settings.json").read_text())
    assert settings["rules"]["heartbeat_s"] == 0.5 and settings["upstream"] == upstream.url
    assert (record / "conformance.html").is_file()
