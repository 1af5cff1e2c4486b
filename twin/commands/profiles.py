"""``twin profiles``: look into protocol profiles and check messages against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError, PayloadInvalid
from twin.profile import Operation, Profile, available_profiles, load_profile

DEFAULT_PROFILE = "qingke-mes-v1"

profile_option = click.option(
    "--profile",
    "-p",
    "profile_ref",
    default=DEFAULT_PROFILE,
    show_default=True,
    envvar="TWIN_PROFILE",
    help="Profile name (from profiles/) or path to an OpenAPI 3.x file, e.g. your MES's swagger.json.",
)


def _console() -> Console:
    return Console(highlight=False, markup=False, soft_wrap=False, width=140 if not Console().is_terminal else None)


def _section_key(op: Operation) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in (op.section or "99").split("."))
    except ValueError:
        return (99,)


@click.group()
def profiles() -> None:
    """Protocol profiles: the interfaces a protocol has, their fields, and its contradictions."""


@profiles.command("list")
@profile_option
@click.option("--all-profiles", is_flag=True, help="List the known profiles instead of one's operations.")
def list_(profile_ref: str, all_profiles: bool) -> None:
    """List the operations of a profile: section, id, method and path, Chinese name."""
    console = _console()
    if all_profiles:
        _list_profiles(console)
        return
    profile = load_profile(profile_ref)
    table = Table(title=f"{profile.title} ({profile.name}, {len(profile)} operations)", show_lines=False)
    for col in ("section", "operation", "method", "path", "name", "called"):
        table.add_column(col, overflow="fold")
    for op in sorted(profile, key=_section_key):
        table.add_row(
            op.section or "",
            op.operation_id,
            op.method.upper(),
            op.path,
            op.name_cn or op.summary,
            str(op.trigger.get("kind", "")),
        )
    console.print(table)


def _list_profiles(console: Console) -> None:
    """Every profile in profiles/: OpenAPI (request and answer) and AsyncAPI (messages) alike."""
    from twin.profile.asyncapi import load_asyncapi
    from twin.profile.loader import PROFILE_SUFFIXES, named_files

    table = Table()
    for col in ("name", "kind", "title", "operations", "file"):
        table.add_column(col, overflow="fold")
    openapi = available_profiles()
    for name, path in sorted(named_files("profiles", PROFILE_SUFFIXES).items()):
        if name in openapi:
            profile = load_profile(name)
            table.add_row(name, "OpenAPI", profile.title, str(len(profile)), _shown(path))
        else:
            short = name.removesuffix(".asyncapi")
            doc = load_asyncapi(short)
            table.add_row(short, "AsyncAPI", doc.title, f"{len(doc.messages)} messages", _shown(path))
    console.print(table)


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _auth(profile: Profile, op: Operation) -> str:
    """How a caller authenticates, from the profile's security schemes (a ``Token`` header, a bearer token...)."""
    if not op.needs_auth:
        return "none"
    doc = profile.document
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    found = doc.get("paths", {}).get(op.path, {}).get(op.method, {}).get("security", doc.get("security")) or []
    names = [n for req in found for n in req] or list(schemes)
    parts = []
    for n in names:
        s = schemes.get(n) or {}
        if s.get("type") == "apiKey":
            parts.append(f"{s.get('name', n)} {s.get('in', 'header')}")
        elif s.get("type") == "http":
            parts.append(f"{s.get('scheme', 'http')} token (Authorization header)")
        else:
            parts.append(n)
    return ", ".join(parts) or "bearer token (Authorization header)"


def _parameters(profile: Profile, op: Operation) -> dict[str, Any] | None:
    """The operation's parameters (query, header, path) as one object schema, for the request table."""
    doc = profile.document
    raw = [
        *(doc.get("paths", {}).get(op.path, {}).get("parameters") or []),
        *(doc.get("paths", {}).get(op.path, {}).get(op.method, {}).get("parameters") or []),
    ]
    props: dict[str, Any] = {}
    required = []
    for param in raw:
        if "$ref" in param:
            param = _resolve(doc, param["$ref"])
        name = f"{param.get('name', '?')} ({param.get('in', 'query')})"
        schema = dict(param.get("schema") or {})
        if "$ref" in schema:
            schema = {**_resolve(doc, schema.pop("$ref")), **schema}
        for key in ("description", "x-name-cn"):
            if param.get(key):
                schema.setdefault(key, param[key])
        props[name] = schema
        if param.get("required"):
            required.append(name)
    return {"type": "object", "properties": props, "required": required} if props else None


