"""``plc:`` in a line file, in ``twin run``: a served virtual PLC driven by the model, a real PLC as a station.

The mini line runs against the embedded MES with one winder bound. ``serve``: the model's winder drives a
Modbus image that a client reads while the run goes, and the winder's own MES calls stay in-process (a real
host PC would make them). ``connect``: a scripted PLC (pymodbus) runs the winder; the twin, as its host PC,
sends the winder's traffic from the PLC's cycles, and the rest of the line runs around it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from tests.hil.test_plchost import plc_station
from twin.hil.codec import decode_registers
from twin.hil.iomap import load_io_map
from twin.run.networked import NetConfig, prepare

WINDER = "MINI-WIND-01"


def line_with(tmp_path: Path, plc: str) -> Path:
    text = Path("lines/mini.yaml").read_text(encoding="utf-8")
    old = "electrode-rolls: {capacity: 4, lanes: [cathode, anode]}"
    assert old in text
    text = text.replace(old, "electrode-rolls: {capacity: 4, lanes: [cathode, anode], initial: 2}")
    needle = "code: MINI-WIND, unit: jelly roll,"
    assert needle in text
    path = tmp_path / "mini-plc.yaml"
    path.write_text(text.replace(needle, f"code: MINI-WIND, plc: {plc}, unit: jelly roll,"), encoding="utf-8")
    return path


def config(tmp_path: Path) -> NetConfig:
    return NetConfig(duration_s=180.0, speed=30.0, reports=tmp_path / "r", compare_offline=False, equipment_port=0)


def mes_equipment(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "mes.sqlite") as db:
        return dict(db.execute("SELECT equipment, COUNT(*) FROM exchanges GROUP BY equipment").fetchall())


async def test_a_served_plc_shows_the_model_and_its_host_talks_for_it(tmp_path: Path) -> None:
    io_map = load_io_map("winder.modbus")
    run = prepare(str(line_with(tmp_path, "{serve: modbus, map: winder.modbus, port: 0}")), config(tmp_path))
    seen: list[int] = []

    async def read_the_plc() -> None:
        while not run.plcs.stations or run.plcs.stations[0].bound is None or run.sim is None:
            await asyncio.sleep(0.05)
        server = run.plcs.stations[0].bound.server
        assert server is not None
        client = AsyncModbusTcpClient("127.0.0.1", port=int(server.url.rsplit(":", 1)[1]))
        await client.connect()
        counter = io_map.signal("cycle_count")  # an input register pair, as a host PC reads it
        try:
            while run.sim.env.now < 170:
                regs = await client.read_input_registers(counter.address, count=2)
                if not regs.isError():
                    seen.append(int(decode_registers(counter, regs.registers, io_map.word_order)))
                await asyncio.sleep(0.1)
        finally:
            client.close()

    _, summary = await asyncio.gather(read_the_plc(), run.run())
    assert seen and max(seen) > 0  # the host PC sees the model's winder finish parts
    per_equipment = mes_equipment(run.path)
    assert WINDER not in per_equipment and "MINI-WIND-02" in per_equipment  # its real host PC talks, not the twin
    assert summary["plc_stations"][0]["parts_mirrored"] >= max(seen)  # the last parts may come after the last read


async def test_a_real_plc_station_sends_its_traffic_from_the_plcs_cycles(tmp_path: Path) -> None:
    io_map = load_io_map("winder.modbus")
    async with plc_station(io_map) as (_image, port):
        plc = f"{{connect: modbus, map: winder.modbus, address: '127.0.0.1:{port}', report: [CollingPolar]}}"
        run = prepare(str(line_with(tmp_path, plc)), config(tmp_path))
        summary = await run.run()
    host = summary["plc_stations"][0]["host"]
    assert host["equipment"] == WINDER
    with sqlite3.connect(run.path / "mes.sqlite") as db:
        ops = dict(db.execute("SELECT operation, COUNT(*) FROM exchanges WHERE equipment = ? GROUP BY operation",
                              (WINDER,)).fetchall())
    assert ops.get("OperatorLogin") and ops.get("Heartbeat") and ops.get("CollingPolar", 0) > 3
    assert "MINI-WIND-02" in mes_equipment(run.path)  # the rest of the line runs around it
