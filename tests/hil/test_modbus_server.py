"""The virtual PLC over Modbus TCP, read and written by pymodbus's own client as a host PC would."""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient

from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.modbus_server import VirtualModbusPlc

DT = AsyncModbusTcpClient.DATATYPE


async def _plc(io_map: IoMap) -> tuple[IoImage, VirtualModbusPlc, AsyncModbusTcpClient]:
    image = IoImage(io_map)
    plc = VirtualModbusPlc(image, port=0)
    port = await plc.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    assert await client.connect()
    return image, plc, client


async def test_host_reads_the_image_at_the_mapped_addresses(modbus_map: IoMap) -> None:
    image, plc, client = await _plc(modbus_map)
    try:
        image.set_running(True)
        image.set("winding_tension", 25.3)
        image.set("winding_speed", 612.5)
        image.set_alarm(42)
        image.pulse_cycle("JR-A02-000017")
        bits = (await client.read_discrete_inputs(0, count=3, device_id=1)).bits[:3]
        assert bits == [True, True, True]  # run, cycle complete, cycle OK
        regs = (await client.read_input_registers(0, count=33, device_id=1)).registers
        assert regs[0] == 42
        assert client.convert_from_registers(regs[1:3], DT.UINT32) == 1
        assert client.convert_from_registers(regs[10:22], DT.STRING, string_encoding="ascii") == "JR-A02-000017"
        assert regs[30] == 253  # 25.3 N at scale 0.1
        assert client.convert_from_registers(regs[31:33], DT.FLOAT32) == 612.5
        await asyncio.sleep(modbus_map.pulse_s + 0.1)
        assert (await client.read_discrete_inputs(1, count=1, device_id=7)).bits[0] is False  # any unit id answers
    finally:
        client.close()
        await plc.stop()


async def test_host_writes_limits_and_interlock_but_not_what_the_plc_owns(modbus_map: IoMap) -> None:
    image, plc, client = await _plc(modbus_map)
    written: list[tuple[str, object]] = []
    image.on_host_write(lambda name, value: written.append((name, value)))
    try:
        reply = await client.write_registers(102, client.convert_to_registers(28.5, DT.FLOAT32), device_id=1)
        assert not reply.isError()
        assert not (await client.write_register(121, 90, device_id=1)).isError()  # 0.90 N at scale 0.01
        assert not (await client.write_coil(0, True, device_id=1)).isError()
        limits = image.read_limits()
        assert limits["WD0001"].upper == 28.5 and limits["WD0003"].upper == 0.9
        assert image.interlocked
        assert ("interlock", True) in written
        refused = await client.write_registers(100, client.convert_to_registers(1.0, DT.FLOAT32), device_id=1)
        assert refused.isError() and refused.exception_code == 2
        assert (await client.write_register(50, 1, device_id=1)).isError()  # unmapped
        assert image.read_limits()["WD0001"].value == 12.0
        assert plc.refused_writes == 2
        regs = (await client.read_holding_registers(102, count=2, device_id=1)).registers
        assert client.convert_from_registers(regs, DT.FLOAT32) == 28.5
    finally:
        client.close()
        await plc.stop()


async def test_watchdog_moves_while_served(modbus_map: IoMap) -> None:
    _image, plc, client = await _plc(modbus_map)
    try:
        first = (await client.read_input_registers(7, count=1, device_id=1)).registers[0]
        await asyncio.sleep(modbus_map.watchdog_s + 0.2)
        assert (await client.read_input_registers(7, count=1, device_id=1)).registers[0] != first
    finally:
        client.close()
        await plc.stop()
