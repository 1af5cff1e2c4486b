"""Pick the Modbus TCP or OPC UA side for an I/O map: the link a host or watcher reads a PLC through, and the
virtual PLC the twin serves.

The protocol modules import pymodbus or asyncua (the ``hil`` extra) and are imported here only when a map asks
for them, so the base classes (``PlcLink``, ``VirtualPlc``) and the I/O maps work without the extra, and no
base module has to know its own subclasses.
"""

from __future__ import annotations

from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.link import PlcLink
from twin.hil.virtual import VirtualPlc


def connect_plc(io_map: IoMap, host: str, port: int | None = None, *, timeout_s: float = 2.0) -> PlcLink:
    """The link for the map's protocol (not connected yet); the port defaults to the map's, then 502 / 4840."""
    if io_map.protocol == "modbus":
        from twin.hil.modbus_link import ModbusLink  # pymodbus: the hil extra

        return ModbusLink(io_map, host, port or io_map.port or 502, timeout_s=timeout_s)
    from twin.hil.opcua_link import OpcUaLink  # asyncua: the hil extra

    return OpcUaLink(io_map, host, port or io_map.port or 4840, timeout_s=timeout_s)


def serve_plc(image: IoImage, *, host: str = "127.0.0.1", port: int | None = None) -> VirtualPlc:
    """The virtual PLC for the image's map protocol (not started yet)."""
    if image.map.protocol == "modbus":
        from twin.hil.modbus_server import VirtualModbusPlc  # pymodbus: the hil extra

        return VirtualModbusPlc(image, host=host, port=port)
    from twin.hil.opcua_server import VirtualOpcUaPlc  # asyncua: the hil extra

    return VirtualOpcUaPlc(image, host=host, port=port)
