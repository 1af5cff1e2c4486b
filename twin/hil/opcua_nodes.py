"""Where a signal of an I/O map lives in OPC UA and how its value is typed: shared by the virtual PLC (server)
and the link a watcher reads a real PLC through (client), so both sides agree on ids and variant types."""

from __future__ import annotations

from typing import Any

from asyncua import ua

from twin.hil.codec import to_raw
from twin.hil.iomap import Signal

VARIANTS = {
    "bool": ua.VariantType.Boolean,
    "int16": ua.VariantType.Int16,
    "uint16": ua.VariantType.UInt16,
    "int32": ua.VariantType.Int32,
    "uint32": ua.VariantType.UInt32,
    "float32": ua.VariantType.Float,
    "float64": ua.VariantType.Double,
    "string": ua.VariantType.String,
}


def node_id(sig: Signal, namespace_index: int) -> ua.NodeId:
    """Absolute ids (``ns=3;s=...``, ``i=2258``) as written; relative ones in the map's namespace."""
    text = sig.node or sig.name
    if text.startswith(("ns=", "i=", "s=", "g=", "b=")):
        return ua.NodeId.from_string(text)
    return ua.NodeId(text, namespace_index)


def variant(sig: Signal, value: Any) -> ua.Variant:
    return ua.Variant(to_raw(sig, value), VARIANTS[sig.type])
