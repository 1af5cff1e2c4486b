"""Engineering values <-> Modbus registers and bits, as an I/O map lays them out.

Numbers go through pymodbus's own converters (``convert_to_registers`` / ``convert_from_registers``: struct
packing, word order). What they do not do is written here: scaling (``raw * scale``), strings padded to a fixed
capacity with optional byte swapping inside each register (many PLCs store strings low byte first), and bools
packed into one bit of a register.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pymodbus.client.mixin import ModbusClientMixin

from twin.hil.iomap import BIT_TABLES, IoMap, Signal

DATATYPE = ModbusClientMixin.DATATYPE
_TYPES = {
    "int16": DATATYPE.INT16,
    "uint16": DATATYPE.UINT16,
    "int32": DATATYPE.INT32,
    "uint32": DATATYPE.UINT32,
    "float32": DATATYPE.FLOAT32,
    "float64": DATATYPE.FLOAT64,
}


def _swap(regs: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in regs]


def to_raw(sig: Signal, value: Any) -> Any:
    """The number the PLC stores for an engineering value (integers rounded after scaling)."""
    if sig.scale is None or sig.type in ("bool", "string"):
        return value
    raw = value / sig.scale
    return round(raw) if sig.type in ("int16", "uint16", "int32", "uint32") else raw


def from_raw(sig: Signal, raw: Any) -> Any:
    """The engineering value of a raw number; a float32 is rounded to the 7 digits it carries (25.3, not
    25.299999237060547), so values read back print as they were written."""
    if sig.type == "float32" and isinstance(raw, float):
        raw = float(f"{raw:.7g}")
    if sig.scale is None or sig.type in ("bool", "string"):
        return raw
    return float(f"{raw * sig.scale:.12g}")


def encode_registers(sig: Signal, value: Any, word_order: Literal["big", "little"] = "big") -> list[int]:
    """Registers of one non-bit value (a bool takes a whole register: 0 or 1)."""
    if sig.type == "bool":
        return [1 if value else 0]
    if sig.type == "string":
        data = str(value).encode(sig.encoding).ljust(sig.size * 2, b"\0")[: sig.size * 2]
        regs = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return _swap(regs) if sig.byte_order == "little" else regs
    return ModbusClientMixin.convert_to_registers(to_raw(sig, value), _TYPES[sig.type], word_order=word_order)


def decode_registers(sig: Signal, regs: Sequence[int], word_order: Literal["big", "little"] = "big") -> Any:
    if sig.type == "bool":
        return bool(regs[0])
    if sig.type == "string":
        words = _swap(list(regs)) if sig.byte_order == "little" else list(regs)
        data = b"".join(r.to_bytes(2, "big") for r in words)
        return data.split(b"\0", 1)[0].decode(sig.encoding, errors="replace")
    raw = ModbusClientMixin.convert_from_registers(list(regs), _TYPES[sig.type], word_order=word_order)
    return from_raw(sig, raw)


def fill_table(io_map: IoMap, table: str, values: dict[str, Any]) -> list[int] | list[bool]:
    """The whole table (addresses 0..n-1) as the image holds it; unmapped addresses read 0."""
    size = io_map.table_size(table)
    if table in BIT_TABLES:
        bits = [False] * size
        for sig in io_map.in_table(table):
            bits[sig.address or 0] = bool(values[sig.name])
        return bits
    regs = [0] * size
    for sig in io_map.in_table(table):
        addr = sig.address or 0
        if sig.bit is not None:
            mask = 1 << sig.bit
            regs[addr] = (regs[addr] | mask) if values[sig.name] else (regs[addr] & ~mask)
        else:
            regs[addr : addr + sig.size] = encode_registers(sig, values[sig.name], io_map.word_order)  # type: ignore[arg-type]
    return regs


def decode_span(io_map: IoMap, signals: Iterable[Signal], start: int, words: Sequence[Any]) -> dict[str, Any]:
    """Values of the signals found in a block read from ``start`` (registers, or bits of a bit table)."""
    out: dict[str, Any] = {}
    for sig in signals:
        offset = (sig.address or 0) - start
        if offset < 0 or offset + sig.size > len(words):
            continue
        if sig.table in BIT_TABLES:
            out[sig.name] = bool(words[offset])
        elif sig.bit is not None:
            out[sig.name] = bool((words[offset] >> sig.bit) & 1)
        else:
            out[sig.name] = decode_registers(sig, words[offset : offset + sig.size], io_map.word_order)  # type: ignore[arg-type]
    return out


def spans(signals: Iterable[Signal], *, max_words: int, max_gap: int = 8) -> list[tuple[int, int, list[Signal]]]:
    """Signals of one table grouped into blocks a client can read in one request: (start, count, signals)."""
    ordered = sorted(signals, key=lambda s: s.address or 0)
    out: list[tuple[int, int, list[Signal]]] = []
    for sig in ordered:
        addr, end = sig.address or 0, (sig.address or 0) + sig.size
        if out:
            start, count, members = out[-1]
            if addr - (start + count) <= max_gap and max(end, start + count) - start <= max_words:
                out[-1] = (start, max(end, start + count) - start, [*members, sig])
                continue
        out.append((addr, end - addr, [sig]))
    return out
