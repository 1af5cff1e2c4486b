"""A virtual PLC driven by the line model: a SimPy winder's life in the image a real host reads over Modbus."""

from __future__ import annotations

from pymodbus.client import AsyncModbusTcpClient

from tests.conftest import MES_PROFILE
from twin.hil.binding import open_binding, parse_binding
from twin.hil.image import IoImage
from twin.hil.iomap import IoMap
from twin.hil.mirror import EquipmentMirror
from twin.hil.protocols import connect_plc
from twin.line.linefile import load_line
from twin.profile import load_profile
from twin.sim.builder import Simulation

PROFILE = load_profile(MES_PROFILE)


def winder_model(io_map: IoMap) -> tuple[Simulation, EquipmentMirror]:
    line, profile = load_line("mini", profile=PROFILE)
    sim = Simulation(line, profile, seed=3, keep_calls=True)
    [winder, *_] = [eq for eq in sim.equipment if eq.station.process == "winding"]
    return sim, EquipmentMirror(IoImage(io_map), winder)


def test_the_image_follows_the_model(modbus_map: IoMap) -> None:
    sim, mirror = winder_model(modbus_map)
    image, winder = mirror.image, mirror.equipment
    sim.run(1800)
    made = [c for c in sim.traffic.calls if c.equipment_code == winder.code and "Passed" in c.values]
    assert made and mirror.parts == len(made) == image.get("cycle_count")
    assert image.get("barcode") == made[-1].values["Sfc"]
    assert image.get("ok_count") + image.get("ng_count") == len(made)
    assert image.running == (winder.reported == "1")
    recipes = [c for c in sim.traffic.calls if c.equipment_code == winder.code and c.op.operation_id == "Recipe"]
    set_values = {r["ParamCode"]: float(r["ParamValue"]) for r in recipes[-1].values["ParamList"]}  # the latest
    limits = image.read_limits()
    shared = set(set_values) & set(limits)
    assert len(shared) >= 3  # the map carries the MES's winding ParamCodes
    assert {code: limits[code].value for code in shared} == {code: set_values[code] for code in shared}


async def test_a_served_station_is_driven_by_the_model_and_its_interlock_stops_the_model() -> None:
    line, profile = load_line("mini", profile=PROFILE)
    sim = Simulation(line, profile, seed=3, keep_calls=True)
    [winder, *_] = [eq for eq in sim.equipment if eq.station.process == "winding"]
    bound = await open_binding(parse_binding({"serve": "modbus", "map": "winder.modbus", "port": 0}), winder.code)
    assert bound.server is not None and bound.image is not None
    mirror, image = bound.drive(winder), bound.image
    sim.run(900)
    while not image.running:  # bounded: a winder in a 2-hour window runs at some point
        assert sim.env.now < 7200, "the winder never ran"
        sim.run(30)
    link = connect_plc(image.map, "127.0.0.1", bound.server.port, timeout_s=2.0)
    try:
        await link.connect()
        seen = await link.read_all()
        assert seen["run"] is True and seen["cycle_count"] == mirror.parts and seen["barcode"] == image.get("barcode")
        client = AsyncModbusTcpClient("127.0.0.1", port=bound.server.port)
        await client.connect()
        await client.write_registers(0, client.convert_to_registers(500201, client.DATATYPE.UINT32), device_id=1)
        await client.write_coil(0, True, device_id=1)  # the host got 3.1 from the MES and sets the bit
        client.close()
        assert mirror.interlocks == [500201] and winder.interlocks[-1][1] == "500201"
        sim.run(1)
        after = await link.read_all()
    finally:
        await link.close()
        await bound.close()
    assert after["run"] is False and after["alarm_code"] == 9005  # the catalogue's interlock alarm
    states = [
        c.values["StateCode"]
        for c in sim.traffic.calls
        if c.equipment_code == winder.code and c.op.operation_id == "State"
    ]
    assert states[-1] == "2"
    parts = mirror.parts
    sim.run(600)  # closed: the model runs on without the image
    assert mirror.parts == parts and winder.traffic is sim.traffic
