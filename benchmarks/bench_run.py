"""``twin run`` with the whole model (issue 5): traffic engine vs Locust, takt fidelity, scale.

The target is nginx on loopback answering each MES interface with the profile's realistic example (the
model needs a token, codes and recipes to go on; that every answer is the same is all a load test needs),
so that the server is never what is measured. Every case runs in a fresh interpreter (its own peak memory)
and drives line-A02 through the real bridge, host link, pool and exchange recording:

* engine:  the line at rising ``--speed`` (x1.5 from 100, no fixed top) until a speed is not sustained (then twice
           the geometric middle of the last speed sustained and the first not, to narrow the gap): a speed
           is *sustained* when, after the start-up, the twin did not saturate (its pace governor never slowed
           virtual time, see ``twin.sim.pace``) and sent 99 % of its calls within 50 ms of their intended time.
           The highest sustained rate of answered requests is compared with Locust (FastHttpUser, one process,
           and ``--processes 2``, as many requests as it can) on the same payloads. "CPU us/req" is the twin's
           process; "checker" the CPU its self-check process (``twin.run.checker``) spent per request beside it.
* overload: 3x the highest sustained speed: the rate the twin still sends against its sustainable rate (target
           at least 80 %), peak memory (target under 1 GB), and that the run said it saturated.
* takt:    realtime (1x) with enough copies of the line for about 1,000 req/s: p99 of actual - intended
           send time after the start-up (target < 5 ms) and during it, while the hosts power on over the line
           file's ``power_on_s`` (target < 50 ms).
* scale:   realtime with more and more copies: late starts in the first and second half of the run (they
           must not grow), peak memory and memory per equipment.

    python -m benchmarks bench_run                          # everything (about 15 minutes)
    python -m benchmarks.bench_run --case engine --case overload   # the engine and its overload
    python -m benchmarks.bench_run --overload-of 300       # the overload case alone, 3x a known sustained speed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from twin import aio

ENGINE_FIRST, ENGINE_STEP, ENGINE_TOP = 100.0, 1.5, 20_000.0  # speeds tried: 100, 150, 225... until one fails
ENGINE_WALL_S = 20.0
ENGINE_REFINE = 2  # then the gap between the last speed sustained and the first not is halved (geometrically) twice
OVERLOAD_FACTOR = 3.0
STEADY_P99_MS = 50.0  # a sustained speed sends 99 % of its calls within this of their intended time
TAKT_RATE = 1000.0
TAKT_WALL_S = 150.0
SCALES = (4, 16, 32)
SCALE_WALL_S = 120.0
STARTUP_SHARE = 0.25  # the first quarter of a run is the start-up storm (every host logs in, verifies, loads)
# ... and never less than the first 75 virtual seconds: a minute after start every host that has not moved yet
# reports standby (2.3) in the same instant, a second wave of the start-up (in a plant hosts start less in step).
STARTUP_MIN_S = 75.0
PER_COPY_RATE = 15.0  # line-A02 in realtime against nginx: 531 req/s from 36 copies over the takt case (Dec 2026)


def canned_answers() -> dict[str, str]:
    """Path -> the realistic example answer of the interface at that path."""
    from twin.profile import load_profile

    out: dict[str, str] = {}
    for op in load_profile("qingke-mes-v1"):
        if op.direction != "client-to-server":
            continue
        examples = op.response_examples.get("200") or {}
        example = examples.get("realistic") or next(iter(examples.values()), None)
        if example is not None and op.path not in out:
            out[op.path] = orjson.dumps(example).decode()
    return out


def one(url: str, speed: float, duration_s: float, scale: int) -> dict[str, Any]:
    """Run line-A02 against ``url`` in this process and measure it."""
    import os

    from twin.metrics.hdrarrays import HdrArrays
    from twin.run.networked import NetConfig, prepare

    if os.environ.get("TWIN_BENCH_SELFCHECK") == "0":  # what the run's self-check costs (issue 14.5)
        from twin.run.checker import CheckerProcess

        CheckerProcess.for_run = classmethod(lambda cls, *a, **k: None)  # type: ignore[method-assign,assignment]

    with tempfile.TemporaryDirectory(prefix="twin-bench-run-") as d:
        config = NetConfig(
            duration_s=duration_s,
            speed=speed,
            scale=scale,
            mes_url=url,
            reports=Path(d),
            compare_offline=False,
            equipment_port=0,
            connections=64,
        )
        run = prepare("line-A02", config)

        async def bounded() -> dict[str, Any]:
            # a saturated run slows virtual time: it is stopped (as Ctrl-C does) at 1.5x its planned wall time
            asyncio.get_running_loop().call_later(duration_s / speed * 1.5 + 15.0, run.stop)
            return await run.run()

        cpu, children = time.process_time(), _children_cpu()
        summary = aio.run(bounded())  # the loop `twin run` runs on (twin.aio)
        cpu, children = time.process_time() - cpu, _children_cpu() - children  # children: the self-check process
        assert run.sim is not None
        delays = run.start_delay
        p50, p99, p999 = (float(v) / 1000 for v in HdrArrays(delays).values_at((50, 99, 99.9)))
        skip = max(STARTUP_MIN_S, duration_s * STARTUP_SHARE)
        steady = _steady(run.path / "exchanges.parquet", skip, duration_s)
        total = summary["total"]
        answered = total["count"] - sum(v for k, v in total["by_code"].items() if not k.isdigit())
        return {
            "speed": speed,
            "scale": scale,
            "equipment": len(run.sim.equipment),
            "planned_wall_s": duration_s / speed,
            "model_wall_s": run.model_wall[1] - run.model_wall[0],
            "requests": total["count"],
            "answered": answered,
            "rate": answered / max(1e-9, run.model_wall[1] - run.model_wall[0]),
            "cpu_us_per_request": cpu / max(1, total["count"]) * 1e6,  # the whole process, start to end
            "checker_cpu_us_per_request": children / max(1, total["count"]) * 1e6,  # its self-check process
            "send_delay_ms": {"p50": p50, "p99": p99, "p99.9": p999},
            "late_starts": total["late_starts"],
            "pace": summary.get("pace", {}),
            "state": summary.get("state"),
            "cells_out": summary.get("cells_out", 0),
            "steady": steady,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _steady(log: Path, skip_s: float, duration_s: float) -> dict[str, Any]:
    """Send delays after the start-up storm: percentiles, late starts, and late starts per half of that window."""
    import numpy as np

    from twin.metrics.log import read_exchange_log

    virtual, delay, startup = [], [], []
    for ex in read_exchange_log(log):
        if ex.intended_virtual_s >= skip_s:
            virtual.append(ex.intended_virtual_s)
            delay.append(ex.sent_wall - ex.intended_wall)
        else:
            startup.append(ex.sent_wall - ex.intended_wall)
    if not delay:
        return {"requests": 0}
    v, d = np.array(virtual), np.array(delay) * 1000
    up = np.array(startup or [0.0]) * 1000  # the start-up: the hosts power on (line file power_on_s)
    middle = (skip_s + duration_s) / 2
    late = d > 5.0
    return {
        "requests": len(d),
        "p50_ms": float(np.percentile(d, 50)),
        "p99_ms": float(np.percentile(d, 99)),
        "p999_ms": float(np.percentile(d, 99.9)),
        "late": int(late.sum()),
        "late_first_half": int((late & (v < middle)).sum()),
        "late_second_half": int((late & (v >= middle)).sum()),
        "startup": {
            "requests": len(startup),
            "p50_ms": float(np.percentile(up, 50)),
            "p99_ms": float(np.percentile(up, 99)),
            "late": int((up > 5.0).sum()),
        },
    }


def _spawn(url: str, speed: float, duration_s: float, scale: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_run", "--one", url, str(speed), str(duration_s), str(scale)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case speed {speed} scale {scale} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


ENGINE_HEAD = ("speed", "req/s", "achieved", "wall/planned", "steady p50", "steady p99", "late")
ENGINE_HEAD += ("CPU us/req", "checker", "RSS MB", "sustained")
ENGINE_WIDTHS = (7, 8, 9, 13, 11, 11, 8, 11, 8, 7, 10)


def _engine_row(speed: float, r: dict[str, Any], ok: bool) -> str:
    overrun, st = r["model_wall_s"] / r["planned_wall_s"], r["steady"]
    achieved = r["pace"].get("speed_achieved") or 0.0
    cells = (
        f"{speed:>7,.0f} {r['rate']:>8,.0f} {achieved:>9,.0f} {overrun:>13.2f} {st.get('p50_ms', 0):>11.2f} "
        f"{st.get('p99_ms', 0):>11.2f} {r['late_starts']:>8,} {r['cpu_us_per_request']:>11,.0f} "
        f"{r.get('checker_cpu_us_per_request', 0):>8,.0f} {r['max_rss_mb']:>7,.0f} "
    )
    said = "yes" if ok else "no (saturated)" if r["pace"].get("saturated_now") else "no"
    return cells + f"{said:>10}"


def sustained(r: dict[str, Any]) -> bool:
    """The twin kept the pace asked after the start-up: it did not saturate then (a start-up burst it caught up
    with does not count: its wall time overruns the plan by what it slowed down then) and its calls left on
    time (send delay p99 at most ``STEADY_P99_MS``). Late starts per half are not judged any more: on a shared
    machine they grew by noise, and lateness that lasts is what the governor acts on."""
    skip = max(STARTUP_MIN_S, r["planned_wall_s"] * r["speed"] * STARTUP_SHARE)
    late_saturation = any(to is None or to > skip for _, to in r["pace"].get("periods_virtual_s", []))
    return not late_saturation and r["steady"].get("p99_ms", 0.0) <= STEADY_P99_MS


def engine(url: str) -> tuple[float, float]:
    """Rising speeds until one is not sustained; returns (highest sustained rate, its speed)."""
    print(
        "engine: line-A02 with the whole model at rising speed (x1.5) until the twin does not sustain it after the"
        " start-up (it saturates: its pace governor slows virtual time; or the steady send-delay p99 passes 50 ms)"
    )
    print(" ".join(f"{h:>{w}}" for h, w in zip(ENGINE_HEAD, ENGINE_WIDTHS, strict=True)))
    best, best_speed, speed = 0.0, 0.0, ENGINE_FIRST
    failed = None
    while speed <= ENGINE_TOP:
        r = _spawn(url, speed, speed * ENGINE_WALL_S, 1)
        ok = sustained(r)
        print(_engine_row(speed, r, ok), flush=True)
        if not ok:
            failed = speed
            break
        if r["rate"] > best:
            best, best_speed = r["rate"], speed
        speed = round(speed * ENGINE_STEP)
    # x1.5 steps leave up to a third of the engine unmeasured: halve the gap to the first speed not sustained, twice
    low = best_speed
    for _ in range(ENGINE_REFINE if failed and low else 0):
        speed = round(math.sqrt(low * failed))
        r = _spawn(url, speed, speed * ENGINE_WALL_S, 1)
        ok = sustained(r)
        print(_engine_row(speed, r, ok), flush=True)
        if ok:
            low = speed
            if r["rate"] > best:
                best, best_speed = r["rate"], speed
        else:
            failed = speed
    return best, best_speed


def overload(url: str, sustained_rate: float, sustained_speed: float) -> None:
    """3x the highest sustained speed: the twin must still send most of its sustainable rate, in bounded memory."""
    speed = OVERLOAD_FACTOR * sustained_speed
    r = _spawn(url, speed, speed * ENGINE_WALL_S, 1)
    pace = r["pace"]
    ratio = r["rate"] / sustained_rate if sustained_rate else 0.0
    print(
        f"overload: speed {speed:,.0f} ({OVERLOAD_FACTOR:g}x the highest sustained {sustained_speed:,.0f}): "
        f"{r['rate']:,.0f} req/s vs {sustained_rate:,.0f} sustainable = {ratio:.2f} (target >= 0.80); "
        f"peak RSS {r['max_rss_mb']:,.0f} MB (target < 1,024); saturated {pace.get('saturated')}, speed achieved "
        f"{pace.get('speed_achieved') or 0:,.0f} (lowest kept {pace.get('speed_lowest_kept') or 0:,.0f}), "
        f"calls in flight at most {pace.get('in_flight_most', 0):,} of {pace.get('in_flight_max', 0):,}, "
        f"{r['cells_out']:,} cells out, send delay p50 {r['send_delay_ms']['p50']:.1f} ms"
    )


def locust_figures(url: str, best: float) -> None:
    """Locust on the same payloads, one process and two, against the twin's highest sustained rate."""
    from benchmarks.bench_transport import IN_FLIGHT, locust_rate

    for processes in (1, 2):
        with tempfile.TemporaryDirectory(prefix="twin-bench-locust-") as d:
            try:
                locust = locust_rate(url, ENGINE_WALL_S, Path(d), processes=processes)
            except (OSError, subprocess.SubprocessError, StopIteration) as exc:
                print(f"Locust --processes {processes} did not run ({exc!r}): pip install 'twin[bench]'")
                continue
        label = "one process" if processes == 1 else f"--processes {processes}"
        print(f"Locust (FastHttpUser, {label}, {IN_FLIGHT * processes} users): {locust:8,.0f} req/s")
        if locust and best:
            target = "target >= 1.5x, moonshot 2x" if processes == 1 else "the twin with one process"
            print(f"ratio twin (one process) / Locust {label}: {best / locust:.2f}x   ({target})")


