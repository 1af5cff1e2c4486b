"""The driving client: the default session end to end against our PC, and what it says when a PC is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from twin.ipc.driver import drive
from twin.ipc.server import IpcServer
from twin.ipc.spec import WS_PATH, load_ipc_spec

SPEC = load_ipc_spec()


@pytest.fixture
async def url() -> AsyncIterator[str]:
    server = IpcServer(push_s=0.1, customer_s=0.02, motion_s=0.0)
    port = await server.start("127.0.0.1", 0)
    yield f"ws://127.0.0.1:{port}{WS_PATH}"
    await server.stop()


async def test_the_default_session_passes_against_the_virtual_pc(url: str) -> None:
    results = await drive(url)
    assert len(results) == len(SPEC.session) and all(r.ok for r in results), [r.summary() for r in results if not r.ok]
    by_action = {r.action: r for r in results}
    assert "640x480 JPEG" in by_action["CameraSnapshot"].detail
    assert "640x480 JPEG" in by_action["wait CameraPicture"].detail
    assert "2 track(s) read" in by_action["CardInsertRear"].detail
    assert [r.message_id for r in results if r.action != "wait CameraPicture"] == list(range(1, len(results)))


async def test_a_wrong_expectation_and_malformed_input_are_reported(url: str) -> None:
    steps = [
        {"send": {"cmd": 0xE014, "location": 0x31}, "expect": {"responseCode": "CRS_SUCCESS"}},
        {"raw": "{oops", "expect": {"responseCode": "TWIN_PARAM_ERROR"}},
        {"send": {"cmd": 0xE011}, "expect": {"status": 0x35}},
    ]
    first, raw, status = await drive(url, steps)
    assert not first.ok and first.detail == "responseCode 0x35 CRS_NOCARDIN, expected 0x01 CRS_SUCCESS"
    assert raw.ok and raw.reply is not None and raw.reply["cmd"] == 0xF0FF
    assert status.ok


async def test_no_push_when_the_camera_is_off(url: str) -> None:
    (result,) = await drive(url, [{"wait": 0xF0A1}], push_timeout_s=0.3)
    assert not result.ok and "no picture push" in result.detail


async def test_an_unreachable_pc_fails_the_session_and_a_bad_url_is_bad_input() -> None:
    """Exit 1 as for every unreachable peer (plc interlock, ct check); a URL that is not ws:// is exit 2."""
    from twin.errors import ConfigError
    from twin.ipc.driver import IpcSessionFailed

    with pytest.raises(IpcSessionFailed, match=r"cannot reach ws://127\.0\.0\.1:9/") as failed:
        await drive("ws://127.0.0.1:9/WebSocketMessenger", [])
    assert failed.value.exit_code == 1
    with pytest.raises(ConfigError, match="cannot open http://x/"):
        await drive("http://x/", [])


def test_the_commands_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "twin"),
            "ipc",
            "serve",
            "--port",
            "0",
            "--push-s",
            "0.2",
            "--customer-s",
            "0.05",
            "--duration-s",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout is not None
        found = re.search(r"ws://\S+", serve.stdout.readline())
        assert found
        script = tmp_path / "script.yaml"
        script.write_text(
            "- {send: {cmd: 0xE011}, expect: {status: CRS_NOCARDIN}}\n"
            "- {send: {cmd: 0xE014, location: 0x30}, expect: {responseCode: CRS_SUCCESS}}\n"
        )
        from twin.cli import main

        monkeypatch.setattr("sys.argv", ["twin", "ipc", "drive", found.group(0)])
        with pytest.raises(SystemExit) as info:
            main()
            raise SystemExit(0)
        out = capsys.readouterr().out
        assert info.value.code == 0 and f"{len(SPEC.session)} of {len(SPEC.session)} steps as expected" in out
        monkeypatch.setattr("sys.argv", ["twin", "ipc", "drive", found.group(0), "--script", str(script)])
        with pytest.raises(SystemExit) as info:
            main()
        captured = capsys.readouterr()
        assert info.value.code == 1 and "1 of 2 steps failed: #2 CardMove" in captured.err
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        if serve.stdout is not None:
            serve.stdout.close()
