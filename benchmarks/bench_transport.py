"""Traffic engine vs Locust: the highest sustained rate of profile-built, recorded MES requests.

Both run against the same nginx on loopback (answering every POST with the success envelope), one
process each, one after the other in the same run, with the same payload mix (heartbeat, state, inbound,
outbound, process parameters, tray outbound). The twin side builds every request from the profile, sends
it through ``MesClient`` and records it (HDR histograms + streamed exchange log), as ``twin run`` does.
Prints both rates and the ratio (target: twin >= 1.5x Locust).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.nginx_stub import nginx_binary, nginx_stub
from twin import aio
from twin.metrics import ExchangeLog, LatencyBook
from twin.profile import load_profile
from twin.transport import MesClient

MIX = ("Heartbeat", "Heartbeat", "State", "Inbound", "Outbound", "EquipmentProcessParam", "OutboundInContainer")
SECONDS = float(os.environ.get("TWIN_BENCH_SECONDS", "10"))
IN_FLIGHT = 64


async def twin_rate(url: str, seconds: float, log_path: Path) -> tuple[float, LatencyBook]:
    profile = load_profile("qingke-mes-v1")
    ops = [profile.operation(n) for n in MIX]
    values = {op.operation_id: op.request_examples["realistic"] for op in ops}
    book = LatencyBook()
    log = ExchangeLog(log_path)

    def record(ex, ok):  # type: ignore[no-untyped-def]
        book.record(ex, success=ok)
        log.append(ex)

    stop = time.monotonic() + seconds
    count = 0
    async with MesClient(url, record=record, connections=IN_FLIGHT) as client:

        async def worker(i: int) -> None:
            nonlocal count
            for n in itertools.count(i):
                if time.monotonic() >= stop:
                    return
                op = ops[n % len(ops)]
                ctx = {"now": datetime.now(UTC), "equipment_code": f"A02-EQ-{i:02d}", "resource_code": "R-1"}
                body = profile.build_request(op, values[op.operation_id], context=ctx)
                await client.call(op, body, equipment=ctx["equipment_code"], token="Bearer bench")
                count += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
        elapsed = time.monotonic() - start
    log.close()
    return count / elapsed, book


def locust_rate(url: str, seconds: float, work: Path, processes: int = 1) -> float:
    """Locust FastHttpUser's rate on the same payloads; ``processes`` > 1 forks that many workers (--processes),
    each with ``IN_FLIGHT`` users."""
    profile = load_profile("qingke-mes-v1")
    payloads = []
    for name in MIX:
        op = profile.operation(name)
        payloads.append([op.path, profile.build_request(op, op.request_examples["realistic"])])
    (work / "payloads.json").write_text(json.dumps(payloads))
    env = {**os.environ, "TWIN_BENCH_PAYLOADS": str(work / "payloads.json")}
    cmd = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locust_mes.py")), "--headless",
           "-u", str(IN_FLIGHT * processes), "-r", str(IN_FLIGHT * processes), "-t", f"{int(seconds)}s", "-H", url,
           "--csv", str(work / "locust"), "--only-summary", "--loglevel", "ERROR"]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 60)
    with open(work / "locust_stats.csv", encoding="utf-8") as fh:
        total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return float(total["Requests/s"])


def main() -> None:
    if nginx_binary() is None:
        print("skipped: nginx is not installed (apt-get install -y nginx-light, or `make bench`)")
        return
    with nginx_stub() as url, tempfile.TemporaryDirectory() as d:
        work = Path(d)
        twin, book = aio.run(twin_rate(url, SECONDS, work / "exchanges.csv.gz"))
        try:
            locust = locust_rate(url, SECONDS, work)
        except (FileNotFoundError, StopIteration, subprocess.TimeoutExpired) as exc:
            print(f"twin: {twin:,.0f} req/s; Locust did not run ({exc!r}): pip install locust")
            return
    total = book.total().summary(SECONDS)
    print(f"twin   (profile-built, recorded, {IN_FLIGHT} in flight): {twin:8,.0f} req/s   "
          f"service p50 {total['service_ms']['p50']:.2f} ms  p99 {total['service_ms']['p99']:.2f} ms")
    print(f"Locust (FastHttpUser, one process, {IN_FLIGHT} users):        {locust:8,.0f} req/s")
    print(f"ratio twin / Locust: {twin / locust:.2f}x   (target >= 1.5x)")


if __name__ == "__main__":
    main()
