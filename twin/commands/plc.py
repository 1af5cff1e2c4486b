"""``twin plc``: station I/O maps, a virtual PLC served on its own, watching a real PLC, being its host PC."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from twin import aio
from twin.commands.proxy import split_address
from twin.commands.stopping import until_stopped
from twin.errors import ConfigError, TwinError

#: What stopped a PLC's machine -> the cause whose DownReason the line's catalogue gives (2.3).
REASON_CAUSES = {"fault": "repair", "interlock": "system", "standby": "starved"}


class InterlockNotObeyed(TwinError):
    """The PLC did not drop its run bit within the timeout (the CLI's failed-check exit, 1)."""


@click.group()
def plc() -> None:
    """PLCs in the loop: serve a station's I/O image, watch a real PLC, or be the host PC of one.

    \b
      twin plc maps                                             the I/O maps in lines/plc
      twin plc show winder.modbus                               one map's signals
      twin plc serve --map winder.modbus --port 5020 --cycle-s 7.5
      twin plc watch --map winder.modbus --connect 10.0.0.21:502
      twin plc interlock --map winder.modbus --connect 10.0.0.21:502 --code 500201
      twin plc host --map winder.modbus --connect 10.0.0.21 --equipment A02-WIND-01 --mes embedded \\
          --report CollingPolar                                 the twin as the host PC of a real PLC
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
    table = Table(title=f"{m.name}: {m.title}")
    for col in ("signal", "role", "where", "type", "scale", "unit", "writer"):
        table.add_column(col, overflow="fold")  # a narrow or piped output wraps a cell, never cuts it
    for s in m.signals:
        kind = f"string[{s.length}] {s.encoding}" if s.type == "string" else s.type
        table.add_row(
            s.name, s.role or s.bound or "", s.where, kind, f"{s.scale:g}" if s.scale else "", s.unit, s.writer
        )
    Console(width=None if Console().is_terminal else 160).print(table)
    timing = f"pulse {m.pulse_s * 1000:.0f} ms, poll {m.poll_s * 1000:.0f} ms, "
    click.echo(
        timing + f"interlock timeout {m.interlock_timeout_s * 1000:.0f} ms, watchdog {m.watchdog_s * 1000:.0f} ms"
    )


@plc.command("serve")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), show_default="the map's", help="Port to listen on; 0 picks a free one."
)
@click.option("--cycle-s", type=float, help="Run a scripted station: one cycle every this many seconds.")
@click.option("--ignore-interlock", is_flag=True, help="The scripted station does not stop on the interlock.")
@click.option("--duration-s", type=float, show_default="until Ctrl-C", help="Stop after this many seconds.")
def serve(
    map_ref: str, host: str, port: int | None, cycle_s: float | None, ignore_interlock: bool, duration_s: float | None
) -> None:
    """Serve a station's I/O image as a virtual PLC (Modbus TCP or OPC UA, as the map says).

    Without --cycle-s the image stays as it is (the line model drives it under `twin run`); with it, a
    scripted station runs cycles with generated barcodes and stops on the interlock, so a host PC can be
    commissioned against it. Host writes (interlock, limits) are printed as they arrive.
    """
    aio.run(_serve(map_ref, host, port, cycle_s, ignore_interlock, duration_s))


async def _serve(
    map_ref: str, host: str, port: int | None, cycle_s: float | None, ignore: bool, duration_s: float | None
) -> None:
    from twin.hil.image import IoImage
    from twin.hil.iomap import load_io_map
    from twin.hil.protocols import serve_plc
    from twin.hil.scripted import ScriptedStation

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
        await until_stopped(duration_s)
    finally:
        if station is not None:
            await station.stop()
        await server.stop()


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _link(map_ref: str, connect: str, timeout_s: float) -> Any:
    from twin.hil.iomap import load_io_map
    from twin.hil.protocols import connect_plc

    io_map = load_io_map(map_ref)
    default = io_map.port or (502 if io_map.protocol == "modbus" else 4840)
    host, port = split_address(connect, "--connect", default_port=default)
    return connect_plc(io_map, host, port, timeout_s=timeout_s)


@plc.command("watch")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--connect", required=True, metavar="HOST[:PORT]", help="The PLC.")
@click.option("--timeout-s", type=float, default=2.0, show_default=True, help="Per request.")
@click.option("--duration-s", type=float, show_default="until Ctrl-C", help="Stop after this many seconds.")
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
            await until_stopped(duration_s)

    aio.run(main())


@plc.command("interlock")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--connect", required=True, metavar="HOST[:PORT]", help="The PLC.")
@click.option("--code", type=int, default=500201, show_default=True, help="InterlockCode written with the bit.")
@click.option("--timeout-s", type=float, show_default="the map's interlock_timeout_ms", help="Reaction limit (s).")
@click.option(
    "--wait-running-s",
    type=float,
    default=10.0,
    show_default=True,
    help="Wait this long for the run bit before setting the interlock.",
)
@click.option("--keep", is_flag=True, help="Leave the interlock set instead of releasing it after the check.")
def interlock(
    map_ref: str, connect: str, code: int, timeout_s: float | None, wait_running_s: float, keep: bool
) -> None:
    """Set a real PLC's interlock bit and time how long it takes to drop its run bit; exit 1 if too slow."""
    result = aio.run(_interlock(_link(map_ref, connect, 2.0), code, timeout_s, wait_running_s, keep))
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


@plc.command("host")
@click.option("--map", "map_ref", required=True, help="I/O map name (lines/plc) or file.")
@click.option("--connect", required=True, metavar="HOST[:PORT]", help="The real PLC.")
@click.option("--equipment", required=True, help="The equipment code the station has at the MES (A02-WIND-01).")
@click.option("--mes", "mes_ref", required=True, metavar="URL|embedded", help="The MES, or 'embedded' (in-process).")
@click.option(
    "--report", multiple=True, show_default="Outbound", help="MES call per finished part, in order (repeat the option)."
)
@click.option("--listen", default="127.0.0.1:6868", show_default=True, help="Section-3 listener (HOST:PORT, 0 = free).")
@click.option("--line", "line_ref", default="line-A02", show_default=True, help="Product, operator, embedded MES.")
@click.option("--heartbeat-s", type=float, show_default="the line file's, 10", help="Heartbeat period (s).")
@click.option("--duration-s", type=float, show_default="until Ctrl-C", help="Stop after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="The summary as JSON at the end.")
def host(
    map_ref: str,
    connect: str,
    equipment: str,
    mes_ref: str,
    report: tuple[str, ...],
    listen: str,
    line_ref: str,
    heartbeat_s: float | None,
    duration_s: float | None,
    as_json: bool,
) -> None:
    """Be the host PC of a station whose PLC is real: its cycles become the station's MES traffic.

    Logs in, verifies the startup parameters (limits written down to the PLC), reports state, alarms and every
    finished part with the PLC's barcode; an interlock from the MES (3.1, to --listen) is written to the PLC and
    its reaction timed. Prints every call and PLC event; exit 1 if the PLC did not obey an interlock in time.
    """
    if mes_ref != "embedded" and "://" not in mes_ref:
        raise ConfigError(f"--mes must be a URL (http://HOST:PORT) or 'embedded', got {mes_ref!r}")
    host_, port = split_address(connect, "--connect", default_port=0)
    raw = {"connect": "", "map": map_ref, "address": f"{host_}:{port}" if port else host_, "listen": listen}
    summary = aio.run(_host(raw, equipment, mes_ref, report, line_ref, heartbeat_s, duration_s))
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_summary(summary)
    if summary["interlocks_failed"]:
        raise InterlockNotObeyed(
            f"{summary['interlocks_failed']} interlock check(s) failed: " + "; ".join(summary["interlocks"])
        )


async def _host(
    raw: dict[str, Any],
    equipment: str,
    mes_ref: str,
    report: tuple[str, ...],
    line_ref: str,
    heartbeat_s: float | None,
    duration_s: float | None,
) -> dict[str, Any]:
    from twin.hil.binding import host_for, parse_binding
    from twin.hil.iomap import load_io_map
    from twin.line.linefile import load_line

    line, profile = load_line(line_ref)
    raw["connect"] = load_io_map(raw["map"]).protocol
    if report:
        raw["report"] = list(report)
    binding = parse_binding(raw, where="--connect/--map")
    period = heartbeat_s or float(line.periods.get("heartbeat_s", 10.0))
    long_stop = float(line.periods.get("long_stop_s", 180.0))
    causes = line.catalogue.down_reasons if line.catalogue is not None else {}
    reasons = {mine: causes[theirs] for mine, theirs in REASON_CAUSES.items() if theirs in causes}
    mes_url = "" if mes_ref == "embedded" else mes_ref
    host_ = host_for(
        binding, equipment, profile, mes_url=mes_url, product=line.product, operator=dict(line.operator),
        heartbeat_s=period, long_stop_s=long_stop, down_reasons=reasons,
        down_reason_after_s=float(line.periods.get("down_reason_after_s", 180.0)),
    )  # fmt: skip
    host_.session.on_exchange = lambda sent: click.echo(f"{_now()} MES {sent.describe()}")
    host_.watcher.add_listener(lambda event: click.echo(f"{_now()} PLC {event.describe()}"))
    host_.on_check = lambda check: click.echo(f"{_now()} {check.describe()}")
    try:
        address = await host_.listen()
    except OSError as exc:
        raise ConfigError(f"--listen {raw['listen']}: {exc.strerror or exc}") from None
    mes = None
    if mes_ref == "embedded":
        from twin.mes import MesConfig, start_mes

        mes = await start_mes(MesConfig(port=0, db=":memory:", lines=(line_ref,), addresses={equipment: address}))
        host_.session.config.mes_url = mes.url
    click.echo(
        f"host of {equipment}: PLC {host_.watcher.link.endpoint}, MES {host_.session.config.mes_url}"
        f"{' (embedded)' if mes else ''}, section 3 on {address}"
    )
    try:
        await host_.start()
        await until_stopped(duration_s)
    finally:
        await host_.stop()
        if mes is not None:
            await mes.stop()
    return host_.summary()


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table("call", "calls", "ok", "refused", "no answer", title=f"{summary['equipment']}: calls to the MES")
    for name, row in summary["calls"].items():
        table.add_row(name, *(str(row[k]) for k in ("calls", "ok", "refused", "no answer")))
    Console().print(table)
    click.echo(
        f"parts {summary['parts']} (unseen {summary['missed']}), PLC outages {summary['plc_outages']}, "
        f"MES outages {summary['mes_outages']}, interlocks passed {summary['interlocks_passed']}, "
        f"failed {summary['interlocks_failed']}"
    )
