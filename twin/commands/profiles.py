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
        for name, path in available_profiles().items():
            console.print(f"{name:28} {path}")
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

    def walk(s: dict[str, Any], prefix: str, depth: int) -> None:
        for alt in [s, *(s.get("anyOf") or []), *(s.get("oneOf") or [])]:
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
                if isinstance(items, dict) and items.get("properties") and depth < 6:
                    walk(items, f"{prefix}{name}[].", depth + 1)
                elif sub.get("properties") and depth < 6:
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
        console.print(f"{op.method.upper()} {op.path}    auth: {'bearer token' if op.needs_auth else 'none'}")
        if op.summary:
            console.print(op.summary)
        if op.trigger:
            period = f" every {op.trigger['period_s']} s" if op.trigger.get("period_s") else ""
            console.print(f"called: {op.trigger.get('kind', '')}{period} — {op.trigger.get('text', '')}")
        if op.processes:
            console.print(f"processes: {', '.join(op.processes)}")
        console.print(_fields_table("request", op.request_schema))
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
