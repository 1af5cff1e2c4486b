"""The wire to a real PLC: read signals of an I/O map, write the host's ones, over Modbus TCP or OPC UA.

A link only moves values; it does not retry. Any failure to reach or talk to the PLC is raised as
``PlcUnavailable`` (a ``ConnectionError``), so the watcher above can report it, back off and reconnect; a
value the PLC refuses to take is ``PlcRefused``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from twin.errors import TwinError
from twin.hil.iomap import IoMap, Signal


class PlcError(TwinError):
    """A PLC could not be read or written."""


class PlcUnavailable(PlcError, ConnectionError):
    """No connection to the PLC, or it stopped answering."""


class PlcRefused(PlcError):
    """The PLC answered a read or write with an error (exception code, bad status)."""


class PlcLink(ABC):
    """One connection to one PLC, described by an I/O map."""

    def __init__(self, io_map: IoMap, host: str, port: int, *, timeout_s: float = 2.0) -> None:
        self.map = io_map
        self.host = host
        self.port = port
        self.timeout_s = timeout_s

    @property
    def endpoint(self) -> str:
        return f"{self.map.protocol}://{self.host}:{self.port}"

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection; ``PlcUnavailable`` when the PLC cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Close quietly, whatever state the connection is in."""

    @abstractmethod
    async def read(self, signals: Sequence[Signal]) -> dict[str, Any]:
        """Current engineering values of the signals, by name."""

    @abstractmethod
    async def write(self, signal: Signal, value: Any) -> None:
        """Write one value the host owns."""

    async def read_all(self) -> dict[str, Any]:
        return await self.read(self.map.signals)
