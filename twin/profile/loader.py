"""Load an OpenAPI 3.x document into a ``Profile``.

Profiles are found by path, or by name in the profile folders (``./profiles``, ``$TWIN_PROFILES``, the
checkout's ``profiles/`` and the copy installed with the package). Local ``$ref``s are inlined once at load
time, so every later look-up is a plain dict access.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from twin.datadirs import named_files, search_dirs
from twin.errors import ProfileError
from twin.profile.casing import CASINGS, Casing
from twin.profile.model import Operation, Profile

PROFILE_SUFFIXES = (".openapi.yaml", ".openapi.yml", ".openapi.json", ".yaml", ".yml", ".json")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REF_DEPTH = 64
# libyaml's loader parses the 11,000-line MES profile about 10x faster than the pure-Python one.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name, first match wins (see ``twin.datadirs``)."""
    return search_dirs("profiles")


def available_profiles() -> dict[str, Path]:
    """OpenAPI profiles by name (AsyncAPI documents are loaded by ``twin.profile.asyncapi``)."""
    return {n: p for n, p in named_files("profiles", PROFILE_SUFFIXES).items() if not n.endswith(".asyncapi")}


def find_profile(ref: str | Path) -> Path:
    path = Path(ref)
    if path.is_file():
        return path
    found = available_profiles()
    if str(ref) in found:
        return found[str(ref)]
    names = ", ".join(sorted(found)) or "none"
    raise ProfileError(f"no profile {str(ref)!r}: not a file, and not one of the known profiles ({names})")


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_YamlLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ProfileError(f"profile {path} is not valid {kind}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProfileError(f"profile {path} must be a mapping at the top, got {type(doc).__name__}")
    return doc


def resolve_refs(node: Any, doc: dict[str, Any], depth: int = 0) -> Any:
    """Inline every local ``$ref`` (``#/...``); sibling keys of a ``$ref`` are kept (OpenAPI 3.1)."""
    if depth > _MAX_REF_DEPTH:
        raise ProfileError("profile has $ref chains deeper than 64: a reference cycle?")
    if isinstance(node, list):
        return [resolve_refs(v, doc, depth) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and isinstance(node["$ref"], str):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ProfileError(f"only local $ref are supported, got {ref!r}")
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise ProfileError(f"$ref {ref!r} points at nothing")
            target = target[part]
        merged = resolve_refs(target, doc, depth + 1)
        extra = {k: resolve_refs(v, doc, depth) for k, v in node.items() if k != "$ref"}
        return {**merged, **extra} if extra else merged
    return {k: resolve_refs(v, doc, depth) for k, v in node.items()}


def _examples(media: dict[str, Any]) -> dict[str, Any]:
    out = {name: ex.get("value") for name, ex in (media.get("examples") or {}).items() if isinstance(ex, dict)}
    if "example" in media:
        out.setdefault("example", media["example"])
    return out


def _json_media(body: dict[str, Any] | None) -> dict[str, Any] | None:
    content = (body or {}).get("content") or {}
    for mime, media in content.items():
        if "json" in mime and isinstance(media, dict):
            return media
    return None


def _operation(
    path: str, method: str, op: dict[str, Any], path_item: dict[str, Any], doc: dict[str, Any], casing: Casing
) -> Operation:
    media = _json_media(op.get("requestBody"))
    responses: dict[str, dict[str, Any]] = {}
    response_examples: dict[str, dict[str, Any]] = {}
    for status, resp in (op.get("responses") or {}).items():
        rmedia = _json_media(resp)
        if rmedia and "schema" in rmedia:
            responses[str(status)] = rmedia["schema"]
            response_examples[str(status)] = _examples(rmedia)
    security = op.get("security", doc.get("security"))
    op_id = op.get("operationId") or path.rstrip("/").rsplit("/", 1)[-1] or method
    return Operation(
        operation_id=str(op_id),
        method=method,
        path=path.replace(" ", "").rstrip("/"),
        casing=casing,
        section=str(op["x-section"]) if "x-section" in op else None,
        name_cn=op.get("x-name-cn"),
        summary=op.get("summary", ""),
        description=op.get("description", ""),
        trigger=op.get("x-trigger") or {},
        processes=tuple(op.get("x-processes") or ()),
        contradictions=tuple(op.get("x-contradictions") or ()),
        needs_auth=bool(security),
        success_codes=tuple(op.get("x-success-codes") or doc.get("x-success-codes") or (0,)),
        direction=op.get("x-direction") or doc.get("x-direction") or "client-to-server",
        servers=tuple(op.get("servers") or path_item.get("servers") or ()),
        request_schema=media.get("schema") if media else None,
        response_schemas=responses,
        request_examples=_examples(media) if media else {},
        response_examples=response_examples,
        extensions={k: v for k, v in op.items() if k.startswith("x-")},
    )


def _operations(doc: dict[str, Any], casing: Casing) -> Iterable[Operation]:
    for path, item in (doc.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            variants = op.get("x-variants")
            if not variants:
                yield _operation(path, method, op, item, doc, casing)
                continue
            # Two spec sections served at one path: each variant is its own logical operation, inheriting
            # what it does not say from the HTTP operation.
            for variant_id, variant in variants.items():
                merged = {k: v for k, v in op.items() if k != "x-variants"}
                merged.update(variant)
                merged["operationId"] = variant.get("operationId", variant_id)
                yield _operation(path, method, merged, item, doc, casing)


def load_profile(ref: str | Path, *, casing: Casing | None = None) -> Profile:
    """Load a profile by file path or by name (``qingke-mes-v1``).

    The casing sent on the wire is, by precedence: ``casing``, ``$TWIN_CASING``, the profile's
    ``x-casing``, camelCase.
    """
    path = find_profile(ref)
    raw = read_document(path)
    version = str(raw.get("openapi", ""))
    if not version.startswith("3."):
        found = f"swagger {raw['swagger']}" if "swagger" in raw else (f"openapi {version}" if version else "none")
        raise ProfileError(f"profile {path} must be an OpenAPI 3.x document (found {found})")
    doc = resolve_refs(raw, raw)
    chosen = casing or os.environ.get("TWIN_CASING") or doc.get("x-casing") or "camelCase"
    if chosen not in CASINGS:
        raise ProfileError(f"casing must be one of {', '.join(CASINGS)}, got {chosen!r}")
    operations: dict[str, Operation] = {}
    for op in _operations(doc, chosen):
        if op.operation_id in operations:
            raise ProfileError(f"profile {path}: operationId {op.operation_id!r} is used twice")
        operations[op.operation_id] = op
    info = doc.get("info") or {}
    name = path.name
    for suffix in PROFILE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Profile(
        name=name,
        source=path,
        title=str(info.get("title", name)),
        version=str(info.get("version", "")),
        casing=chosen,
        operations=operations,
        document=raw,
        autofill=dict(doc.get("x-autofill") or {}),
        contradictions=tuple(doc.get("x-contradictions") or ()),
    )
