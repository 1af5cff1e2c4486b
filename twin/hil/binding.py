"""A station bound to a PLC in a line file (``plc:``), and what ``twin run`` opens for it.

``plc: {serve: modbus, map: winder.modbus}`` makes the twin serve that equipment's I/O image (a virtual PLC,
driven by the line model through ``BoundPlc.image``); ``plc: {connect: opcua, map: ..., address: HOST[:PORT]}``
makes a real PLC the source of that equipment's state and cycles (``BoundPlc.watcher`` reports them as
events) and the target of its interlocks. The key's schema is ``lines/plc/schema/station-plc.schema.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from twin.errors import ConfigError
from twin.hil.events import Backoff, InterlockCheck
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap, IoMapError, load_io_map, map_dirs
from twin.hil.link import connect_plc
from twin.hil.virtual import VirtualPlc, serve_plc
from twin.hil.watcher import EventListener, PlcWatcher


@dataclass(frozen=True, slots=True)
class PlcBinding:
    mode: str  # "serve" or "connect"
    protocol: str  # "modbus" or "opcua"
    map_ref: str
    equipment: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    poll_s: float | None = None
    interlock_timeout_s: float | None = None

    def load_map(self) -> IoMap:
        io_map = load_io_map(self.map_ref)
        if io_map.protocol != self.protocol:
            raise IoMapError(f"plc: {self.mode}: {self.protocol} names map {io_map.name}, which is {io_map.protocol}")
        if self.interlock_timeout_s is not None:
            io_map = replace(io_map, interlock_timeout_s=self.interlock_timeout_s)
        return io_map


def _schema() -> dict[str, Any]:
    for d in map_dirs():
        path = d / "schema" / "station-plc.schema.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8"))
    raise ConfigError("lines/plc/schema/station-plc.schema.yaml is missing from this installation")


def parse_binding(raw: dict[str, Any], *, where: str = "plc") -> PlcBinding:
    """A station's ``plc:`` mapping as a binding; ``where`` prefixes the message of a mistake."""
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(raw), key=lambda e: list(e.path))
    if errors:
        path = ".".join(str(p) for p in errors[0].path)
        raise ConfigError(f"{where}{'.' + path if path else ''}: {errors[0].message}")
    mode = "serve" if "serve" in raw else "connect"
    host, port = raw.get("host", "127.0.0.1"), raw.get("port")
    if mode == "connect":
        if "address" not in raw:
            raise ConfigError(f"{where}: connect needs address: HOST or HOST:PORT of the PLC")
        host, sep, text = str(raw["address"]).rpartition(":")
        if not sep:
            host, text = text, ""
        if text and not text.isdigit():
            raise ConfigError(f"{where}.address: expected HOST or HOST:PORT, got {raw['address']!r}")
        port = int(text) if text else port
    poll_ms, timeout_ms = raw.get("poll_ms"), raw.get("interlock_timeout_ms")
    return PlcBinding(
        mode=mode,
        protocol=raw[mode],
        map_ref=raw["map"],
        equipment=raw.get("equipment"),
        host=host,
        port=port,
        poll_s=poll_ms / 1000 if poll_ms else None,
        interlock_timeout_s=timeout_ms / 1000 if timeout_ms else None,
    )


@dataclass(slots=True)
class BoundPlc:
    """What a run holds for one bound equipment: the served image, or the watched real PLC."""

    binding: PlcBinding
    equipment: str
    image: IoImage | None = None
    server: VirtualPlc | None = None
    watcher: PlcWatcher | None = None

    @property
    def endpoint(self) -> str:
        if self.server is not None:
            return self.server.url
        assert self.watcher is not None
        return self.watcher.link.endpoint

    async def interlock(self, code: int) -> InterlockCheck | None:
        """The MES interlocked this equipment: write it to the real PLC and time the reaction.

        On a served image the host PC is the one that writes the interlock (it got the 3.1 call itself), so
        there is nothing for the twin to write: None.
        """
        if self.watcher is None:
            return None
        return await self.watcher.check_interlock(code)

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        if self.server is not None:
            await self.server.stop()


async def open_binding(
    binding: PlcBinding,
    equipment: str,
    *,
    on_event: EventListener | None = None,
    backoff: Backoff | None = None,
) -> BoundPlc:
    """Start serving the image, or start watching the PLC (a PLC that is not reachable yet is retried)."""
    io_map = binding.load_map()
    if binding.mode == "serve":
        image = IoImage(io_map)
        server = serve_plc(image, host=binding.host, port=binding.port)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(
                f"{equipment}: cannot serve {io_map.name} on {server.url}: {exc.strerror or exc}"
            ) from exc
        return BoundPlc(binding, equipment, image=image, server=server)
    link = connect_plc(io_map, binding.host, binding.port)
    watcher = PlcWatcher(link, on_event=on_event, poll_s=binding.poll_s, backoff=backoff)
    await watcher.start()
    return BoundPlc(binding, equipment, watcher=watcher)


def describe(binding: PlcBinding) -> str:
    where = f"{binding.host}:{binding.port}" if binding.port is not None else binding.host
    return f"{binding.mode} {binding.protocol} {Path(binding.map_ref).stem} at {where}"