def _resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _fields_table(title: str, schema: dict[str, Any] | None) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("field", "type", "req", "name (cn)", "meaning / allowed values"):
        table.add_column(col, overflow="fold")

    def type_of(s: dict[str, Any]) -> str:
        if "anyOf" in s or "oneOf" in s:
            return " | ".join(type_of(a) for a in s.get("anyOf") or s.get("oneOf"))
        kind = s.get("type", "any")
        kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
        text = "/".join(kinds) or "null"
        if text == "array":
            text = f"array[{type_of(s.get('items') or {})}]"
        if s.get("format"):
            text += f" ({s['format']})"
        return text

    def alternatives(s: dict[str, Any]) -> list[dict[str, Any]]:
        """``s`` and the schemas it combines (allOf parts, anyOf/oneOf choices), nested ones too."""
        out = [s]
        for key in ("allOf", "anyOf", "oneOf"):
            for part in s.get(key) or []:
                if isinstance(part, dict):
                    out += alternatives(part)
        return out

    def has_fields(s: dict[str, Any]) -> bool:
        return any(alt.get("properties") for alt in alternatives(s))

    def walk(s: dict[str, Any], prefix: str, depth: int) -> None:
        for alt in alternatives(s):
            required = set(alt.get("required") or ())
            for name, sub in (alt.get("properties") or {}).items():
                allowed = ""
                if "enum" in sub:
                    desc = sub.get("x-enum-descriptions") or {}
                    allowed = ", ".join(f"{v}={desc.get(str(v), '')}".rstrip("=") for v in sub["enum"])
                aliases = f" (alias: {', '.join(sub['x-aliases'])})" if sub.get("x-aliases") else ""
                meaning = (sub.get("description") or "").strip()
                table.add_row(
                    prefix + name + aliases,
                    type_of(sub),
                    "yes" if name in required else "",
                    sub.get("x-name-cn", ""),
                    " ".join(p for p in (meaning, f"Allowed: {allowed}." if allowed else "") if p),
                )
                items = sub.get("items") if sub.get("type") == "array" or "items" in sub else None
                if isinstance(items, dict) and has_fields(items) and depth < 6:
                    walk(items, f"{prefix}{name}[].", depth + 1)
                elif has_fields(sub) and depth < 6:
                    walk(sub, f"{prefix}{name}.", depth + 1)

    walk(schema or {}, "", 0)
    return table


@profiles.command("show")
@click.argument("ref")
@profile_option
def show(ref: str, profile_ref: str) -> None:
    """Show one operation by section (2.27), operation id (Inbound) or path, with its fields."""
    console = _console()
    profile = load_profile(profile_ref)
    ops = profile.operations_at(ref) if ref.startswith("/") else [profile.operation(ref)]
    if not ops:
        ops = [profile.operation(ref)]
    for op in ops:
        console.rule(f"{op.section or ''} {op.operation_id} {op.name_cn or ''}")
        console.print(f"{op.method.upper()} {op.path}    auth: {_auth(profile, op)}")
        if op.summary:
            console.print(op.summary)
        if op.trigger:
            period = f" every {op.trigger['period_s']} s" if op.trigger.get("period_s") else ""
            console.print(f"called: {op.trigger.get('kind', '')}{period} — {op.trigger.get('text', '')}")
        if op.processes:
            console.print(f"processes: {', '.join(op.processes)}")
        params = _parameters(profile, op)
        if params is not None:
            console.print(_fields_table("request parameters", params))
        if op.request_schema or params is None:
            console.print(_fields_table("request body", op.request_schema))
        for status, schema in op.response_schemas.items():
            console.print(_fields_table(f"response {status}", schema))
        if op.contradictions:
            ref_hint = op.section or op.operation_id
            console.print(
                f"contradictions recorded: {len(op.contradictions)} (twin profiles contradictions {ref_hint})"
            )


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


@profiles.command("validate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--operation", "-o", "ref", required=True, help="Operation id, section or path.")
@click.option("--response", is_flag=True, help="FILE is a response body, not a request.")
@click.option("--status", default="200", show_default=True, help="HTTP status of the response (with --response).")
@profile_option
def validate(file: Path, ref: str, response: bool, status: str, profile_ref: str) -> None:
    """Check a JSON message against an operation of the profile (both casings accepted).

    Exits 0 when valid, 1 when not (the first problem is printed with its field path), 2 on bad input.
    """
    profile = load_profile(profile_ref)
    payload = _load_json(file)
    if response:
        op = profile.operation(ref)
        op.validate_response(payload, status)
    else:
        op, _, issues = _match(profile, ref, payload)
        if issues:
            raise PayloadInvalid(op.operation_id, issues)
    click.echo(f"valid: {file} is a valid {'response' if response else 'request'} of {op}")


def _match(profile: Profile, ref: str, payload: Any) -> tuple[Operation, Any, list]:
    if ref.startswith("/"):
        return profile.match(ref, payload)
    op = profile.operation(ref)
    data, issues = op.check_request(payload)
    return op, data, issues


@profiles.command("contradictions")
@click.argument("ref", required=False)
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def contradictions(ref: str | None, profile_ref: str, as_json: bool) -> None:
    """List every recorded contradiction of the spec with the choice the twin makes and why.

    REF limits the list to one operation (section, id or path).
    """
    profile = load_profile(profile_ref)
    rows: list[dict[str, Any]] = []
    if ref is None:
        rows += [{"operation": "(whole document)", **c} for c in profile.contradictions]
    ops = [profile.operation(ref)] if ref else sorted(profile, key=_section_key)
    for op in ops:
        rows += [{"operation": str(op), **c} for c in op.contradictions]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    console = _console()
    for row in rows:
        console.print(
            f"{row.get('id', '')} {row['operation']} [{row.get('kind', '')}] "
            f"fields: {', '.join(row.get('fields') or []) or '-'}"
        )
        for key in ("table", "example", "choice", "why"):
            if row.get(key):
                console.print(f"    {key:8} {str(row[key]).strip()}")
    console.print(f"{len(rows)} contradictions")
