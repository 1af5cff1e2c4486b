"""The validating host proxy: what it costs a host PC to talk to the MES through ``twin proxy``.

The same hosts (64 concurrent, each logged in, sending a heartbeat/state/alarm/inbound/outbound mix built from
the profile) call the same upstream (nginx on loopback answering every POST with the success envelope), first
directly, then through ``HostProxy``, which forwards each exchange, validates request and answer against the
profile, journals both payloads, streams the exchange log and runs every behavioural rule live. Prints both
rates, the ratio (the reference is the direct run), and the latency the proxy adds (p50, p99).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from benchmarks.nginx_stub import nginx_binary, nginx_stub
from twin.hil.proxy import HostProxy, ProxyConfig
from twin.profile import load_profile
from twin.sim.runner import RunConfig, simulate

MIX = ("Heartbeat", "State", "Heartbeat", "Alarm", "Inbound", "Outbound", "Heartbeat", "EquipmentProcessParam")
SECONDS = float(os.environ.get("TWIN_BENCH_SECONDS", "5"))
HOSTS = 64


def _bodies() -> list[list[tuple[str, bytes]]]:
    """Per host: the login, then the mix, built from the profile's realistic examples with the host's code."""
    profile = load_profile("qingke-mes-v1")
    import orjson

    out = []
    for i in range(HOSTS):
        ctx = {"now": datetime.now(UTC), "equipment_code": f"A02-EQ-{i:02d}", "resource_code": f"R-A02-EQ-{i:02d}"}
        calls = []
        for name in ("OperatorLogin", *MIX):
            op = profile.operation(name)
            values = dict(op.request_examples["realistic"])
            values.pop("equipmentCode", None)
            values.pop("resourceCode", None)
            calls.append((op.path, orjson.dumps(profile.build_request(op, values, context=ctx))))
        out.append(calls)
    return out


async def _drive(url: str, bodies: list[list[tuple[str, bytes]]], seconds: float) -> tuple[float, np.ndarray]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    connector = aiohttp.TCPConnector(limit=HOSTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def host(calls: list[tuple[str, bytes]]) -> None:
            login, *mix = calls
            async with session.post(url + login[0], data=login[1], headers=headers) as resp:
                await resp.read()
            n = 0
            while time.monotonic() < stop:
                path, body = mix[n % len(mix)]
                t0 = time.perf_counter()
                async with session.post(url + path, data=body, headers=headers) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - t0)
                n += 1

        start = time.monotonic()
        await asyncio.gather(*(host(c) for c in bodies))
        elapsed = time.monotonic() - start
    return len(latencies) / elapsed, np.array(latencies) * 1000.0


async def _proxied(upstream: str, bodies: list[list[tuple[str, bytes]]], seconds: float, work: Path) -> Any:
    profile = load_profile("qingke-mes-v1")
    proxy = HostProxy(profile, ProxyConfig(upstream=upstream, record_dir=work / "record"))
    await proxy.start()
    try:
        rate, lat = await _drive(proxy.url, bodies, seconds)
    finally:
        await proxy.stop()
    return rate, lat, len(proxy.violations)


def main() -> None:
    if nginx_binary() is None:
        print("skipped: nginx is not installed (apt-get install -y nginx-light, or `make bench`)")
        return
    logging.getLogger("twin.hil").setLevel(logging.ERROR)  # the mix breaks rules on purpose; don't print each
    bodies = _bodies()
    with nginx_stub() as url, tempfile.TemporaryDirectory() as d:
        direct, direct_ms = asyncio.run(_drive(url, bodies, SECONDS))
        proxied, proxied_ms, violations = asyncio.run(_proxied(url, bodies, SECONDS, Path(d)))
    d50, d99 = np.percentile(direct_ms, [50, 99])
    x50, x99 = np.percentile(proxied_ms, [50, 99])
    print(f"direct to the upstream ({HOSTS} hosts): {direct:8,.0f} req/s   p50 {d50:6.2f} ms  p99 {d99:6.2f} ms")
    print(f"through twin proxy:            {proxied:8,.0f} req/s   p50 {x50:6.2f} ms  p99 {x99:6.2f} ms")
    print(f"  (forwarded, validated, journaled, logged, every rule live; {violations:,} violations recorded)")
    added = f"p50 {x50 - d50:+.2f} ms, p99 {x99 - d99:+.2f} ms"
    print(f"ratio proxied / direct: {proxied / direct:.2f}x (reference: direct); latency added: {added}")
    line = simulate("line-A02", RunConfig(duration_s=3600.0)).kpis.calls_per_hour / 3600.0
    print(f"line-A02 at takt sends {line:,.1f} req/s: one proxy checks {proxied / line:,.0f} such lines at once")


if __name__ == "__main__":
    main()
