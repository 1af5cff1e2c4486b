"""A client that drives an industrial PC (real or virtual) through a scripted session and judges its answers.

A script is a list of steps, the same form as the profile's ``x-twin-session`` (the default session):
``{send: {cmd: 0xE014, location: 0x31}, expect: {responseCode: CRS_SUCCESS}}`` sends a request (messageID
counted up from 1, as the spec's 系统自加) and checks the answer; ``fetch: photo`` also downloads the snapshot
URL and decodes the picture; ``{wait: 0xF0A1}`` waits for a picture push and decodes it; ``{raw: "text"}`` sends
text as is (to see how a PC answers malformed input). Every answer is validated against the AsyncAPI profile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from PIL import Image, UnidentifiedImageError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from twin.errors import ConfigError, TwinError
from twin.ipc.spec import IpcSpec, load_ipc_spec

PUSH_CMD = 0xF0A1


class IpcSessionFailed(TwinError):
    """Some step of a driven session did not get the answer it expected."""


@dataclass(slots=True)
class StepResult:
    index: int
    action: str
    message_id: int | None = None
    reply: dict[str, Any] | None = None
    ok: bool = False
    detail: str = ""
    latency_ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        shown = {
            k: (v if not (isinstance(v, str) and len(v) > 80) else v[:77] + "...")
            for k, v in (self.reply or {}).items()
        }
        return {
            "step": self.index,
            "action": self.action,
            "ok": self.ok,
            "ms": round(self.latency_ms, 1),
            "detail": self.detail,
            "reply": shown,
        }


@dataclass(slots=True)
class _Inbox:
    """Answers by messageID, pushes in a queue."""

    waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    pushes: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    unexpected: list[dict[str, Any]] = field(default_factory=list)


class IpcDriver:
    """One WebSocket session with an industrial PC."""

    def __init__(
        self,
        url: str,
        *,
        spec: IpcSpec | None = None,
        reply_timeout_s: float = 40.0,
        push_timeout_s: float | None = None,
    ) -> None:
        self.url = url
        self.spec = spec or load_ipc_spec()
        self.reply_timeout_s = reply_timeout_s
        push_s = float(self.spec.device.get("push-s", 5))
        self.push_timeout_s = push_timeout_s if push_timeout_s is not None else 2 * push_s + 5
        self._ids = itertools.count(1)

    async def run(self, steps: list[dict[str, Any]]) -> list[StepResult]:
        try:
            ws = await connect(self.url, max_size=2**24, open_timeout=10)
        except InvalidURI as exc:
            raise ConfigError(f"cannot open {self.url}: {exc}") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:  # an unreachable peer fails the check (exit 1)
            raise IpcSessionFailed(f"cannot reach {self.url}: {exc}") from None
        inbox = _Inbox()
        reader = asyncio.create_task(self._read(ws, inbox))
        results: list[StepResult] = []
        try:
            async with aiohttp.ClientSession() as http:
                for i, step in enumerate(steps, 1):
                    results.append(await self._step(i, step, ws, inbox, http))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
        return results

    async def _read(self, ws: ClientConnection, inbox: _Inbox) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                try:
                    message = orjson.loads(text)
                except orjson.JSONDecodeError:
                    inbox.unexpected.append({"text": str(text)[:200]})
                    continue
                if not isinstance(message, dict):
                    inbox.unexpected.append({"text": str(text)[:200]})
                elif message.get("cmd") == PUSH_CMD:
                    inbox.pushes.put_nowait(message)
                elif (fut := inbox.waiting.pop(message.get("messageID"), None)) is not None and not fut.done():
                    fut.set_result(message)
                else:
                    inbox.unexpected.append(message)

    async def _step(
        self, index: int, step: dict[str, Any], ws: ClientConnection, inbox: _Inbox, http: aiohttp.ClientSession
    ) -> StepResult:
        if "wait" in step:
            return await self._wait_push(index, inbox)
        if "raw" in step:
            return await self._exchange(index, step, ws, inbox, http, text=str(step["raw"]), message_id=0)
        message = dict(step["send"])
        message["messageID"] = next(self._ids)
        return await self._exchange(
            index, step, ws, inbox, http, text=orjson.dumps(message).decode(), message_id=message["messageID"]
        )

    async def _exchange(
        self,
        index: int,
        step: dict[str, Any],
        ws: ClientConnection,
        inbox: _Inbox,
        http: aiohttp.ClientSession,
        *,
        text: str,
        message_id: int,
    ) -> StepResult:
        sent = step.get("send") or {}
        request = self.spec.profile.by_cmd(sent["cmd"]) if "cmd" in sent else None
        action = request.name if request else "raw"
        result = StepResult(index, action, message_id)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        inbox.waiting[message_id] = fut
        began = time.perf_counter()
        try:
            await ws.send(text)
            reply = await asyncio.wait_for(fut, self.reply_timeout_s)
        except (TimeoutError, ConnectionClosed) as exc:
            inbox.waiting.pop(message_id, None)
            result.detail = f"no answer: {type(exc).__name__}"
            return result
        result.latency_ms = (time.perf_counter() - began) * 1000
        result.reply = reply
        problems = self._judge(reply, request, step.get("expect") or {})
        if not problems and step.get("fetch") == "photo":
            problems, note = await self._fetch(http, str(reply.get("photo", "")))
            result.detail = note
        result.ok = not problems
        result.detail = "; ".join(problems) or result.detail or self._describe(reply)
        return result

    def _judge(self, reply: dict[str, Any], request: Any, expect: dict[str, Any]) -> list[str]:
        problems = []
        answer = self.spec.profile.by_cmd(reply.get("cmd", -1))
        expected = self.spec.profile.messages.get(request.reply) if request is not None and request.reply else None
        if expected is not None and answer is not expected:
            problems.append(f"answer cmd {reply.get('cmd')!r}, expected {expected.cmd:#06x} {expected.name}")
        if answer is None:
            problems.append(f"answer cmd {reply.get('cmd')!r} is not in the profile")
        else:
            problems += [f"answer breaks the profile: {issue}" for issue in answer.check(reply)[1]]
        for key, want in expect.items():
            value = self.spec.code(want) if isinstance(want, str) else want
            if reply.get(key) != value:
                problems.append(f"{key} {self.spec.describe(reply.get(key))}, expected {self.spec.describe(value)}")
        return problems

    def _describe(self, reply: dict[str, Any]) -> str:
        if "status" in reply:
            return f"status {self.spec.describe(reply['status'])} {reply.get('describe', '')}".strip()
        text = f"responseCode {self.spec.describe(reply.get('responseCode'))}"
        tracks = [reply.get(k) for k in ("cardNo1", "cardNo2", "cardNo3") if reply.get(k)]
        return (
            text
            + (f", {len(tracks)} track(s) read" if tracks else "")
            + (f", {reply['error']}" if reply.get("error") else "")
        )

    async def _fetch(self, http: aiohttp.ClientSession, url: str) -> tuple[list[str], str]:
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                body = await resp.read()
                if resp.status != 200:
                    return [f"snapshot {url}: HTTP {resp.status}"], ""
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return [f"snapshot {url}: {type(exc).__name__} {exc}"], ""
        size = _picture_size(body)
        return (
            ([], f"snapshot {url}: {size} JPEG, {len(body)} bytes")
            if size
            else ([f"snapshot {url}: not a picture"], "")
        )

    async def _wait_push(self, index: int, inbox: _Inbox) -> StepResult:
        result = StepResult(index, "wait CameraPicture")
        began = time.perf_counter()
        try:
            push = await asyncio.wait_for(inbox.pushes.get(), self.push_timeout_s)
        except TimeoutError:
            result.detail = f"no picture push within {self.push_timeout_s:g} s"
            return result
        result.latency_ms = (time.perf_counter() - began) * 1000
        result.reply = push
        result.message_id = push.get("messageID")
        problems = [f"push breaks the profile: {i}" for i in self.spec.profile.message(PUSH_CMD).check(push)[1]]
        try:
            size = _picture_size(base64.b64decode(push.get("photo", ""), validate=True))
        except ValueError:
            size = None
        if not size:
            problems.append("the pushed photo is not a BASE64 picture")
        result.ok = not problems
        result.detail = "; ".join(problems) or f"picture #{push.get('messageID')}: {size} JPEG"
        return result


def _picture_size(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            return f"{img.size[0]}x{img.size[1]}"
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None


async def drive(
    url: str,
    steps: list[dict[str, Any]] | None = None,
    *,
    spec: IpcSpec | None = None,
    reply_timeout_s: float = 40.0,
    push_timeout_s: float | None = None,
) -> list[StepResult]:
    """Run a scripted session (the profile's default when ``steps`` is None)."""
    spec = spec or load_ipc_spec()
    driver = IpcDriver(url, spec=spec, reply_timeout_s=reply_timeout_s, push_timeout_s=push_timeout_s)
    return await driver.run(steps if steps is not None else spec.session)
