"""The virtual industrial PC over a real WebSocket: answers, pictures, pushes, and malformed input."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from twin.ipc.server import IpcServer
from twin.ipc.spec import WS_PATH, load_ipc_spec

SPEC = load_ipc_spec()
C = SPEC.code


@pytest.fixture
async def pc() -> AsyncIterator[tuple[IpcServer, str]]:
    server = IpcServer(push_s=0.1, customer_s=0.02, insert_timeout_s=0.5, motion_s=0.0)
    port = await server.start("127.0.0.1", 0)
    yield server, f"127.0.0.1:{port}"
    await server.stop()


async def ask(ws: ClientConnection, message: dict[str, Any] | str) -> dict[str, Any]:
    """Send one message and return the first answer that is not a picture push."""
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    for _ in range(100):
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if answer["cmd"] != 0xF0A1:
            return answer
    raise AssertionError("only pushes came back")


def conforms(answer: dict[str, Any]) -> dict[str, Any]:
    message = SPEC.profile.by_cmd(answer["cmd"])
    assert message is not None and message.check(answer)[1] == [], answer
    return answer


async def test_every_request_gets_its_answer_with_the_message_id(pc: tuple[IpcServer, str]) -> None:
    _, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        script = [
            ({"cmd": 0xE011}, {"status": C("CRS_NOCARDIN")}),
            ({"cmd": 0xE001, "cameraSwitch": 1}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE002, "focuse": 1}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE003}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE013}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE014, "location": 0x31}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE015}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE016, "action": 0x32}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE012}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE014, "location": 0x36}, {"responseCode": C("CRS_SUCCESS")}),
            ({"cmd": 0xE014, "location": 0x36}, {"responseCode": C("CRS_NOCARDIN")}),
        ]
        for i, (request, expected) in enumerate(script, 100):
            answer = conforms(await ask(ws, {**request, "messageID": i}))
            assert answer["cmd"] == request["cmd"] + 0x1000 and answer["messageID"] == i
            assert {k: answer[k] for k in expected} == expected, (request, answer)


async def test_the_snapshot_url_serves_the_picture(pc: tuple[IpcServer, str]) -> None:
    server, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        await ask(ws, {"cmd": 0xE001, "messageID": 1, "cameraSwitch": 1})
        small = conforms(await ask(ws, {"cmd": 0xE003, "messageID": 2}))
        for n in range(3):
            await ask(ws, {"cmd": 0xE002, "messageID": 3 + n, "focuse": 1})
        zoomed = conforms(await ask(ws, {"cmd": 0xE003, "messageID": 9}))
    assert small["photo"] == f"http://{host}/snapshots/1.jpg"
    async with aiohttp.ClientSession() as http:
        pictures = []
        for url in (small["photo"], zoomed["photo"]):
            async with http.get(url) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
                pictures.append(Image.open(io.BytesIO(await resp.read())))
        async with http.get(f"http://{host}/snapshots/999.jpg") as resp:
            assert resp.status == 404
        async with http.get(f"http://{host}/twin/state") as resp:
            state = await resp.json()
    assert all(p.format == "JPEG" and p.size == (640, 480) for p in pictures)
    assert pictures[0].tobytes() != pictures[1].tobytes()  # the zoom shows
    assert state["camera"] == {"on": True, "zoom": 3, "frames": server.camera.frames}


async def test_pictures_are_pushed_while_the_camera_is_on(pc: tuple[IpcServer, str]) -> None:
    _, host = pc
    async with connect(f"ws://{host}{WS_PATH}", max_size=2**22) as ws:
        await ws.send(json.dumps({"cmd": 0xE001, "messageID": 1, "cameraSwitch": 1}))
        pushes = []
        for _ in range(20):
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["cmd"] == 0xF0A1:
                pushes.append(conforms(message))
            if len(pushes) == 2:
                break
        assert len(pushes) == 2 and pushes[1]["messageID"] == pushes[0]["messageID"] + 1
        picture = Image.open(io.BytesIO(base64.b64decode(pushes[0]["photo"], validate=True)))
        assert picture.format == "JPEG"
        await ask(ws, {"cmd": 0xE001, "messageID": 2, "cameraSwitch": 0})
        await asyncio.sleep(0.15)  # a push already on its way may still arrive
        for _ in range(3):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.01)
        with pytest.raises(TimeoutError):  # then silence: three push periods without a picture
            await asyncio.wait_for(ws.recv(), 0.35)


async def test_camera_commands_while_off_answer_the_camera_off_code(pc: tuple[IpcServer, str]) -> None:
    _, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        snap = conforms(await ask(ws, {"cmd": 0xE003, "messageID": 1}))
        zoom = conforms(await ask(ws, {"cmd": 0xE002, "messageID": 2, "focuse": 2}))
    assert (snap["responseCode"], snap["photo"]) == (C("TWIN_CAMERA_OFF"), "")
    assert zoom["responseCode"] == C("TWIN_CAMERA_OFF")


@pytest.mark.parametrize(
    ("message", "cmd", "message_id", "says"),
    [
        ("not json", 0xF0FF, 0, "not JSON"),
        ("[1, 2]", 0xF0FF, 0, "expected a JSON object"),
        ({"cmd": 0xE0FF, "messageID": 7}, 0xF0FF, 7, "not a request"),
        ({"cmd": 0xF011, "messageID": 7}, 0xF0FF, 7, "not a request"),  # an answer sent back
        ({"messageID": 7}, 0xF0FF, 7, "not a request"),
        ({"cmd": 0xE014, "messageID": 8}, 0xF014, 8, "location: required field is missing"),
        ({"cmd": 0xE014, "messageID": 8, "location": 0x99}, 0xF014, 8, "location: expected integer one of"),
        ({"cmd": 0xE001, "messageID": 9, "cameraSwitch": "on"}, 0xF001, 9, "cameraSwitch: expected integer 0 or 1"),
        ({"cmd": 0xE011}, 0xF011, 0, "messageID: required field is missing"),
        ({"cmd": 0xE012, "messageID": "x"}, 0xF012, 0, "messageID: expected integer"),
    ],
)
async def test_malformed_input_gets_the_protocol_error_answer(
    pc: tuple[IpcServer, str], message: Any, cmd: int, message_id: int, says: str
) -> None:
    server, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        answer = conforms(await ask(ws, message))
        assert (answer["cmd"], answer["messageID"], answer["responseCode"]) == (cmd, message_id, C("TWIN_PARAM_ERROR"))
        assert says in answer["error"]
        assert conforms(await ask(ws, {"cmd": 0xE011, "messageID": 1}))["cmd"] == 0xF011  # still connected
    assert server.malformed == 1


async def test_a_hex_string_cmd_and_the_focus_alias_are_understood(pc: tuple[IpcServer, str]) -> None:
    _, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        assert conforms(await ask(ws, {"cmd": "0XE001", "messageID": 1, "cameraSwitch": 1}))["cmd"] == 0xF001
        answer = conforms(await ask(ws, {"cmd": "0xE002", "messageID": 2, "focus": 1}))
    assert answer["responseCode"] == C("CRS_SUCCESS")


async def test_a_status_query_is_answered_while_a_card_is_awaited(pc: tuple[IpcServer, str]) -> None:
    server, host = pc
    server.dispenser.customer_s = 5.0
    async with connect(f"ws://{host}{WS_PATH}") as ws:
        await ws.send(json.dumps({"cmd": 0xE012, "messageID": 1}))
        status = conforms(await ask(ws, {"cmd": 0xE011, "messageID": 2}))
        assert status["messageID"] == 2 and status["status"] == C("CRS_NOCARDIN")
        await ws.send(json.dumps({"cmd": 0xE016, "messageID": 3, "action": 0x30}))
        answers = {}
        for _ in range(2):
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            answers[message["messageID"]] = conforms(message)
    assert answers[1]["cmd"] == 0xF012 and answers[1]["responseCode"] == C("Interrupted")
    assert answers[3]["cmd"] == 0xF016 and answers[3]["responseCode"] == C("CRS_SUCCESS")


async def test_a_client_that_leaves_does_not_hurt_the_others(pc: tuple[IpcServer, str]) -> None:
    server, host = pc
    async with connect(f"ws://{host}{WS_PATH}") as a, connect(f"ws://{host}{WS_PATH}") as b:
        await a.close()
        assert conforms(await ask(b, {"cmd": 0xE011, "messageID": 1}))["status"] == C("CRS_NOCARDIN")
        await asyncio.sleep(0.05)
        assert len(server.clients) == 1
