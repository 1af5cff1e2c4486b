"""A station bound to a PLC in a line file (``plc:``), and what ``twin run`` opens for it.

``plc: {serve: modbus, map: winder.modbus}`` makes the twin serve that equipment's I/O image (a virtual PLC,
driven by the line model through ``BoundPlc.image``); ``plc: {connect: opcua, map: ..., address: HOST[:PORT]}``
makes a real PLC the source of that equipment's state and cycles (``BoundPlc.watcher`` reports them as
events) and the target of its interlocks; ``host_for`` makes the twin that equipment's host PC, emitting its
MES traffic from the PLC (``twin.hil.plchost``). The key's schema is ``lines/plc/schema/station-plc.schema.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema

from twin.datafile import load_schema
from twin.errors import ConfigError, UnknownOperation
from twin.hil.events import Backoff, InterlockCheck
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap, IoMapError, load_io_map, map_dirs
from twin.hil.mes_session import MesSession, SessionConfig
from twin.hil.mirror import Equipment, EquipmentMirror
from twin.hil.plchost import HostConfig, PlcHost
from twin.hil.protocols import connect_plc, serve_plc
from twin.hil.virtual import VirtualPlc
from twin.hil.watcher import EventListener, PlcWatcher
from twin.profile import Profile

EQUIPMENT_PORT = 6868  # spec section 3: every host serves the MES's calls on this port


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
    report: tuple[str, ...] = ("Outbound",)
    listen: str | None = None

    def load_map(self) -> IoMap:
        io_map = load_io_map(self.map_ref)
        if io_map.protocol != self.protocol:
            raise IoMapError(f"plc: {self.mode}: {self.protocol} names map {io_map.name}, which is {io_map.protocol}")
        if self.interlock_timeout_s is not None:
            io_map = replace(io_map, interlock_timeout_s=self.interlock_timeout_s)
        return io_map


def _schema() -> dict[str, Any]:
    return load_schema(
        (d / "schema" / "station-plc.schema.yaml" for d in map_dirs()),
        ConfigError("lines/plc/schema/station-plc.schema.yaml is missing from this installation"),
    )


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
        report=tuple(raw.get("report") or ("Outbound",)),
        listen=raw.get("listen"),
    )


@dataclass(slots=True)
class BoundPlc:
    """What a run holds for one bound equipment: the served image, or the watched real PLC."""

    binding: PlcBinding
    equipment: str
    image: IoImage | None = None
    server: VirtualPlc | None = None
    watcher: PlcWatcher | None = None
    mirror: EquipmentMirror | None = None

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

    def drive(self, equipment: Equipment) -> EquipmentMirror:
        """Let the line model's equipment drive the served image (``serve``): what the host reads is the model."""
        if self.image is None:
            raise ConfigError(f"{self.equipment}: plc: connect takes its state from the real PLC, not the model")
        if self.mirror is None:
            self.mirror = EquipmentMirror(self.image, equipment)
        return self.mirror

    async def close(self) -> None:
        if self.mirror is not None:
            self.mirror.detach()
            self.mirror = None
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


def host_for(
    binding: PlcBinding,
    equipment: str,
    profile: Profile,
    *,
    mes_url: str,
    product: str,
    operator: dict[str, str] | None = None,
    heartbeat_s: float = 10.0,
    long_stop_s: float = 180.0,
    down_reason_after_s: float = 180.0,
    down_reasons: dict[str, str] | None = None,
    backoff: Backoff | None = None,
) -> PlcHost:
    """The twin as the host PC of a ``connect`` equipment: the PLC's cycles as its MES traffic (not started).

    ``listen`` (the binding's, else the PLC host's address, port 6868) is where the MES must send its section-3
    calls for this equipment; give ``listen: 127.0.0.1:0`` for any free port and read ``PlcHost.address``.
    """
    if binding.mode != "connect":
        raise ConfigError(f"{equipment}: plc: serve has a real host PC of its own; the twin plays no host for it")
    for ref in binding.report:
        try:
            profile.operation(ref)
        except UnknownOperation:
            raise ConfigError(f"{equipment}: plc.report: {ref!r} is not an operation of {profile.name}") from None
    listen_host, listen_port = _listen(binding.listen)
    link = connect_plc(binding.load_map(), binding.host, binding.port)
    watcher = PlcWatcher(link, poll_s=binding.poll_s, backoff=backoff)
    credentials = {"user": "op1001", "password": "pa55word", **(operator or {})}
    session = MesSession(
        profile,
        SessionConfig(
            mes_url=mes_url,
            equipment=equipment,
            user=credentials["user"],
            password=credentials["password"],
            **({"backoff": backoff} if backoff is not None else {}),
        ),
    )
    config = HostConfig(
        product=product,
        report=tuple(profile.operation(ref).operation_id for ref in binding.report),
        heartbeat_s=heartbeat_s,
        long_stop_s=long_stop_s,
        down_reason_after_s=down_reason_after_s,
        listen_host=listen_host,
        listen_port=listen_port,
    )
    if down_reasons:
        config.down_reasons.update(down_reasons)
    return PlcHost(watcher, session, config)


def _listen(text: str | None) -> tuple[str, int]:
    if not text:
        return "127.0.0.1", EQUIPMENT_PORT
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, EQUIPMENT_PORT
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"plc.listen: expected HOST or HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)
