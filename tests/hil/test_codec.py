"""Engineering values on the wire: word order, scaling, strings, packed bits, read grouping."""

from __future__ import annotations

from dataclasses import replace

from twin.hil.codec import decode_registers, decode_span, encode_registers, fill_table, spans
from twin.hil.iomap import IoMap, Signal


def test_float32_word_order_big_and_little() -> None:
    sig = Signal("speed", "float32", table="input_register", address=0)
    big = encode_registers(sig, 612.5, "big")
    assert big == [0x4419, 0x2000]
    assert encode_registers(sig, 612.5, "little") == [0x2000, 0x4419]
    assert decode_registers(sig, big, "big") == 612.5


def test_scaled_int16_round_trips_in_engineering_units() -> None:
    sig = Signal("tension", "int16", table="input_register", address=0, scale=0.1)
    assert encode_registers(sig, 25.3) == [253]
    assert encode_registers(sig, -1.5) == [0xFFF1]
    assert decode_registers(sig, [253]) == 25.3


def test_string_padded_with_nul_and_byte_swapped_when_asked() -> None:
    sig = Signal("barcode", "string", table="input_register", address=0, length=6)
    assert encode_registers(sig, "AB1") == [0x4142, 0x3100, 0x0000]
    assert decode_registers(sig, [0x4142, 0x3100, 0x0000]) == "AB1"
    swapped = replace(sig, byte_order="little")
    assert encode_registers(swapped, "AB1") == [0x4241, 0x0031, 0x0000]
    assert decode_registers(swapped, [0x4241, 0x0031, 0x0000]) == "AB1"
    gbk = replace(sig, encoding="gbk")
    assert decode_registers(gbk, encode_registers(gbk, "卷绕")) == "卷绕"


def test_bools_packed_in_register_bits() -> None:
    a = Signal("a", "bool", table="holding_register", address=3, bit=0)
    b = Signal("b", "bool", table="holding_register", address=3, bit=5)
    io_map = IoMap("m", "m", "modbus", (a, b))
    regs = fill_table(io_map, "holding_register", {"a": True, "b": True})
    assert regs == [0, 0, 0, 0b100001]
    assert decode_span(io_map, [a, b], 3, [0b100000]) == {"a": False, "b": True}


def test_spans_group_near_signals_and_split_far_ones(modbus_map: IoMap) -> None:
    groups = spans(modbus_map.in_table("input_register"), max_words=125)
    assert [(start, count) for start, count, _ in groups] == [(0, 33)]
    holding = spans(modbus_map.in_table("holding_register"), max_words=125)
    assert [(start, count) for start, count, _ in holding] == [(0, 2), (100, 36)]  # interlock code; the four parameters
    small = spans(modbus_map.in_table("input_register"), max_words=12)
    assert all(count <= 12 for _, count, _ in small)
    assert sum(len(members) for _, _, members in small) == len(modbus_map.in_table("input_register"))
