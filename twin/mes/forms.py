"""2.54 EquFileUpload as multipart/form-data (its 特别说明): the form read into the JSON view of the
request (2.54-1), so it is validated by the same schema. Form fields are text; where the schema wants an
integer (Type, Passed) a decimal text is read as the number. Files become FormCollection entries (name,
file name, size); their content is not kept."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from twin.profile import Operation


def _wants_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


async def read_form(request: web.Request, op: Operation) -> tuple[dict[str, Any], bytes]:
    """The form as a request body, and its JSON text for the exchange log."""
    form = await request.post()
    props = {k.lower(): v for k, v in ((op.request_schema or {}).get("properties") or {}).items()}
    fields: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    for key, value in form.items():
        if isinstance(value, web.FileField):
            size = len(value.file.read())
            files.append({"Name": key, "FileName": value.filename, "Length": size})
            continue
        text = str(value)
        schema = props.get(key.lower()) or {}
        fields[key] = int(text) if _wants_integer(schema) and text.strip().lstrip("-").isdigit() else text
    if not any(k.lower() == "formcollection" for k in fields):
        fields["FormCollection"] = files or None
    return fields, orjson.dumps(fields)
