"""The virtual PLC over Modbus TCP: pymodbus's server, its memory kept in step with the I/O image.

pymodbus (``SimDevice``) holds four tables (coils, discrete inputs, holding and input registers) and calls an
``action`` before each request touches them. The action refreshes the addressed table from the image, so a
host always reads the model's current values (and a pulse that has ended reads 0), and turns the host's
writes into ``IoImage.host_write`` calls: a write to a signal the PLC owns, or to an unmapped address, is
refused with exception 02 (illegal data address), as a PLC does for a read-only area.
"""

from __future__ import annotations

import logging
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from twin.errors import ConfigError
from twin.hil.codec import decode_span, fill_table
from twin.hil.iomap import BIT_TABLES, TABLES, IoMap, Signal
from twin.hil.virtual import VirtualPlc

log = logging.getLogger(__name__)

#: Function code -> table it touches (1/5/15 coils, 2 discrete inputs, 3/6/16 holding, 4 input registers).
FC_TABLE = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete_input",
    3: "holding_register",
    6: "holding_register",
    16: "holding_register",
    4: "input_register",
}


def _pack(bits: list[bool], width: int) -> list[int]:
    """Bits into 16-bit registers, bit 0 first (pymodbus's layout of a bit table)."""
    regs = [0] * width
    for i, bit in enumerate(bits):
        if bit:
            regs[i // 16] |= 1 << (i % 16)
    return regs


def _device(io_map: IoMap, action: Any) -> SimDevice:
    blocks: list[list[SimData]] = []
    for table in TABLES:
        size = max(io_map.table_size(table), 1)
        if table in BIT_TABLES:
            blocks.append([SimData(0, count=size, values=False, datatype=DataType.BITS)])
        else:
            blocks.append([SimData(0, count=size, values=0, datatype=DataType.REGISTERS)])
    # id 0 answers every unit id: Modbus TCP gateways and hosts disagree on which one a PLC has.
    return SimDevice(0, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]), action=action)


class VirtualModbusPlc(VirtualPlc):
    protocol = "modbus"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server: ModbusTcpServer | None = None
        self.requests = 0
        self.refused_writes = 0

    async def _serve(self) -> int:
        self._server = ModbusTcpServer(_device(self.image.map, self._action), address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        listener = self._server.transport
        return listener.sockets[0].getsockname()[1] if listener is not None else self.port  # type: ignore[attr-defined]

    async def _close(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def _action(
        self,
        function_code: int,
        _start: int,
        address: int,
        _count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Refresh the table from the image; apply a host's write to the image first."""
        self.requests += 1
        table = FC_TABLE.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION  # 22 mask write, 23 read/write: not offered
        io_map = self.image.map
        current = fill_table(io_map, table, self.image.snapshot())
        if values is not None:
            refusal = self._write(table, address, list(values), list(current))
            if refusal is not None:
                self.refused_writes += 1
                return refusal
            current = fill_table(io_map, table, self.image.snapshot())
        if table in BIT_TABLES:
            packed = _pack(current, len(registers))  # type: ignore[arg-type]
            registers[: len(packed)] = packed
        else:
            registers[: len(current)] = current  # type: ignore[assignment]
        return None

    def _write(self, table: str, address: int, values: list[Any], current: list[Any]) -> ExcCodes | None:
        io_map = self.image.map
        touched: dict[str, Signal] = {}
        for addr in range(address, address + len(values)):
            owners = [s for s in io_map.in_table(table) if (s.address or 0) <= addr < (s.address or 0) + s.size]
            if not owners or any(not s.host_writable for s in owners):
                what = ", ".join(s.name for s in owners) or "nothing"
                log.warning("host write to %s %d refused: %s is not written by the host", table, addr, what)
                return ExcCodes.ILLEGAL_ADDRESS
            touched.update((s.name, s) for s in owners)
        if address + len(values) > len(current):
            return ExcCodes.ILLEGAL_ADDRESS
        current[address : address + len(values)] = [bool(v) for v in values] if table in BIT_TABLES else values
        decoded = decode_span(io_map, touched.values(), 0, current)
        try:
            for name, value in decoded.items():
                self.image.host_write(name, value)
        except (ConfigError, PermissionError) as exc:
            log.warning("host write refused: %s", exc)
            return ExcCodes.ILLEGAL_VALUE
        return None
