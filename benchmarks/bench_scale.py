"""Scale-out (issue 14 item 7): 8 copies of line-A02 on 1 and on 2 worker processes, against nginx.

The target is nginx on loopback answering each interface with the profile's realistic example
(``benchmarks/nginx_stub.py``), so that the server is never what is measured. The same 8 copies, speed and
virtual length run twice through ``twin run``'s sharded driver (``twin.run.sharded``):

* 1 worker: every copy in the driver's own process (no Ray; the single-process twin);
* 2 workers: 4 copies in each of 2 Ray actors (the Ray session is started before the clock runs).

The rate is the requests answered per wall second from the first request sent to the last (from the exchange
logs, so the Ray start-up is not in it), and again after the start-up storm (the first quarter of that span). Also
printed: the speed each run achieved (virtual / wall), the ratio of the two rates, and the check that the
merged totals (summary.json, histograms.json) equal the sum of the shards' own.

    python -m benchmarks bench_scale                      # 8 copies at speed 60 for 5 virtual minutes
    python -m benchmarks.bench_scale --speed 300 --duration 6000 --locust   # saturated: the README's figures

``--locust`` adds Locust with ``--processes 2`` (FastHttpUser, as many requests as it can, the same payloads)
for the machine-wide comparison of item 5.

On a machine of 2 cores (this one, shared with other work), nginx and the driver take part of what the 2
workers could use: the ratio says what scale-out buys here, not what it buys on a machine with a core to spare
per worker.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twin import aio

STARTUP_SHARE = 0.25


def sent_rate(shards_dir: Path) -> tuple[int, float, float]:
    """Requests answered, and answered per wall second: over the whole run (first to last request sent) and
    after the start-up storm (the first quarter of that span), over every shard's log."""
    import numpy as np
    import pyarrow.compute as pc

    from twin.metrics.parquetlog import read_tables

    sent: list[Any] = []
    for rb in read_tables(shards_dir, columns=["sent_wall", "status"]):
        ok = pc.greater(rb.column(1), 0)
        sent.append(pc.filter(rb.column(0), ok).to_numpy())
    walls = np.sort(np.concatenate(sent)) if sent else np.array([])
    if len(walls) < 2:
        return len(walls), 0.0, 0.0
    span = walls[-1] - walls[0]
    later = walls[walls >= walls[0] + STARTUP_SHARE * span]
    return len(walls), len(walls) / span, len(later) / max(later[-1] - later[0], 1e-9)


def one(url: str, workers: int, copies: int, speed: float, duration_s: float, reports: Path) -> dict[str, Any]:
    from twin.run.networked import NetConfig
    from twin.run.sharded import prepare_sharded

    config = NetConfig(duration_s=duration_s, speed=speed, scale=copies, mes_url=url, reports=reports,
                       compare_offline=False, equipment_port=0)  # fmt: skip
    run = prepare_sharded("line-A02", config, workers=workers)
    t0 = time.monotonic()
    summary = aio.run(run.run())
    wall = time.monotonic() - t0
    shards = [json.loads((run.path / "shards" / str(s.index) / "summary.json").read_text()) for s in run.shards]
    summed = sum(s["total"]["count"] for s in shards)
    by_interface = all(
        v["count"] == sum(s["interfaces"].get(op, {}).get("count", 0) for s in shards)
        for op, v in summary["interfaces"].items()
    )
    hist = json.loads((run.path / "histograms.json").read_text())
    n, rate, steady = sent_rate(run.path / "shards")
    virtual = summary["run"]["virtual_s"]
    model_wall = max(float(s.get("run", {}).get("wall_s", 0.0)) for s in shards)
    return {
        "workers": workers,
        "shards": len(run.shards),
        "state": summary["state"],
        "hurt": summary["hurt"],
        "requests": summary["total"]["count"],
        "sum_of_shards": summed,
        "per_interface_equal": by_interface,
        "histograms_equal": sum(v["count"] for v in hist.values()) == summed,
        "rate": rate,
        "rate_after_startup": steady,
        "answered": n,
        "speed_achieved": virtual / model_wall if model_wall else 0.0,
        "wall_s": wall,
        "per_shard": [s["total"]["count"] for s in shards],
        "violations": (summary.get("conformance") or {}).get("violations"),  # the self-check of every shard's hosts
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=300.0, help="virtual seconds")
    parser.add_argument("--locust", action="store_true", help="also Locust --processes 2 on the same payloads")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    from benchmarks.bench_run import canned_answers
    from benchmarks.bench_transport import locust_rate
    from benchmarks.nginx_stub import nginx_binary, nginx_stub

    if nginx_binary() is None:
        print("skipped: nginx is not installed (apt-get install -y nginx-light, or `make bench`)")
        return
    try:
        import ray
    except ImportError:
        print("skipped: Ray is not installed (pip install 'twin[ray]', or `make bench`)")
        return
    from twin.run.workers import LOCAL_RAY_IP

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             _node_ip_address=LOCAL_RAY_IP,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})  # fmt: skip
    results = []
    try:
        with nginx_stub(canned_answers()) as url, tempfile.TemporaryDirectory(prefix="twin-bench-scale-") as d:
            print(f"{args.copies} copies of line-A02 at speed {args.speed:g} for {args.duration:g} virtual s, nginx")
            head = ("workers", "shards", "req/s", "after start", "speed", "requests", "sum shards", "merged=sum")
            head += ("violations",)
            print(" ".join(f"{h:>10}" for h in head))
            for workers in (1, 2):
                r = one(url, workers, args.copies, args.speed, args.duration, Path(d) / str(workers))
                results.append(r)
                equal = r["requests"] == r["sum_of_shards"] and r["per_interface_equal"] and r["histograms_equal"]
                print(
                    f"{r['workers']:>10} {r['shards']:>10} {r['rate']:>10,.0f} {r['rate_after_startup']:>10,.0f} "
                    f"{r['speed_achieved']:>10.1f} {r['requests']:>10,} {r['sum_of_shards']:>10,} {equal!s:>10} "
                    f"{r['violations'] if r['violations'] is not None else '-':>10}"
                    + (f"  HURT: {r['hurt']}" if r["hurt"] else "")
                )
            print(f"ratio 2 workers / 1 worker: {results[1]['rate'] / max(results[0]['rate'], 1e-9):.2f}x")
            if args.locust:
                with tempfile.TemporaryDirectory(prefix="twin-bench-locust-") as ld:
                    locust = locust_rate(url, 20.0, Path(ld), processes=2)
                print(f"Locust --processes 2 (FastHttpUser): {locust:,.0f} req/s; "
                      f"2 workers / Locust: {results[1]['rate'] / max(locust, 1e-9):.2f}x")  # fmt: skip
    finally:
        ray.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
