"""A real PLC over Modbus TCP (pymodbus's asyncio client).

Reads are grouped into as few requests as the protocol allows (125 registers, 2000 bits per request, small
gaps read through), so one poll of a station costs a handful of round trips. pymodbus's own reconnect loop is
switched off: the watcher decides when to retry, and reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from twin.hil.codec import decode_span, encode_registers, spans
from twin.hil.iomap import BIT_TABLES, TABLES, Signal
from twin.hil.link import PlcLink, PlcRefused, PlcUnavailable

MAX_REGISTERS = 125
MAX_BITS = 2000


class ModbusLink(PlcLink):
    _client: AsyncModbusTcpClient | None = None

    async def connect(self) -> None:
        await self.close()
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0, reconnect_delay_max=0
        )
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as exc:
            client.close()
            raise PlcUnavailable(f"{self.endpoint}: {exc}") from exc
        if not ok:
            client.close()
            raise PlcUnavailable(f"{self.endpoint}: connection refused or timed out")
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _live(self) -> AsyncModbusTcpClient:
        if self._client is None or not self._client.connected:
            raise PlcUnavailable(f"{self.endpoint}: not connected")
        return self._client

    async def _call(self, what: str, request: Any) -> Any:
        try:
            reply = await request
        except (OSError, ModbusException, TimeoutError) as exc:
            raise PlcUnavailable(f"{self.endpoint}: {what}: {exc or type(exc).__name__}") from exc
        if reply.isError():
            raise PlcRefused(f"{self.endpoint}: {what}: PLC answered {reply}")
        return reply

    async def read(self, signals: Sequence[Signal]) -> dict[str, Any]:
        client = self._live()
        unit = self.map.unit
        out: dict[str, Any] = {}
        for table in TABLES:
            members = [s for s in signals if s.table == table]
            limit = MAX_BITS if table in BIT_TABLES else MAX_REGISTERS
            for start, count, group in spans(members, max_words=limit):
                what = f"read {table} {start}+{count}"
                if table == "coil":
                    words = (await self._call(what, client.read_coils(start, count=count, device_id=unit))).bits
                elif table == "discrete_input":
                    reply = await self._call(what, client.read_discrete_inputs(start, count=count, device_id=unit))
                    words = reply.bits
                elif table == "holding_register":
                    reply = await self._call(what, client.read_holding_registers(start, count=count, device_id=unit))
                    words = reply.registers
                else:
                    reply = await self._call(what, client.read_input_registers(start, count=count, device_id=unit))
                    words = reply.registers
                out.update(decode_span(self.map, group, start, words[:count]))
        return out

    async def write(self, signal: Signal, value: Any) -> None:
        client = self._live()
        unit, address = self.map.unit, signal.address or 0
        what = f"write {signal.name} ({signal.where})"
        if signal.table == "coil":
            await self._call(what, client.write_coil(address, bool(value), device_id=unit))
            return
        if signal.table != "holding_register":
            raise PlcRefused(f"{self.endpoint}: {what}: a {signal.table} cannot be written over Modbus")
        if signal.bit is not None:
            current = await self._call(what, client.read_holding_registers(address, count=1, device_id=unit))
            word = current.registers[0]
            word = word | (1 << signal.bit) if value else word & ~(1 << signal.bit)
            await self._call(what, client.write_register(address, word, device_id=unit))
            return
        regs = encode_registers(signal, signal.coerce(value), self.map.word_order)  # type: ignore[arg-type]
        await self._call(what, client.write_registers(address, regs, device_id=unit))
