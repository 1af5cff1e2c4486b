"""What the MES refuses before it reads a request, so that nobody who reaches its port can wedge it or fill
its disk: the admin token, body sizes (413, answered from ``Content-Length`` before the body is read, and
enforced while reading a chunked body), media types (415), bodies that come too slowly (408), and clients
that go away mid-body (one log line).

Body limits per interface. The spec gives no sizes; the largest realistic section-2 JSON body the profile
describes is under 1 KiB (a tray of cells with their parameters stays well under 100 KiB), so 1 MiB leaves a
wide margin for hosts that re-upload long parameter lists. 2.54 EquFileUpload carries the files themselves
(CCD and X-ray images: a few MiB each), so it gets 32 MiB; its content is counted, never kept. The admin
API takes at most 4 MiB (an opening WIP of thousands of cells); anything else, 64 KiB.

A refused request is logged by size and reason and counted in ``/admin/stats`` under ``refusals``; its body
is never read, let alone stored.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from twin.errors import ConfigError
from twin.profile import Operation

log = logging.getLogger(__name__)

KIB, MIB = 1024, 1024 * 1024
SECTION2_BODY_LIMIT = 1 * MIB
BODY_LIMITS = {"EquFileUpload": 32 * MIB}  # 2.54 uploads files as multipart/form-data
ADMIN_BODY_LIMIT = 4 * MIB
OTHER_BODY_LIMIT = 64 * KIB
MAX_BODY_LIMIT = max(SECTION2_BODY_LIMIT, ADMIN_BODY_LIMIT, *BODY_LIMITS.values())  # aiohttp's client_max_size
JSON_TYPES = ("application/json", "text/json")  # and application/*+json, as ASP.NET accepts them

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejected(Exception):
    """A request refused before (or while) its body is read: HTTP status, short reason, message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""


def body_limit(operation_ids: Iterable[str]) -> int:
    return max((BODY_LIMITS.get(op, SECTION2_BODY_LIMIT) for op in operation_ids), default=SECTION2_BODY_LIMIT)


def check_length(request: web.Request, limit: int, what: str) -> None:
    """413 from the header alone: a declared body larger than ``limit`` is never read."""
    length = request.content_length
    if length is not None and length > limit:
        raise Rejected(413, "too-large", f"{what} takes at most {limit} bytes; this body declares {length}")


def is_json(media_type: str) -> bool:
    return media_type in JSON_TYPES or (media_type.startswith("application/") and media_type.endswith("+json"))


def check_media(request: web.Request, accepted: Iterable[str], what: str) -> None:
    """415 for a body whose Content-Type the interface does not take (a missing one included)."""
    if not request.body_exists:
        return
    accepted = tuple(accepted)
    header = request.headers.get("Content-Type")
    media = request.content_type if header else ""
    if any(media == a or (a == "application/json" and is_json(media)) for a in accepted):
        return
    got = f"Content-Type {header!r}" if header else "no Content-Type"
    raise Rejected(415, "media-type", f"{what} takes {' or '.join(accepted)}, got {got}")


async def read_body(request: web.Request, limit: int, timeout_s: float, what: str) -> bytes:
    """The whole body, at most ``limit`` bytes (chunked bodies too) and within ``timeout_s`` seconds."""
    check_length(request, limit, what)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise Rejected(413, "too-large", f"{what} takes at most {limit} bytes; this body sent more")
                chunks.append(chunk)
    except TimeoutError:
        raise Rejected(
            408, "slow-body", f"the body of {what} did not arrive within {timeout_s:g} s ({size} bytes came)"
        ) from None
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ClientGone(f"{size} of {request.content_length or '?'} bytes, {exc or type(exc).__name__}") from None
    return b"".join(chunks)


async def read_admin_json(request: web.Request, timeout_s: float, *, empty: Any = None) -> Any:
    """An admin body as JSON (``empty`` when there is none), at most ``ADMIN_BODY_LIMIT`` bytes;
    ``ConfigError`` names what is wrong (the admin handlers answer it with 400)."""
    raw = await read_body(request, ADMIN_BODY_LIMIT, timeout_s, "the admin API")
    if not raw.strip():
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the body is not JSON: {exc}") from None


def refusal(request: web.Request, rejected: Rejected, refusals: Counter[str] | None = None) -> web.Response:
    """The answer to a refused request, logged by size and reason, counted, and, when a body came with it,
    the connection closed (the body is left unread)."""
    length = request.content_length
    log.warning(
        "refused %s %s from %s (%s bytes): %d %s",
        request.method,
        request.path,
        request.remote,
        length if length is not None else "unknown",
        rejected.status,
        rejected.message,
    )
    if refusals is not None:
        refusals[rejected.reason] += 1
    if request.path.startswith("/admin"):
        doc: dict[str, object] = {"error": rejected.message}
    else:
        doc = {"code": rejected.status, "msg": rejected.message}
    response = web.Response(body=orjson.dumps(doc), status=rejected.status, content_type="application/json")
    if request.body_exists:
        response.force_close()
    return response


def client_gone(
    request: web.Request, what: str, detail: ClientGone, refusals: Counter[str] | None = None
) -> web.Response:
    """One log line for a client that went away mid-body (no traceback); the answer reaches nobody."""
    log.warning("client %s went away during the body of %s (%s)", request.remote, what, detail)
    if refusals is not None:
        refusals["client-gone"] += 1
    response = web.Response(status=400)
    response.force_close()
    return response


def _presented_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Admin-Token", "").strip()


def check_admin_token(request: web.Request, expected: str) -> None:
    presented = _presented_token(request)
    if not presented:
        raise Rejected(401, "admin-token", "the admin API needs its token: send 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(presented.encode(errors="surrogateescape"), expected.encode()):
        raise Rejected(401, "admin-token", "the admin token is wrong (see the MES's start-up lines or its token file)")


@dataclass(frozen=True, slots=True)
class Interface:
    """What is checked of a section-2 path before its body is read, worked out once per path."""

    ops: tuple[Operation, ...]
    what: str  # "2.2 Heartbeat", or "2.28 Outbound/2.50 BoundOutbound" for a shared path
    limit: int  # bytes
    media: tuple[str, ...]  # the Content-Types the profile lets it take

    @classmethod
    def of(cls, ops: Sequence[Operation], media: Iterable[str]) -> Interface:
        what = "/".join(f"{op.section} {op.operation_id}" if op.section else op.operation_id for op in ops)
        return cls(tuple(ops), what, body_limit(op.operation_id for op in ops), tuple(media))


class Section2(Protocol):
    """What the guard needs of the MES: the interface at a path, if any."""

    def interface_at(self, path: str) -> Interface | None: ...


def middleware(mes: Section2, token: str, refusals: Counter[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Admin token, sizes and media types before any handler reads a body. Section 2 is checked here by
    path (size, media type); its token is the business one of 2.1, checked by the MES's pipeline."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        try:
            if path == "/admin" or path.startswith("/admin/"):
                check_admin_token(request, token)
                check_length(request, ADMIN_BODY_LIMIT, "the admin API")
                check_media(request, ("application/json",), "the admin API")
            elif (interface := mes.interface_at(path)) is not None:
                check_length(request, interface.limit, interface.what)
                if request.method == "POST":
                    check_media(request, interface.media, interface.what)
            else:
                check_length(request, OTHER_BODY_LIMIT, path)
        except Rejected as rejected:
            return refusal(request, rejected, refusals)
        return await handler(request)

    return guard
