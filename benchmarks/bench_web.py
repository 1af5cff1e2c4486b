"""``twin run --web`` (issue 16): what the live web view costs the run, and how fast the page hears of things.

The target is the nginx stub of ``bench_run`` (every interface answered at once), so that the twin's own
process is the bottleneck and anything the web view takes from it shows in the rate.

* cost:     line-A02 at a speed it keeps (every run then does the same work: same seed, same calls), the same
            short run with and without ``--web``, interleaved, a few repetitions. With ``--web`` a page is
            connected the whole time (``curl`` reading the event stream, in a process of its own, as a browser on
            a wall screen would be). The engine's sustained rate is bounded by the CPU time it spends per request
            (one core), so the cost of ``--web`` on that rate is the ratio of CPU seconds per answered request,
            from the medians; the target is under 5 %. Also printed: the share of the loop the web view's own
            sampling took (timed around it), and the answered rate of each run. Comparing the rates of runs at a
            speed beyond the engine's pace was tried and dropped: on a shared 2-core machine pairs of identical
            runs differed by 0.5-1.7x.
* latency:  line-A02 at a speed it keeps, a headless Chromium showing the page: the lag of each second's
            update (sampled on the server -> handled by the page) and, for interlocks sent from the page, the
            time from the equipment stopped (the twin's own record) to its station shown red.

    python -m benchmarks bench_web                     # both (about 4 minutes)
    python -m benchmarks.bench_web --case cost
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twin import aio

COST_SPEED = 150.0  # about 2,000 req/s: a pace line-A02 keeps here even with other work on the machine
COST_WALL_S = 20.0  # wall time of one run
REPETITIONS = 4
LATENCY_SPEED = 60.0
LATENCY_WALL_S = 40.0
INTERLOCKS = 5


def one(url: str, speed: float, duration_s: float, web: bool) -> dict[str, Any]:
    """line-A02 against ``url`` in this process, with or without the web view and a page reading it."""
    from twin.run.networked import NetConfig, prepare
    from twin.run.web import WebAddress, WebView

    sampling = [0.0, 0]

    async def go(run: Any) -> dict[str, Any]:
        if not web:
            return await run.run()
        async with WebView(run, WebAddress("127.0.0.1", 0)) as view:
            sample = view._sample

            def timed() -> None:  # the web view's own work each second, timed
                t0 = time.perf_counter()
                sample()
                sampling[0] += time.perf_counter() - t0
                sampling[1] += 1

            view._sample = timed  # type: ignore[method-assign]
            page = subprocess.Popen(["curl", "-sN", f"{view.url}events", "-o", "/dev/null"])
            try:
                return await run.run()
            finally:
                page.terminate()
                page.wait(10)

    with tempfile.TemporaryDirectory(prefix="twin-bench-web-") as d:
        config = NetConfig(duration_s=duration_s, speed=speed, mes_url=url, reports=Path(d), compare_offline=False,
                           equipment_port=0, connections=64)  # fmt: skip
        run = prepare("line-A02", config)
        cpu0 = _cpu_s()
        summary = aio.run(go(run))
        cpu = _cpu_s() - cpu0
        total = summary["total"]
        answered = total["count"] - sum(v for k, v in total["by_code"].items() if not k.isdigit())
        wall = run.model_wall[1] - run.model_wall[0]
        return {"web": web, "answered": answered, "model_wall_s": wall, "rate": answered / max(wall, 1e-9),
                "planned_wall_s": duration_s / speed, "cpu_s": cpu, "cpu_us_per_request": 1e6 * cpu / max(answered, 1),
                "sampling_s": sampling[0], "samples": sampling[1]}  # fmt: skip


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spawn(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_web", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cost(url: str) -> None:
    print(f"cost: line-A02 at speed {COST_SPEED:g} for {COST_WALL_S:g} wall s, with and without --web (a page "
          "connected), interleaved; CPU of the twin's process per answered request")  # fmt: skip
    cpu: dict[bool, list[float]] = {False: [], True: []}
    share = []
    for rep in range(REPETITIONS):
        order = (False, True) if rep % 2 == 0 else (True, False)  # interleaved: drift hits both alike
        for web in order:
            r = _spawn("--one", url, str(COST_SPEED), str(COST_SPEED * COST_WALL_S), "web" if web else "plain")
            cpu[web].append(r["cpu_us_per_request"])
            kept = r["model_wall_s"] <= 1.05 * r["planned_wall_s"]
            extra = ""
            if web:
                share.append(r["sampling_s"] / r["model_wall_s"])
                extra = f", sampling {1000 * r['sampling_s'] / max(r['samples'], 1):.1f} ms x {r['samples']}"
            print(f"  {'--web' if web else 'plain':>6}: {r['cpu_us_per_request']:6.1f} us CPU per request, "
                  f"{r['rate']:6,.0f} req/s answered, pace {'kept' if kept else 'NOT kept'} "
                  f"({r['model_wall_s']:.1f} s for {r['planned_wall_s']:.1f}){extra}")  # fmt: skip
    plain, web = statistics.median(cpu[False]), statistics.median(cpu[True])
    pairs = [w / p for w, p in zip(cpu[True], cpu[False], strict=True)]
    print(f"median CPU per request: plain {plain:.1f} us, --web {web:.1f} us; ratio {web / plain:.3f} "
          f"(per pair {', '.join(f'{x:.3f}' for x in pairs)}): cost of --web on the sustained rate "
          f"{100 * (1 - plain / web):+.1f} % (target < 5 %)")  # fmt: skip
    print(f"the web view's sampling took {100 * statistics.median(share):.2f} % of the run's wall time (median)")


def latency_in_browser(url: str) -> dict[str, Any]:
    """A run with the page open in Chromium: update lags and interlock-to-red times, as the page measured them."""
    from tests.run.browser import browser_page
    from twin.run.networked import NetConfig, prepare
    from twin.run.web import WebAddress, WebView

    async def go() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="twin-bench-web-") as d:
            config = NetConfig(duration_s=LATENCY_SPEED * LATENCY_WALL_S, speed=LATENCY_SPEED, mes_url=url,
                               reports=Path(d), compare_offline=False, equipment_port=0)  # fmt: skip
            run = prepare("line-A02", config)
            async with WebView(run, WebAddress("127.0.0.1", 0)) as view:
                task = asyncio.create_task(run.run())
                try:
                    async with browser_page(view.url) as page:
                        await page.wait_for("window.twinView.updates >= 5", 60)
                        codes = [c for cs in view.sampler.layout()["equipment"].values() for c in cs]
                        for i in range(INTERLOCKS):
                            code = codes[(7 * i + 5) % len(codes)]
                            await page.evaluate(f"document.getElementById('i-eq').value = {code!r};"
                                                "document.getElementById('b-interlock').click()")  # fmt: skip
                            await page.wait_for(f"window.twinView.interlockLags.length >= {i + 1}", 10)
                            await asyncio.sleep(2.0)
                        lags = await page.evaluate("window.twinView.lags")
                        stops = await page.evaluate("window.twinView.interlockLags")
                        rate = view.last["groups"]["all"]["rps"]
                        achieved = view.last["speed_achieved"]
                finally:
                    run.stop()
                    await task
            return {"tick_lags_ms": lags, "interlock_to_red_ms": stops, "rps": rate, "achieved": achieved}

    return asyncio.run(go())


def latency(url: str) -> None:
    r = _spawn("--latency", url)
    ticks, stops = sorted(r["tick_lags_ms"]), sorted(r["interlock_to_red_ms"])
    print(f"latency: line-A02 at speed {LATENCY_SPEED:g} ({r['rps']:,.0f} req/s, achieved speed {r['achieved']:.1f}), "
          "page in headless Chromium")  # fmt: skip
    print(f"  update lag (sampled -> on the page), {len(ticks)} updates: median {statistics.median(ticks):.1f} ms, "
          f"p90 {ticks[int(0.9 * (len(ticks) - 1))]:.1f} ms, max {ticks[-1]:.1f} ms")  # fmt: skip
    print(f"  interlock: equipment stopped -> station red on the page, {len(stops)} interlocks: "
          f"median {statistics.median(stops):.0f} ms, max {stops[-1]:.0f} ms (target < 1,000 ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=("cost", "latency"), action="append")
    parser.add_argument("--one", nargs=4, metavar=("URL", "SPEED", "DURATION_S", "WEB"))
    parser.add_argument("--latency", metavar="URL")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    if args.one:
        url, speed, duration, web = args.one
        print(json.dumps(one(url, float(speed), float(duration), web == "web")))
        return
    if args.latency:
        print(json.dumps(latency_in_browser(args.latency)))
        return
    from benchmarks.bench_run import canned_answers
    from benchmarks.nginx_stub import nginx_stub

    cases = args.case or ["cost", "latency"]
    with nginx_stub(canned_answers()) as url:
        if "cost" in cases:
            cost(url)
        if "latency" in cases:
            latency(url)


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    if "--one" not in sys.argv and "--latency" not in sys.argv:
        print(f"({time.monotonic() - t0:.0f} s)")
