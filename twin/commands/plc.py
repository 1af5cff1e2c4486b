"""``twin plc``: station I/O maps, a virtual PLC served on its own, and watching a real PLC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from twin.commands.proxy import split_address
from twin.errors import TwinError


class InterlockNotObeyed(TwinError):
    """The PLC did not drop its run bit within the timeout (the CLI's failed-check exit, 1)."""


@click.group()
def plc() -> None:
    """PLCs in the loop: serve a station's I/O image, or watch a real PLC.

    \b
      twin plc maps                                             the I/O maps in lines/plc
      twin plc show winder.modbus                               one map's signals
      twin plc serve --map winder.modbus --port 5020 --cycle-s 7.5
      twin plc watch --map winder.modbus --connect 10.0.0.21:502
      twin plc interlock --map winder.modbus --connect 10.0.0.21:502 --code 500201
    """


@plc.command("maps")
def maps() -> None:
    """List the I/O maps (lines/plc/*.yaml)."""
    from twin.hil.iomap import available_maps, load_io_map

    table = Table("map", "protocol", "process", "signals", "parameters", "title")
    for name in available_maps():
        m = load_io_map(name)
        table.add_row(name, m.protocol, m.process, str(len(m.signals)), str(len(m.parameters)), m.title)
    Console().print(table)


@plc.command("show")
@click.argument("map_ref", metavar="MAP")
def show(map_ref: str) -> None:
    """One map's signals: where each lives, its type, scaling, role and who writes it."""
    from twin.hil.iomap import load_io_map

    m = load_io_map(map_ref)
    table = Table("signal", "role", "where", "type", "scale", "unit", "writer", title=f"{m.name}: {m.title}")
    for s in m.signals:
        kind = f"string[{s.length}] {s.encoding}" if s.type == "string" else s.type
        table.add_row(
            s.name, s.role or s.bound or "", s.where, kind, f"{s.scale:g}" if s.scale else "", s.unit, s.writer
        )
    Console().print(table)
    timing = f"pulse {m.pulse_s * 1000:.0f} ms, poll {m.poll_s * 1000:.0f} ms, "
    click.echo(
        timing + f"interlock timeout {m.interlock_timeout_s * 1000:.0f} ms, watchdog {m.watchdog_s * 1000:.0f} ms"
    )


async def _until_stopped(duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration_s)


@plc.command("serve")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), help="Port [the map's; 0 picks a free one].")
@click.option("--cycle-s", type=float, help="Run a scripted station: one cycle every this many seconds.")
@click.option("--ignore-interlock", is_flag=True, help="The scripted station does not stop on the interlock.")
@click.option("--duration-s", type=float, help="Stop after this long (default: until Ctrl-C).")
def serve(
    map_ref: str, host: str, port: int | None, cycle_s: float | None, ignore_interlock: bool, duration_s: float | None
) -> None:
    """Serve a station's I/O image as a virtual PLC (Modbus TCP or OPC UA, as the map says).

    Without --cycle-s the image stays as it is (the line model drives it under `twin run`); with it, a
    scripted station runs cycles with generated barcodes and stops on the interlock, so a host PC can be
    commissioned against it. Host writes (interlock, limits) are printed as they arrive.
    """
    asyncio.run(_serve(map_ref, host, port, cycle_s, ignore_interlock, duration_s))


async def _serve(
    map_ref: str, host: str, port: int | None, cycle_s: float | None, ignore: bool, duration_s: float | None
) -> None:
    from twin.errors import ConfigError
    from twin.hil.image import IoImage
    from twin.hil.iomap import load_io_map
    from twin.hil.scripted import ScriptedStation
    from twin.hil.virtual import serve_plc

    image = IoImage(load_io_map(map_ref))
    image.on_host_write(lambda name, value: click.echo(f"{_now()} host wrote {name} = {value!r}"))
    server = serve_plc(image, host=host, port=port)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{server.port}: {exc.strerror or exc}") from None
    station = None
    if cycle_s:
        station = ScriptedStation(image, cycle_s=cycle_s, obey_interlock=not ignore)
        await station.start()
    click.echo(f"virtual PLC {image.map.name} ({image.map.protocol}) on {server.url}")
    try:
        await _until_stopped(duration_s)
    finally:
        if station is not None:
            await station.stop()
        await server.stop()


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _link(map_ref: str, connect: str, timeout_s: float) -> Any:
    from twin.hil.iomap import load_io_map
    from twin.hil.link import connect_plc

    io_map = load_io_map(map_ref)
    default = io_map.port or (502 if io_map.protocol == "modbus" else 4840)
    host, port = split_address(connect, "--connect", default_port=default)
    return connect_plc(io_map, host, port, timeout_s=timeout_s)


@plc.command("watch")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--connect", required=True, metavar="HOST[:PORT]", help="The PLC.")
@click.option("--timeout-s", type=float, default=2.0, show_default=True, help="Per request.")
@click.option("--duration-s", type=float, help="Stop after this long (default: until Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
def watch(map_ref: str, connect: str, timeout_s: float, duration_s: float | None, as_json: bool) -> None:
    """Watch a real PLC: run bit, cycles with barcodes, alarms, link losses (retried with back-off)."""
    from twin.hil.watcher import PlcWatcher

    def printer(event: Any) -> None:
        if as_json:
            fields = {k: getattr(event, k) for k in event.__dataclass_fields__ if k != "snapshot"}
            click.echo(json.dumps({"kind": event.kind, **fields}, ensure_ascii=False))
        else:
            click.echo(f"{datetime.fromtimestamp(event.at).strftime('%H:%M:%S.%f')[:-3]} {event.describe()}")

    async def main() -> None:
        async with PlcWatcher(_link(map_ref, connect, timeout_s), on_event=printer):
            await _until_stopped(duration_s)

    asyncio.run(main())


@plc.command("interlock")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--connect", required=True, metavar="HOST[:PORT]", help="The PLC.")
@click.option("--code", type=int, default=500201, show_default=True, help="InterlockCode written with the bit.")
@click.option("--timeout-s", type=float, help="Reaction limit [the map's interlock_timeout_ms].")
@click.option(
    "--wait-running-s",
    type=float,
    default=10.0,
    show_default=True,
    help="Wait this long for the run bit before setting the interlock.",
)
@click.option("--keep", is_flag=True, help="Leave the interlock set (default: release it after the check).")
def interlock(
    map_ref: str, connect: str, code: int, timeout_s: float | None, wait_running_s: float, keep: bool
) -> None:
    """Set a real PLC's interlock bit and time how long it takes to drop its run bit; exit 1 if too slow."""
    result = asyncio.run(_interlock(_link(map_ref, connect, 2.0), code, timeout_s, wait_running_s, keep))
    click.echo(result.describe())
    if not result.passed:
        raise InterlockNotObeyed(result.describe())


async def _interlock(link: Any, code: int, timeout_s: float | None, wait_s: float, keep: bool) -> Any:
    from twin.hil.link import PlcError
    from twin.hil.watcher import PlcWatcher

    watcher = PlcWatcher(link)
    try:
        await link.connect()
        run = link.map.require("run")
        deadline = time.monotonic() + wait_s
        while not (await link.read([run]))[run.name] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        result = await watcher.check_interlock(code, timeout_s=timeout_s)
        if not keep and result.status != "no-link":
            await watcher.release_interlock()
        return result
    except PlcError as exc:
        raise InterlockNotObeyed(f"interlock {code}: {exc}") from None
    finally:
        await link.close()
