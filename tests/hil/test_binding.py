"""A station's ``plc:`` key: parsed and checked, then opened as a served image or a watched PLC."""

from __future__ import annotations

import pytest

from tests.hil.conftest import wait_until
from twin.errors import ConfigError
from twin.hil.binding import PlcBinding, open_binding, parse_binding
from twin.hil.events import Backoff, LinkUp, RunChanged
from twin.hil.iomap import IoMapError


def test_parse_serve_and_connect() -> None:
    served = parse_binding({"serve": "modbus", "map": "winder.modbus", "port": 5020, "equipment": "A02-WIND-02"})
    assert served == PlcBinding("serve", "modbus", "winder.modbus", "A02-WIND-02", "127.0.0.1", 5020)
    watched = parse_binding(
        {
            "connect": "opcua",
            "map": "winder.opcua",
            "address": "10.0.0.21:4841",
            "poll_ms": 50,
            "interlock_timeout_ms": 1500,
        }
    )
    assert (watched.host, watched.port, watched.poll_s, watched.interlock_timeout_s) == ("10.0.0.21", 4841, 0.05, 1.5)
    assert watched.load_map().interlock_timeout_s == 1.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"serve": "modbus"}, "'map' is a required property"),
        ({"serve": "profinet", "map": "winder.modbus"}, "plc.serve: 'profinet' is not one of"),
        ({"connect": "modbus", "map": "winder.modbus"}, "connect needs address"),
        ({"connect": "modbus", "map": "winder.modbus", "address": "plc:x"}, "expected HOST or HOST:PORT"),
    ],
)
def test_mistakes_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_binding(raw, where="stations[7].plc")


def test_protocol_must_match_the_map() -> None:
    with pytest.raises(IoMapError, match="which is opcua"):
        parse_binding({"serve": "modbus", "map": "winder.opcua"}).load_map()


async def test_a_served_image_watched_through_a_connect_binding() -> None:
    served = await open_binding(parse_binding({"serve": "modbus", "map": "winder.modbus", "port": 0}), "A02-WIND-01")
    assert served.image is not None and served.server is not None
    events: list = []
    raw = {
        "connect": "modbus",
        "map": "winder.modbus",
        "address": served.endpoint,
        "poll_ms": 20,
        "interlock_timeout_ms": 2000,
    }
    watched = await open_binding(parse_binding(raw), "A02-WIND-01", on_event=events.append, backoff=Backoff(0.05))
    try:
        await wait_until(lambda: any(isinstance(e, LinkUp) for e in events))
        served.image.set_running(True)
        await wait_until(lambda: any(isinstance(e, RunChanged) and e.running for e in events))
        served.image.on_interlock(lambda on, code: on and served.image.set_running(False))  # the model obeys
        check = await watched.interlock(500201)
        assert check is not None and check.passed
        assert await served.interlock(500201) is None  # a served image's host writes its own interlock
    finally:
        await watched.close()
        await served.close()
