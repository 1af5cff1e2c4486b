"""Compiled payload validation with errors that name the field as it was sent.

Schemas are compiled once per operation with fastjsonschema (generated Python code: tens of thousands of
validations per second, see ``benchmarks/bench_validation.py``). A payload is first renamed to the
canonical field names (both casings and recorded aliases accepted), then checked; the first violation is
reported with its path in the sender's spelling and the rule it broke.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import fastjsonschema

from twin.errors import Issue
from twin.profile.casing import Casing
from twin.profile.shape import Shape, normalise, sent_path, shape_of

# OpenAPI-only keywords that JSON Schema validators should not see.
_OPENAPI_ONLY = ("discriminator", "xml", "externalDocs", "example", "readOnly", "writeOnly", "deprecated")


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A resolved OpenAPI schema as plain JSON Schema (OpenAPI 3.0 ``nullable`` folded into ``type``)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if not k.startswith("x-") and k not in _OPENAPI_ONLY}
        if out.pop("nullable", False) and "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out

    return walk(copy.deepcopy(schema))


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(rule: str | None, definition: dict[str, Any], rule_value: Any) -> str:
    kind = definition.get("type")
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k and k != "null"]
    noun = " or ".join(kinds)
    if rule == "enum" or (rule == "type" and "enum" in definition):
        values = [v for v in definition.get("enum", rule_value) if v is not None]
        listed = (
            " or ".join(_show(v) for v in values)
            if len(values) <= 2
            else "one of " + ", ".join(_show(v) for v in values)
        )
        return f"expected {noun} {listed}".replace("  ", " ")
    if rule == "type":
        return f"expected {noun}"
    if rule == "format":
        return f"expected a {rule_value} string (e.g. 2024-03-01T01:45:11.344Z)"
    if rule in ("anyOf", "oneOf"):
        return "expected one of the shapes the profile allows"
    if rule in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern", "const"):
        return f"expected {rule} {_show(rule_value)}"
    return f"breaks rule {rule}"


class CompiledSchema:
    """One payload schema, compiled once; ``check`` returns the normalised payload and any issues."""

    __slots__ = ("_validate", "json_schema", "label", "shape")

    def __init__(self, schema: dict[str, Any], casing: Casing, label: str) -> None:
        self.label = label
        self.shape: Shape | None = shape_of(schema, casing)
        self.json_schema = to_json_schema(schema)
        self._validate = fastjsonschema.compile(self.json_schema)

    def check(self, payload: Any) -> tuple[Any, list[Issue]]:
        data = normalise(payload, self.shape)
        try:
            self._validate(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            return data, [self._issue(payload, exc)]
        return data, []

    def _issue(self, payload: Any, exc: fastjsonschema.JsonSchemaValueException) -> Issue:
        # fastjsonschema's path starts at its "data" root and spells array indices as digit strings.
        path: list[str | int] = [int(p) if isinstance(p, str) and p.isdigit() else p for p in (exc.path or [])[1:]]
        definition = exc.definition if isinstance(exc.definition, dict) else {}
        if exc.rule == "required":
            present = exc.value if isinstance(exc.value, dict) else {}
            missing = [k for k in exc.rule_definition or () if k not in present]
            name = missing[0] if missing else "?"
            return Issue(sent_path(payload, [*path, name], self.shape), "required field is missing")
        where = sent_path(payload, path, self.shape)
        return Issue(where, f"{_expected(exc.rule, definition, exc.rule_definition)}, got {_show(exc.value)}")
