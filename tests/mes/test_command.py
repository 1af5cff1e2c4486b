"""``twin mes serve``: its flags become the MES's settings, and faults set by flag are seen by a client."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from tests.mes.conftest import Host
from twin.commands.mes import build_config, serve
from twin.errors import ConfigError
from twin.mes import MesConfig, start_mes
from twin.profile import Profile


def _options(*args: str) -> dict[str, Any]:
    return dict(serve.make_context("serve", list(args)).params)


def test_flags_become_the_config() -> None:
    config, outage = build_config(**_options(
        "--port", "0", "--db", ":memory:", "--durability", "normal", "--equipment-address", "*=127.0.0.1:7000",
        "--interlock-timeout", "0.5", "--latency", "lognormal:20:200", "--latency-for", "Inbound=fixed:300",
        "--error-rate-for", "Heartbeat=0.25", "--error-kind", "http500", "--slow-db-ms", "40",
        "--outage-after", "60", "--outage-for", "5", "--outage-mode", "hang",
    ))
    assert (config.port, config.db, config.synchronous, config.interlock_timeout_s) == (0, ":memory:", "NORMAL", 0.5)
    assert config.addresses == {"*": "127.0.0.1:7000"}
    faults = config.faults
    assert str(faults.latency) == "lognormal:20:200" and str(faults.latency_for["Inbound"]) == "fixed:300"
    assert faults.error_rate_for == {"Heartbeat": 0.25} and faults.error_kind == "http500"
    assert faults.slow_db_ms == 40
    assert outage == {"after_s": 60, "for_s": 5, "mode": "hang"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--latency", "gauss:3"), "must be one of fixed"),
        (("--latency-for", "Inbound"), "must be OPERATION=VALUE"),
        (("--error-rate-for", "Heartbeat=lots"), "must be a number from 0 to 1"),
        (("--error-rate", "1.5"), "from 0 to 1"),
        (("--outage-for", "5"), "go together"),
        (("--interlock-timeout", "0"), "more than 0 seconds"),
    ],
)
def test_bad_flags_are_named(args: tuple[str, ...], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_config(**_options(*args))


async def test_an_unknown_interface_in_a_fault_flag_is_refused_with_a_suggestion() -> None:
    config, _ = build_config(**_options("--port", "0", "--db", ":memory:", "--latency-for", "Inbnd=fixed:5"))
    with pytest.raises(ConfigError, match="did you mean Inbound"):
        await start_mes(config)


async def test_faults_from_flags_are_seen_by_a_client(session: aiohttp.ClientSession, profile: Profile) -> None:
    config, _ = build_config(**_options(
        "--port", "0", "--db", ":memory:", "--latency-for", "Heartbeat=fixed:250",
        "--error-rate-for", "TimeSynch=1", "--seed", "3",
    ))
    assert isinstance(config, MesConfig)
    running = await start_mes(config)
    try:
        host = Host(session, running.url, profile)
        await host.login()
        started = time.perf_counter()
        await host.ok("Heartbeat", {"IsOnline": True})
        assert time.perf_counter() - started >= 0.25
        doc = await host.call("TimeSynch", {})
        assert doc["code"] == 9001 and "TimeSynch" in doc["msg"]
    finally:
        await running.stop()
