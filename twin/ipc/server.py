"""The virtual industrial PC: a WebSocket server at ``/WebSocketMessenger`` (port 5000 by default).

Every text message is parsed, matched to its request by ``cmd``, checked against the AsyncAPI profile and handled
by the camera pole or the card dispenser; the answer carries the request's messageID. Requests run as tasks, so a
slow one (front insertion waits for a customer) does not hold up a status query or the reset that interrupts it.
A malformed message gets the protocol's error answer (IPC-9), never a closed connection. While the camera is on,
a picture is pushed to every client as 0xF0A1 every ``push_s`` seconds. Snapshots are served over plain HTTP on the
same port (IPC-11), through the websockets library's ``process_request`` hook.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from twin.ipc.camera import Camera, CameraOff
from twin.ipc.dispenser import CardDispenser
from twin.ipc.spec import WS_PATH, IpcSpec, load_ipc_spec

log = logging.getLogger(__name__)

KEEP_SNAPSHOTS = 50
ERROR_CMD = 0xF0FF
PUSH_CMD = 0xF0A1


class IpcServer:
    """One virtual industrial PC; ``await start()`` to listen, ``await stop()`` to close.

    Settings left at None come from the profile's ``x-twin-device``.
    """

    def __init__(
        self,
        spec: IpcSpec | None = None,
        *,
        push_s: float | None = None,
        customer_s: float | None = None,
        insert_timeout_s: float | None = None,
        motion_s: float | None = None,
        hopper: int | None = None,
        seed: int = 1,
    ) -> None:
        self.spec = spec or load_ipc_spec()
        dev = self.spec.device
        pic = dev.get("picture") or {}
        self.push_s = float(dev.get("push-s", 5) if push_s is None else push_s)
        self.camera = Camera(
            width=int(pic.get("width", 640)),
            height=int(pic.get("height", 480)),
            quality=int(pic.get("quality", 70)),
            zoom_steps=int(dev.get("zoom-steps", 10)),
            seed=seed,
        )
        self.dispenser = CardDispenser(
            self.spec,
            hopper=int(dev.get("hopper", 50) if hopper is None else hopper),
            insert_timeout_s=float(dev.get("insert-timeout-s", 30) if insert_timeout_s is None else insert_timeout_s),
            customer_s=float(dev.get("customer-s", 2) if customer_s is None else customer_s),
            motion_s=float(dev.get("motion-s", 0.2) if motion_s is None else motion_s),
            seed=seed,
        )
        self.clients: set[ServerConnection] = set()
        #: called with one line per client event (connected, each request answered, left); ``twin ipc serve`` prints it
        self.on_event: Callable[[str], None] | None = None
        self.snapshots: OrderedDict[int, bytes] = OrderedDict()
        self.snapshot_count = 0
        self.received = 0
        self.malformed = 0
        self.pushes = 0
        self._server: Server | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._handlers: dict[int, Callable[[dict[str, Any], ServerConnection], Awaitable[dict[str, Any]]]] = {
            0xE001: self._camera_switch,
            0xE002: self._camera_focus,
            0xE003: self._camera_snapshot,
            0xE011: self._card_status,
            0xE012: self._card_insert_front,
            0xE013: self._card_insert_rear,
            0xE014: self._card_move,
            0xE015: self._card_read,
            0xE016: self._card_reset,
        }

    # -- life cycle -------------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 5000) -> int:
        """Listen; returns the port bound (0 picks a free one)."""
        self._server = await serve(self._connection, host, port, process_request=self._http, max_size=2**20)
        self._pusher = asyncio.create_task(self._push_loop(), name="ipc-picture-push")
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- HTTP on the same port: snapshots and a state view -------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return None  # the WebSocket handshake goes on
        if path.startswith("/snapshots/") and path.endswith(".jpg"):
            try:
                picture = self.snapshots.get(int(path[len("/snapshots/") : -len(".jpg")]))
            except ValueError:
                picture = None
            if picture is not None:
                headers = Headers([("Content-Type", "image/jpeg"), ("Content-Length", str(len(picture)))])
                return Response(200, "OK", headers, picture)
        if path == "/twin/state":
            body = orjson.dumps(self.state())
            headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return Response(200, "OK", headers, body)
        return connection.respond(HTTPStatus.NOT_FOUND, f"nothing at {path}; the WebSocket is at {WS_PATH}\n")

    def state(self) -> dict[str, Any]:
        d = self.dispenser
        return {
            "camera": {"on": self.camera.on, "zoom": self.camera.zoom, "frames": self.camera.frames},
            "card": {"position": d.position, "status": d.status(), "hopper": d.hopper, "captured": d.captured},
            "clients": len(self.clients),
            "received": self.received,
            "malformed": self.malformed,
            "pushes": self.pushes,
        }

    # -- messages ---------------------------------------------------------------------------------------------
    def _tell(self, ws: ServerConnection, text: str) -> None:
        if self.on_event is not None:
            peer = ws.remote_address
            self.on_event(f"{peer[0]}:{peer[1]} {text}" if isinstance(peer, tuple) else text)

    async def _connection(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        self._tell(ws, "connected")
        tasks: set[asyncio.Task[None]] = set()
        try:
            async for text in ws:
                task = asyncio.create_task(self._answer(ws, text))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)
            if tasks:
                self.dispenser.interrupt()  # a card wait of a client that left ends as 0x1005
                await asyncio.gather(*tasks, return_exceptions=True)
            self._tell(ws, "left")

    async def _answer(self, ws: ServerConnection, text: str | bytes) -> None:
        self.received += 1
        started = time.monotonic()
        try:
            reply = await self._reply(ws, text)
        except Exception as exc:  # the PC answers, whatever went wrong inside it
            log.exception("industrial PC: a message failed")
            reply = self._error(0, f"internal error: {type(exc).__name__}")
        if self.on_event is not None:
            cmd = reply.get("cmd")
            what = f"0x{cmd:04X}" if isinstance(cmd, int) else str(cmd)
            code = reply.get("responseCode", "")
            ms = (time.monotonic() - started) * 1000
            self._tell(ws, f"#{reply.get('messageID', 0)} answered {what} code {code} ({ms:.0f} ms)")
        with contextlib.suppress(ConnectionClosed):
            await ws.send(orjson.dumps(reply).decode())

    async def _reply(self, ws: ServerConnection, text: str | bytes) -> dict[str, Any]:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return self._error(0, f"not JSON: {exc}")
        if not isinstance(message, dict):
            return self._error(0, f"expected a JSON object, got {type(message).__name__}")
        message_id = message.get("messageID") if isinstance(message.get("messageID"), int) else 0
        cmd = _cmd(message.get("cmd"))
        request = self.spec.profile.by_cmd(cmd) if cmd is not None else None
        if request is None or request.role != "request":
            return self._error(message_id, f"cmd {message.get('cmd')!r} is not a request of this protocol")
        message["cmd"] = cmd  # a hex string is accepted and answered as a number (IPC-1)
        data, issues = request.check(message)
        reply_cmd = self.spec.profile.messages[request.reply or ""].cmd
        if issues:
            self.malformed += 1
            return self._failed(reply_cmd, message_id, "; ".join(map(str, issues)))
        fields = await self._handlers[cmd](data, ws)
        return {"cmd": reply_cmd, "messageID": message_id, **fields}

    def _error(self, message_id: int, reason: str) -> dict[str, Any]:
        self.malformed += 1
        return {
            "cmd": ERROR_CMD,
            "messageID": message_id,
            "responseCode": self.spec.code("TWIN_PARAM_ERROR"),
            "error": reason,
        }

    def _failed(self, reply_cmd: int | None, message_id: int, reason: str) -> dict[str, Any]:
        """The request's own answer, with the twin's parameter-error code and every field the answer needs."""
        code = self.spec.code("TWIN_PARAM_ERROR")
        reply: dict[str, Any] = {"cmd": reply_cmd, "messageID": message_id, "responseCode": code, "error": reason}
        if reply_cmd in (0xF012, 0xF013, 0xF015):
            reply.update(cardNo1="", cardNo2="", cardNo3="")
        elif reply_cmd == 0xF003:
            reply["photo"] = ""
        elif reply_cmd == 0xF011:
            reply.update(status=self.dispenser.status(), describe=self.dispenser.describe())
        return reply

    # -- camera pole ------------------------------------------------------------------------------------------
    def _ok(self) -> dict[str, Any]:
        return {"responseCode": self.spec.code("CRS_SUCCESS")}

    async def _camera_switch(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        self.camera.switch(data["cameraSwitch"] == 1)
        return self._ok()

    async def _camera_focus(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        try:
            self.camera.focus(data["focuse"])
        except CameraOff:
            return {"responseCode": self.spec.code("TWIN_CAMERA_OFF")}
        return self._ok()

    async def _camera_snapshot(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        try:
            picture = await asyncio.to_thread(self.camera.picture)
        except CameraOff:
            return {"responseCode": self.spec.code("TWIN_CAMERA_OFF"), "photo": ""}
        self.snapshot_count += 1  # its own counter: pushed frames also advance camera.frames
        number = self.snapshot_count
        self.snapshots[number] = picture
        while len(self.snapshots) > KEEP_SNAPSHOTS:
            self.snapshots.popitem(last=False)
        host = ws.request.headers.get("Host", "127.0.0.1") if ws.request is not None else "127.0.0.1"
        return {**self._ok(), "photo": f"http://{host}/snapshots/{number}.jpg"}

    async def _push_loop(self) -> None:
        """0xF0A1 every push_s while the camera is on, to every client (IPC-4)."""
        while True:
            await asyncio.sleep(self.push_s)
            if not self.camera.on or not self.clients:
                continue
            try:
                picture = await asyncio.to_thread(self.camera.picture)
            except CameraOff:
                continue
            self.pushes += 1
            text = orjson.dumps(
                {
                    "cmd": PUSH_CMD,
                    "messageID": self.pushes,
                    "responseCode": self.spec.code("CRS_SUCCESS"),
                    "photo": base64.b64encode(picture).decode("ascii"),
                }
            ).decode()
            for ws in list(self.clients):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(text)

    # -- card dispenser ---------------------------------------------------------------------------------------
    async def _card_status(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        d = self.dispenser
        return {"status": d.status(), "describe": d.describe(), **self._ok()}

    @staticmethod
    def _tracks(code: int, tracks: tuple[str, str, str]) -> dict[str, Any]:
        return {"responseCode": code, "cardNo1": tracks[0], "cardNo2": tracks[1], "cardNo3": tracks[2]}

    async def _card_insert_front(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        return self._tracks(*await self.dispenser.insert_front())

    async def _card_insert_rear(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        return self._tracks(*await self.dispenser.insert_rear())

    async def _card_read(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        return self._tracks(*await self.dispenser.read())

    async def _card_move(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        return {"responseCode": await self.dispenser.move(data["location"])}

    async def _card_reset(self, data: dict[str, Any], ws: ServerConnection) -> dict[str, Any]:
        return {"responseCode": await self.dispenser.reset(data["action"])}


def _cmd(value: Any) -> int | None:
    """cmd as a number, from a JSON number or a hex string such as "0xE001" (IPC-1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value[:2].lower() == "0x":
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None
