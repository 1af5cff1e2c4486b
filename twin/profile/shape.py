"""The field-name tree of a schema: how names are matched when receiving and spelt when sending.

A schema is turned once into a ``Shape``: for each object level, a map from lower-cased name (and every
``x-aliases`` entry) to the canonical name, the wire name in the profile's casing, and the sub-shape.
Receiving walks the payload with it to rename keys to the canonical names (so both casings and the
recorded aliases are accepted); sending walks it the other way. Both walks are plain dict look-ups, cheap
enough for the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.profile.casing import Casing, convert

SPELT_MAX = 256  # spellings remembered per object level


@dataclass(slots=True)
class Field:
    name: str
    wire: str
    shape: Shape | None


@dataclass(slots=True)
class Shape:
    fields: dict[str, Field] = field(default_factory=dict)
    items: Shape | None = None
    # Keys as spelt in payloads -> their field: every request and answer of a run spells its keys the same way,
    # and a look-up without ``lower()`` is a third of a walk's cost. Bounded (a peer may spell keys at random).
    spelt: dict[str, Field] = field(default_factory=dict)

    def lookup(self, key: str) -> Field | None:
        return self.fields.get(key.lower())


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    alts = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or ():
            if isinstance(sub, dict):
                alts.extend(_alternatives(sub))
    return alts


def shape_of(schema: dict[str, Any] | None, casing: Casing) -> Shape | None:
    """The name tree of a resolved schema, or None where it has no named fields below it."""
    if not isinstance(schema, dict):
        return None
    shape = Shape()
    for alt in _alternatives(schema):
        for name, sub in (alt.get("properties") or {}).items():
            f = Field(name, convert(name, casing), shape_of(sub, casing))
            shape.fields.setdefault(name.lower(), f)
            for alias in (sub.get("x-aliases") or ()) if isinstance(sub, dict) else ():
                shape.fields.setdefault(str(alias).lower(), f)
        items = alt.get("items")
        if isinstance(items, dict) and shape.items is None:
            shape.items = shape_of(items, casing)
    if not shape.fields and shape.items is None:
        return None
    return shape


def _rename(value: Any, shape: Shape | None, wire: bool) -> Any:
    """Walk a payload with its shape, renaming every known key (unknown keys are kept as sent)."""
    if shape is None:
        return value
    if isinstance(value, dict):
        out = {}
        spelt = shape.spelt
        for key, sub in value.items():
            f = spelt.get(key)
            if f is None:
                f = shape.fields.get(key.lower()) if isinstance(key, str) else None
                if f is None:
                    out[key] = sub
                    continue
                if len(spelt) < SPELT_MAX:
                    spelt[key] = f
            out[f.wire if wire else f.name] = _rename(sub, f.shape, wire) if f.shape is not None else sub
        return out
    if isinstance(value, list) and shape.items is not None:
        items = shape.items
        return [_rename(v, items, wire) for v in value]
    return value


def normalise(value: Any, shape: Shape | None) -> Any:
    """The payload with every known key renamed to its canonical name (as received, any casing)."""
    return _rename(value, shape, wire=False)


def encode(value: Any, shape: Shape | None) -> Any:
    """The payload with every known key spelt in the wire casing (to send)."""
    return _rename(value, shape, wire=True)


def sent_path(payload: Any, canonical_path: list[str | int], shape: Shape | None) -> str:
    """Render a canonical field path with the key spelling the sender used (``sfcList[2].passed``).

    Keys absent from the payload (a missing required field) are spelt in the wire casing.
    """
    parts: list[str] = []
    node, sh = payload, shape
    for step in canonical_path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
            node = node[step] if isinstance(node, list) and step < len(node) else None
            sh = sh.items if sh is not None else None
            continue
        f = sh.lookup(step) if sh is not None else None
        spelt = f.wire if f is not None else step
        if isinstance(node, dict) and f is not None:
            for key in node:
                if isinstance(key, str) and sh is not None and sh.lookup(key) is f:
                    spelt = key
                    break
        parts.append(("." if parts else "") + spelt)
        node = node.get(spelt) if isinstance(node, dict) else None
        sh = f.shape if f is not None else None
    return "".join(parts)