def takt(url: str) -> None:
    scale = max(1, math.ceil(TAKT_RATE / PER_COPY_RATE))
    r = _spawn(url, 1.0, TAKT_WALL_S, scale)
    d, st = r["send_delay_ms"], r["steady"]
    print(
        f"takt fidelity: realtime, {scale} copies ({r['equipment']:,} equipment), {r['rate']:,.0f} req/s over the run."
        f"\n  after the start-up (from {max(STARTUP_MIN_S, TAKT_WALL_S * STARTUP_SHARE):.0f} s, "
        f"{st['requests']:,} requests): send "
        f"delay p50 {st['p50_ms']:.2f} ms, p99 {st['p99_ms']:.2f} ms, p99.9 {st['p999_ms']:.2f} ms (target p99 < 5 ms),"
        f" late starts {st['late']:,}\n  during the start-up (hosts powering on over the line file's power_on_s, "
        f"{st['startup']['requests']:,} requests): send delay p50 {st['startup']['p50_ms']:.2f} ms, p99 "
        f"{st['startup']['p99_ms']:.2f} ms (target p99 < 50 ms), late starts {st['startup']['late']:,}"
        f"\n  whole run: p50 {d['p50']:.2f} ms, p99 {d['p99']:.2f} ms, late starts {r['late_starts']:,} of "
        f"{r['requests']:,}; the twin saturated: {r['pace'].get('saturated')}"
    )


