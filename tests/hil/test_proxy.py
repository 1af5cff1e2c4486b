"""The validating proxy end to end: scripted hosts -> proxy -> a small upstream MES, and the MES's section 3 back.

One recording holds a well-behaved host and one host per behavioural rule that breaks that rule once; the
report must fail exactly the broken rule of each and pass the good host. Times are scaled down (heartbeat
every 1 s, "long" stops of 0.8 s) so the whole line of hosts runs in about four seconds.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import MES_PROFILE
from tests.hil.conftest import UpstreamMes
from tests.hil.hosts import PASSWORD, FakeHost, HostListener
from twin.hil.conformance import build_report, write_report
from twin.hil.journal import JOURNAL, digest, read_journal
from twin.hil.proxy import HostProxy, ProxyConfig, parse_host_map
from twin.hil.rules import Settings
from twin.metrics import read_exchange_log
from twin.profile import load_profile

PROFILE = load_profile(MES_PROFILE)
BEAT = 1.0
# Tolerance wide enough that a loaded machine (2 shared cores) stalling the loop for most of a second breaks
# nothing, and still narrow enough that two skipped beats (a 3 s gap) are caught.
SETTINGS = Settings(heartbeat_s=BEAT, heartbeat_tolerance_s=0.9, down_reason_after_s=0.8, long_stop_s=0.8)
LONG = 1.2  # a stop longer than both limits

BREAKS = {
    "A02-LOGIN-01": "login-first",
    "A02-HB-01": "heartbeat-period",
    "A02-STATE-01": "state-on-change",
    "A02-REASON-01": "down-reason",
    "A02-ALARM-01": "earliest-alarm",
    "A02-VERIFY-01": "verification",
    "A02-INOUT-01": "inbound-before-outbound",
    "A02-TRAY-01": "tray-lifecycle",
    "A02-TOKEN-01": "authorization",
    "A02-SCHEMA-01": "request-schema",
    "A02-S3-01": "equipment-side",
    "A02-NOHOST-01": "equipment-side",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def good(h: FakeHost) -> None:
    await h.login()
    h.start_heartbeat(BEAT)
    await h.recipe()
    await h.state("1")
    await h.produce("C-GOOD-1")
    await h.alarm("1", "12")
    await h.state("2")
    await asyncio.sleep(LONG)
    await h.alarm("0", "12")
    await h.recipe()
    await h.state("1", reason="3")
    await h.produce("C-GOOD-2")
    await h.tray("T-GOOD", ["C-GOOD-1", "C-GOOD-2"])
    await asyncio.sleep(0.3)


async def breaker(h: FakeHost) -> None:
    """Each host breaks its one rule, between a login and heartbeats it keeps to."""
    if h.code == "A02-LOGIN-01":
        await h.call("2.2", {"IsOnline": True})
    await h.login()
    h.start_heartbeat(BEAT, skip=(1, 2) if h.code == "A02-HB-01" else ())
    match h.code:
        case "A02-STATE-01":
            await h.state("3")
            await h.state("1")
            await h.state("1")
        case "A02-REASON-01":
            await h.state("2")
            await asyncio.sleep(LONG)
            await h.recipe()
            await h.state("1")
        case "A02-ALARM-01":
            await h.alarm("1", "5")
            await h.alarm("1", "6")
            await h.alarm("0", "5")
        case "A02-VERIFY-01":
            await h.produce("C-V-1")
        case "A02-INOUT-01":
            await h.recipe()
            await h.produce("C-IO-1")
            await h.produce("C-IO-2", inbound=False)
        case "A02-TRAY-01":
            await h.tray("T-BAD", ["C-T-1"], out_before_in=True)
        case "A02-TOKEN-01":
            await h.call("2.5", auth=False)
        case "A02-SCHEMA-01":
            status, _ = await h.post("/EquipmentService/api/v1/TimeSynch", {"equipmentCode": h.code})
            assert status == 200
    await asyncio.sleep(3.3 if h.code == "A02-HB-01" else 1.6)  # the skipped beats show once the next one comes


async def scenario(tmp: Path) -> dict[str, Any]:
    upstream = UpstreamMes()
    await upstream.start()
    listeners = {"A02-GOOD-01": HostListener(200), "A02-S3-01": HostListener(500)}
    for listener in listeners.values():
        await listener.start()
    config = ProxyConfig(
        upstream=upstream.url,
        record_dir=tmp / "record",
        host_map=parse_host_map([f"{code}={lst.url}" for code, lst in listeners.items()]),
        host_port=free_port(),  # A02-NOHOST-01 is reached at its own address: nothing listens there
        settings=SETTINGS,
    )
    live: list = []
    proxy = HostProxy(PROFILE, config, on_violation=live.append)
    await proxy.start()
    section3: dict[str, tuple[int, Any]] = {}
    async with aiohttp.ClientSession() as session:
        hosts = [FakeHost(session, PROFILE, proxy.url, code) for code in ["A02-GOOD-01", *BREAKS]]
        tasks = [asyncio.create_task(good(h) if h.code == "A02-GOOD-01" else breaker(h)) for h in hosts]
        await asyncio.sleep(0.5)  # every host has called from its address by now
        for code in ("A02-GOOD-01", "A02-S3-01", "A02-NOHOST-01"):
            body = {"InterlockCode": "500201", "InterlockMessage": "3 consecutive X-Ray NG", "EquipmentCode": code}
            async with session.post(proxy.section3_url + "/api/SendInterLock", json=body) as resp:
                section3[code] = (resp.status, await resp.json(content_type=None))
        await asyncio.gather(*tasks)
        for h in hosts:
            await h.stop_heartbeat()
    await proxy.stop()
    for listener in listeners.values():
        await listener.stop()
    await upstream.stop()
    report = build_report(config.record_dir, PROFILE, settings=SETTINGS)
    return {
        "report": report,
        "record": config.record_dir,
        "live": live,
        "section3": section3,
        "listeners": {c: lst.received for c, lst in listeners.items()},
        "upstream": upstream.calls,
    }


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return asyncio.run(scenario(tmp_path_factory.mktemp("proxy")))


def _rules(recording: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    [entry] = [h for h in recording["report"]["hosts"] if h["host"] == host]
    return {r["id"]: r for r in entry["rules"]}


def test_the_well_behaved_host_passes_every_rule(recording: dict[str, Any]) -> None:
    rules = _rules(recording, "A02-GOOD-01")
    assert {k: r["violations"] for k, r in rules.items() if r["status"] == "fail"} == {}
    assert all(r["status"] == "pass" for r in rules.values()), {k: r["status"] for k, r in rules.items()}
    [entry] = [h for h in recording["report"]["hosts"] if h["host"] == "A02-GOOD-01"]
    assert entry["verdict"] == "pass"


@pytest.mark.parametrize("host", sorted(BREAKS))
def test_each_broken_rule_is_caught_and_nothing_else(recording: dict[str, Any], host: str) -> None:
    rules = _rules(recording, host)
    failed = {k for k, r in rules.items() if r["status"] == "fail"}
    assert failed == {BREAKS[host]}, {k: rules[k]["violations"] for k in failed}
    [violation, *more] = rules[BREAKS[host]]["violations"]
    assert not more or host == "A02-TRAY-01"
    assert violation["exchanges"], "a violation shows the exchanges that prove it"
    assert all(e["request"] for e in violation["exchanges"])


def test_violations_are_reported_live_as_they_happen(recording: dict[str, Any]) -> None:
    live_rules = {(v.host, v.rule) for v in recording["live"]}
    assert {(h, r) for h, r in BREAKS.items()} <= live_rules


def test_section3_is_forwarded_by_equipment_code(recording: dict[str, Any]) -> None:
    section3 = recording["section3"]
    assert section3["A02-GOOD-01"][0] == 200
    assert recording["listeners"]["A02-GOOD-01"] == [
        (
            "/api/SendInterLock",
            {"InterlockCode": "500201", "InterlockMessage": "3 consecutive X-Ray NG", "EquipmentCode": "A02-GOOD-01"},
        )
    ]
    assert section3["A02-S3-01"] == (500, {"Msg": "broken on purpose"})  # the host's answer, as it came
    status, body = section3["A02-NOHOST-01"]
    assert status == 502 and "unreachable" in body["Msg"]
    [nohost] = [
        r
        for r in read_journal(recording["record"] / JOURNAL)
        if r.equipment == "A02-NOHOST-01" and r.direction == "mes"
    ]
    assert nohost.attempts == 3 and nohost.status == 0  # retried with back-off, then reported


def test_requests_and_answers_pass_through_unchanged(recording: dict[str, Any]) -> None:
    logins = [body for path, body in recording["upstream"] if path.endswith("/OperatorLogin")]
    assert logins and all(b["operatorPassword"] == PASSWORD for b in logins)  # the MES gets the real password
    journal = list(read_journal(recording["record"] / JOURNAL))
    login = next(r for r in journal if r.operation == "OperatorLogin")
    assert login.request["operatorPassword"] == "***"
    assert login.response["data"]["authorization"] == digest(f"token-{login.equipment}")
    heartbeat = next(r for r in journal if r.operation == "Heartbeat" and r.equipment == "A02-GOOD-01")
    assert heartbeat.token == digest("token-A02-GOOD-01") and heartbeat.code == 0


def test_every_exchange_reaches_the_metrics_log(recording: dict[str, Any]) -> None:
    rows = list(read_exchange_log(recording["record"] / "exchanges.parquet"))
    journal = list(read_journal(recording["record"] / JOURNAL))
    assert len(rows) == len(journal) == recording["report"]["exchanges"]
    assert {r.operation for r in rows} >= {"OperatorLogin", "Heartbeat", "Inbound", "Outbound", "SendInterLock"}
    assert all(r.answered_wall >= r.sent_wall >= r.intended_wall for r in rows)
    summary = orjson.loads((recording["record"] / "summary.json").read_bytes())
    assert summary["state"] == "finished" and summary["conformance_violations"] >= len(BREAKS)
    assert summary["exchanges"] == len(rows) and summary["interfaces"]["Heartbeat"]["count"] > 20


def test_report_files_are_written(recording: dict[str, Any], tmp_path: Path) -> None:
    paths = write_report(recording["report"], tmp_path)
    data = orjson.loads(paths[0].read_bytes())
    assert data["summary"]["hosts"] == len(BREAKS) + 1 and data["summary"]["passed"] == 1
    text = paths[1].read_text(encoding="utf-8")
    assert "A02-GOOD-01 (127.0.0.1)  PASS" in text and "A02-HB-01 (127.0.0.1)  FAIL" in text
    assert "heartbeat" in text and "expected 0.1-1.9 s" in text
    html = paths[2].read_text(encoding="utf-8")
    assert "<h2>A02-TRAY-01" in html and "tray out (2.41) of tray T-BAD" in html


async def test_an_unreachable_mes_gives_the_host_502_and_is_recorded(record_dir: Path) -> None:
    config = ProxyConfig(upstream=f"http://127.0.0.1:{free_port()}", record_dir=record_dir, settings=SETTINGS)
    async with HostProxy(PROFILE, config) as proxy, aiohttp.ClientSession() as session:
        host = FakeHost(session, PROFILE, proxy.url, "A02-HP-01")
        status, body = await host.post("/EquipmentService/api/v1/Heartbeat", {"equipmentCode": "A02-HP-01"})
    assert status == 502 and body["code"] == 502 and "unreachable" in body["msg"]
    [rec] = list(read_journal(record_dir / JOURNAL))
    assert rec.status == 0 and rec.error.startswith("unreachable") and rec.operation == "Heartbeat"
