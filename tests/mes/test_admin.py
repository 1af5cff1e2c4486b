"""What the MES shows of itself: /swagger.json, the status page, /metrics, the registry, traceability."""

from __future__ import annotations

import re

from tests.mes.conftest import HOT_PRESS, Host, get_json
from twin.mes.counters import Counters
from twin.mes.status import render
from twin.profile import Profile

PROM_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$')


async def test_swagger_json_is_the_profile(host: Host, profile: Profile) -> None:
    doc = await get_json(host, "/swagger.json")
    assert doc["openapi"] == "3.1.0" and set(doc["paths"]) == set(profile.document["paths"])


async def test_status_page_shows_requests_refusals_and_wip(host: Host) -> None:
    await host.refused("Inbound", {"Sfc": "JR-NOPE"}, HOT_PRESS, "unknown to the MES")
    async with host.session.get(host.url + "/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    for text in ("Cells in WIP", "Requests per interface", "OperatorLogin", "<td>product</td>", "2003",
                 "Interlocks sent"):
        assert text in page


def test_status_page_escapes_what_equipment_sent() -> None:
    metrics = Counters()
    metrics.invalid("Outbound", "<script>alert(1)</script>")
    page = render(title="t", summary="s", metrics=metrics, wip={"cells": 0}, faults={},
                  interlocks=[{"id": 1, "at": "now", "code": "500201", "equipment": "E<1>", "detector": "D",
                               "outcome": "delivered", "message": "<b>x</b>"}])
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page


async def test_metrics_are_prometheus_text(host: Host) -> None:
    await host.ok("Heartbeat", {"IsOnline": True})
    async with host.session.get(host.url + "/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        assert "version=0.0.4" in resp.headers["Content-Type"]
        text = await resp.text()
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples and all(PROM_LINE.match(ln) for ln in samples), [ln for ln in samples if not PROM_LINE.match(ln)]
    assert 'twin_mes_requests_total{operation="Heartbeat",code="0"} 1' in text
    assert 'twin_mes_request_seconds_count{operation="Heartbeat"} 1' in text
    assert "# TYPE twin_mes_wip gauge" in text


async def test_registry_and_trace(host: Host) -> None:
    registry = await get_json(host, "/admin/registry")
    assert registry["A02-WH-01"] == "127.0.1.1:6868" and len(registry) == len(set(registry.values()))
    async with host.session.get(host.url + "/admin/trace/NOTHING", headers=host.admin) as resp:
        assert resp.status == 404