def scale_cases(url: str) -> None:
    print("scale: realtime; after the start-up storm, late starts in each half of the rest (must not grow); memory")
    head = ("copies", "equipment", "req/s", "p99 ms", "late 1st", "late 2nd", "RSS MB", "KB/eq")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (6, 9, 7, 7, 8, 8, 7, 6), strict=True)))
    for scale in SCALES:
        r = _spawn(url, 1.0, SCALE_WALL_S, scale)
        st = r["steady"]
        print(
            f"{scale:>6} {r['equipment']:>9,} {r['rate']:>7,.0f} {st['p99_ms']:>7.2f} "
            f"{st['late_first_half']:>8,} {st['late_second_half']:>8,} {r['max_rss_mb']:>7,.0f} "
            f"{r['max_rss_mb'] * 1024 / r['equipment']:>6,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=("engine", "overload", "takt", "scale"), action="append")
    parser.add_argument("--one", nargs=4, metavar=("URL", "SPEED", "DURATION_S", "SCALE"))
    parser.add_argument("--overload-of", type=float, metavar="SPEED", help="a sustained speed known already")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    if args.one:
        url, speed, duration, scale = args.one
        print(json.dumps(one(url, float(speed), float(duration), int(scale))))
        return
    from benchmarks.nginx_stub import nginx_stub

    cases = args.case or ["engine", "overload", "takt", "scale"]
    with nginx_stub(canned_answers()) as url:
        if args.overload_of:
            r = _spawn(url, args.overload_of, args.overload_of * ENGINE_WALL_S, 1)
            print(_engine_row(args.overload_of, r, sustained(r)))
            overload(url, r["rate"], args.overload_of)
        elif "engine" in cases or "overload" in cases:
            best, best_speed = engine(url)
            print(f"twin, highest sustained rate with the whole model (one process): {best:8,.0f} req/s at speed"
                  f" {best_speed:,.0f}")
            if "engine" in cases:
                locust_figures(url, best)
            if "overload" in cases and best_speed:
                overload(url, best, best_speed)
        if "takt" in cases:
            takt(url)
        if "scale" in cases:
            scale_cases(url)


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    if "--one" not in sys.argv:
        print(f"({time.monotonic() - t0:.0f} s)")
