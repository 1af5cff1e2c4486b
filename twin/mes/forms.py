"""2.54 EquFileUpload as multipart/form-data (its 特别说明): the form read into the JSON view of the
request (2.54-1), so it is validated by the same schema. Form fields are text; where the schema wants an
integer (Type, Passed) a decimal text is read as the number. Files become FormCollection entries (name,
file name, size); their content is streamed, counted and dropped (never kept, not even in a temporary
file). A form that cannot be read is a 400, one too large a 413, one too slow a 408."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from twin.mes.guard import ClientGone, Rejected
from twin.profile import Operation
from twin.profile.casing import lower_keys

log = logging.getLogger(__name__)


def _wants_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


TEXT_FIELD_LIMIT = 64 * 1024  # a form's text field is a code, a time or a flag: more is not a field


async def _parts(request: web.Request, limit: int, what: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Stream the form: text fields read (each at most ``TEXT_FIELD_LIMIT``), files counted and dropped,
    the whole at most ``limit`` bytes. Nothing is written to disk."""
    fields: dict[str, str] = {}
    files: list[dict[str, Any]] = []
    total = 0
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise ValueError("a multipart part nested in another is not taken")
        name, filename = part.name or "", part.filename
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(65536):
            size += len(chunk)
            total += len(chunk)
            if total > limit:
                raise Rejected(413, "too-large", f"{what} takes at most {limit} bytes; this form sent more")
            if filename is None:
                if size > TEXT_FIELD_LIMIT:
                    raise ValueError(f"field {name!r} is longer than {TEXT_FIELD_LIMIT} bytes")
                chunks.append(chunk)
        if filename is not None:
            files.append({"Name": name, "FileName": filename, "Length": size})
        else:
            fields[name] = b"".join(chunks).decode(part.get_charset("utf-8"), errors="replace")
    return fields, files


async def _read_parts(
    request: web.Request, limit: int, timeout_s: float, what: str
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The form within ``timeout_s``; a form that cannot be read (no boundary, truncated, malformed parts)
    is a 400 naming why."""
    length = request.content_length
    try:
        async with asyncio.timeout(timeout_s):
            return await _parts(request, limit, what)
    except Rejected:
        raise
    except TimeoutError:
        raise Rejected(408, "slow-body", f"the form of {what} did not arrive within {timeout_s:g} s") from None
    except ConnectionError as exc:
        raise ClientGone(f"{length if length is not None else '?'} bytes declared, {exc}") from None
    except Exception as exc:  # hostile input: whatever the multipart parser trips on is the sender's fault
        log.debug("unreadable form for %s", what, exc_info=True)
        raise Rejected(
            400, "bad-form", f"the multipart/form-data body of {what} cannot be read: {exc or type(exc).__name__}"
        ) from None


async def read_form(
    request: web.Request, op: Operation, *, limit: int, timeout_s: float, what: str
) -> tuple[dict[str, Any], bytes]:
    """The form as a request body, and its JSON text for the exchange log."""
    form, files = await _read_parts(request, limit, timeout_s, what)
    props = lower_keys((op.request_schema or {}).get("properties") or {})
    fields: dict[str, Any] = {}
    for key, text in form.items():
        schema = props.get(key.lower()) or {}
        fields[key] = int(text) if _wants_integer(schema) and text.strip().lstrip("-").isdigit() else text
    if not any(k.lower() == "formcollection" for k in fields):
        fields["FormCollection"] = files or None
    return fields, orjson.dumps(fields)
