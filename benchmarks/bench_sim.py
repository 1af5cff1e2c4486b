"""The line model offline: simulated seconds per wall second, SimPy events per second, peak memory.

Target (issue 3): 24 h of line-A02 offline in at most 60 s of wall time on the 2-core build machine.
How the cost grows with copies of the line (``--scale``): 1, 4 and 16 copies in one environment; the larger
scales run fewer virtual hours and report what a day would take. Every case runs in a fresh interpreter so
that its peak resident memory is its own.

    python -m benchmarks bench_sim                       # the three cases
    python -m benchmarks.bench_sim --scale 4 --hours 2   # one case
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TARGET_WALL_S = 60.0
CASES = ((1, 24.0), (4, 3.0), (16, 1.0))  # (copies, virtual hours)


def one(scale: int, hours: float, seed: int = 0) -> dict[str, float]:
    """Run one case in this process and measure it."""
    from twin.line.linefile import load_line
    from twin.sim.builder import Simulation
    from twin.sim.kpi import compute
    from twin.sim.runner import events_of

    line, profile = load_line("line-A02")
    build = time.perf_counter()
    sim = Simulation(line, profile, seed=seed, scale=scale)
    build = time.perf_counter() - build
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run(hours * 3600.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    kpis = compute(sim)
    return {
        "scale": scale,
        "equipment": len(sim.equipment),
        "hours": hours,
        "build_s": build,
        "wall_s": wall,
        "cpu_s": cpu,
        "events": events_of(sim),
        "calls": sim.traffic.total,
        "good_cells": kpis.good_cells,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _case(scale: int, hours: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sim", "--one", "--scale", str(scale), "--hours", str(hours)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(rows: list[dict[str, float]]) -> None:
    print(f"{'copies':>6} {'equip':>6} {'virt h':>7} {'wall s':>8} {'cpu s':>8} {'sim-s/wall-s':>13} "
          f"{'events/s':>10} {'calls/s':>9} {'peak MB':>8} {'MB/equip':>8} {'24 h takes':>11}")
    for r in rows:
        sim_per_wall = r["hours"] * 3600 / r["wall_s"]
        day = 86400 / sim_per_wall
        print(f"{r['scale']:>6.0f} {r['equipment']:>6.0f} {r['hours']:>7g} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
              f"{sim_per_wall:>13,.0f} {r['events'] / r['wall_s']:>10,.0f} {r['calls'] / r['wall_s']:>9,.0f} "
              f"{r['peak_rss_mb']:>8.0f} {r['peak_rss_mb'] / r['equipment']:>8.2f} {day:>10.0f}s")
    base = next((r for r in rows if r["scale"] == 1 and r["hours"] >= 24), None)
    if base is not None:
        verdict = "meets" if base["wall_s"] <= TARGET_WALL_S else "MISSES"
        print(f"target: 24 h of line-A02 (1 copy) offline in <= {TARGET_WALL_S:.0f} s wall; measured "
              f"{base['wall_s']:.1f} s wall ({base['cpu_s']:.1f} s CPU): {verdict} the target. "
              f"{base['good_cells']:,.0f} good cells, {base['calls']:,.0f} MES calls simulated.")


def main(argv: list[str] | None = None) -> None:
    args_in = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("bench_")]
    parser = argparse.ArgumentParser(prog="bench_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=None, help="copies of line-A02 (one case only)")
    parser.add_argument("--hours", type=float, default=None, help="virtual hours of the case")
    parser.add_argument("--one", action="store_true", help="run the case in this process and print JSON")
    args = parser.parse_args(args_in)
    if args.one:
        print(json.dumps(one(args.scale or 1, args.hours or 1.0)))
        return
    cases = [(args.scale, args.hours or 1.0)] if args.scale else list(CASES)
    rows = []
    for scale, hours in cases:
        print(f"running {scale} cop{'y' if scale == 1 else 'ies'} of line-A02 for {hours:g} virtual h ...", flush=True)
        rows.append(_case(scale, hours))
    report(rows)


if __name__ == "__main__":
    main()
