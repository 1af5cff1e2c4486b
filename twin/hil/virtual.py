"""Virtual PLCs: a station's I/O image served over Modbus TCP or OPC UA for a real host PC to read.

``serve_plc(image, host=..., port=...)`` picks the server the map's protocol names; both share this base, which
runs what any PLC program does regardless of the wire: the watchdog counter that tells a host the PLC is alive.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from twin.hil.events import cancel_and_wait
from twin.hil.image import IoImage

log = logging.getLogger(__name__)


class VirtualPlc(ABC):
    """Serves one image; ``start`` returns the port actually bound (give 0 for a free one)."""

    protocol = ""

    def __init__(self, image: IoImage, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.image = image
        self.host = host
        self.port = port if port is not None else (image.map.port or 0)
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> int:
        self.port = await self._serve()
        if self.image.map.role("watchdog") is not None:
            self._watchdog = asyncio.create_task(self._tick(), name=f"watchdog {self.image.map.name}")
        log.info("virtual PLC %s serving %s on %s", self.image.map.name, self.protocol, self.url)
        return self.port

    async def stop(self) -> None:
        await cancel_and_wait(self._watchdog)
        self._watchdog = None
        await self._close()

    async def __aenter__(self) -> VirtualPlc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.image.map.watchdog_s)
            self.image.tick_watchdog()

    @abstractmethod
    async def _serve(self) -> int: ...

    @abstractmethod
    async def _close(self) -> None: ...
