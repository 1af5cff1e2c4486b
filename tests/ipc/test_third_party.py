"""The virtual industrial PC driven by WebSocket clients that are not ours: the websockets CLI, and wscat.

Both are interactive clients: each line written to their stdin is sent as a message, and each message received
is printed on a line of their stdout (wscat prints it bare when not on a terminal, the websockets CLI after "< ").
The websockets CLI ships with the ``websockets`` dependency, so it always runs; wscat (npm) runs where installed.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from twin.ipc.server import IpcServer
from twin.ipc.spec import WS_PATH, load_ipc_spec

SPEC = load_ipc_spec()
C = SPEC.code
JSON_LINE = re.compile(r"(\{.*\})")

CLIENTS = {
    "websockets-cli": [sys.executable, "-m", "websockets"],
    "wscat": ["wscat", "--no-color", "-c"],
}


@pytest.fixture
async def pc() -> AsyncIterator[str]:
    server = IpcServer(push_s=0.3, customer_s=0.02, motion_s=0.0)
    port = await server.start("127.0.0.1", 0)
    yield f"ws://127.0.0.1:{port}{WS_PATH}"
    await server.stop()


class Client:
    """A third-party client process: send lines, read the messages it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def connected(self, probe: str, cmd: int) -> dict[str, Any]:
        """Send ``probe`` until its answer comes: wscat drops what is typed before its connection is open."""
        for _ in range(50):
            await self.send(probe)
            try:
                return await self.expect(cmd, timeout_s=0.2)
            except TimeoutError:
                continue
        raise AssertionError("the client never connected")

    async def expect(self, cmd: int, message_id: int | None = None, *, timeout_s: float = 10) -> dict[str, Any]:
        """The first printed message with this cmd (and messageID), within ``timeout_s`` per line."""
        assert self.proc.stdout is not None
        for message in self.seen:
            if message["cmd"] == cmd and message_id in (None, message["messageID"]):
                self.seen.remove(message)
                return message
        for _ in range(200):
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
            if not line:
                raise AssertionError(f"the client ended before {cmd:#06x} came")
            found = JSON_LINE.search(line.decode("utf-8", "replace"))
            if not found:
                continue
            message = json.loads(found.group(1))
            answer = SPEC.profile.by_cmd(message["cmd"])
            assert answer is not None and answer.check(message)[1] == [], message
            if message["cmd"] == cmd and message_id in (None, message["messageID"]):
                return message
            self.seen.append(message)
        raise AssertionError(f"no {cmd:#06x} among 200 lines")


@pytest.mark.e2e
@pytest.mark.parametrize("client", sorted(CLIENTS))
async def test_a_third_party_client_drives_the_pc(pc: str, client: str) -> None:
    command = CLIENTS[client]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (npm install -g wscat)")
    proc = await asyncio.create_subprocess_exec(
        *command,
        pc,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=2**22,
    )
    c = Client(proc)
    try:
        status = await c.connected('{"cmd": 57361, "messageID": 1}', 0xF011)  # 0xE011, as a client author writes it
        assert status["messageID"] == 1 and status["status"] == C("CRS_NOCARDIN")
        await c.send('{"cmd": "0xE001", "messageID": 2, "cameraSwitch": 1}')
        assert (await c.expect(0xF001, 2))["responseCode"] == C("CRS_SUCCESS")
        await c.send('{"cmd": 57347, "messageID": 3}')
        assert (await c.expect(0xF003, 3))["photo"].startswith("http://127.0.0.1:")
        assert len((await c.expect(0xF0A1))["photo"]) > 10_000  # a pushed picture
        await c.send("hello?")
        assert (await c.expect(0xF0FF, 0))["responseCode"] == C("TWIN_PARAM_ERROR")
        await c.send('{"cmd": 57363, "messageID": 4}')  # 0xE013 rear insert and read
        assert (await c.expect(0xF013, 4))["cardNo2"].startswith(";6222")
        await c.send('{"cmd": 57364, "messageID": 5, "location": 54}')  # eject at the front
        assert (await c.expect(0xF014, 5))["responseCode"] == C("CRS_SUCCESS")
        await c.send('{"cmd": 57364, "messageID": 6, "location": 54}')
        assert (await c.expect(0xF014, 6))["responseCode"] == C("CRS_NOCARDIN")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
