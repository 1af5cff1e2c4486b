"""The live web view of a sharded run: the same page, fed with the sum of the shards' samples.

Each worker computes its shards' samples itself (``ShardWorker.sample``: ``twin.run.sampler`` in the thread of
the models, nothing on the hot path), and the driver polls them once a second (``ShardedRun._poll``). Here
they are added up into the single run's sample, so the page needs nothing new to draw the totals, plus a
``shards`` list (requests per second, requests, failures, virtual time and speed of each shard, and whether
its worker died) that the page shows as a table.

What adds up exactly: requests, failures, rates, late starts, cells, WIP, backlog, errors by code. Per-group
p50/p99 over the last second are the *highest* of the shards' (a shard's percentile is exact; percentiles of
a union are not the sum of anything): a slow shard shows, a fast one cannot hide it. The run's final
percentiles are exact (merged HDR histograms, ``twin.run.merge``).

The controls act on every shard (speed, load shape: each shard changes its own clock, within a second of each
other), on the one embedded MES the driver runs (faults, crash), on the shard that runs the equipment
(interlock), or on the whole run (stop).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from twin.line.model import copy_code
from twin.run.controls import Controls, Refused
from twin.run.sampler import ALL, GROUPS, OTHER, STATES, minute_point
from twin.run.sharded import ShardedRun
from twin.run.web import WebAddress, WebView

T = TypeVar("T")


class ShardedSampler:
    """The ``Sampler`` interface of the web view, over the last samples the shards sent."""

    def __init__(self, run: ShardedRun) -> None:
        self.run = run

    def _station_id(self, line: str, station: str) -> str:
        return station if len(self.run.lines) == 1 else f"{line}/{station}"

    def ready(self) -> bool:
        return bool(self.run.samples)

    def layout(self) -> dict[str, Any]:
        run = self.run
        stations, buffers, equipment = [], [], {}
        for name, line in run.lines.items():
            mine = [s for s in run.shards if s.line == name]
            for st in line.stations:
                sid = self._station_id(name, st.id)
                stations.append({"id": sid, "process": st.process, "input": st.input, "output": st.output,
                                 "count": st.count * sum(len(s.copies) for s in mine)})  # fmt: skip
                equipment[sid] = [copy_code(c, k) for s in mine for k in s.copies for c in st.equipment_codes()]
            buffers += [self._station_id(name, b.id) for b in line.buffers.values() if not b.sink]
        return {
            "line": run.name,
            "run_folder": str(run.path),
            "duration_s": run.config.duration_s,
            "speed": run.config.speed,
            "scale": sum(len(s.copies) for s in run.shards),
            "load": run.config.load or "steady",
            "target": run.config.mes_url or "embedded",
            "groups": [ALL, *GROUPS, OTHER],
            "states": list(STATES),
            "stations": stations,
            "buffers": buffers,
            "equipment": equipment,
            "shards": [s.to_dict() for s in run.shards],
        }

    def _samples(self) -> list[tuple[Any, dict[str, Any]]]:
        return [(s, self.run.samples[s.index]) for s in self.run.shards if s.index in self.run.samples]

    def line(self) -> dict[str, Any]:
        """Each station's worst state over the shards (and each equipment's), WIP added up, interlocks."""
        states: dict[str, list[str]] = {}
        buffers: dict[str, list[Any]] = {}
        interlocks: list[dict[str, Any]] = []
        for spec, sample in self._samples():
            line = sample.get("line") or {}
            for st in line.get("stations", []):
                states.setdefault(self._station_id(spec.line, st["id"]), []).extend(st["eq"])
            for bid, (held, cap) in line.get("buffers", {}).items():
                key = self._station_id(spec.line, bid)
                was = buffers.get(key, [0, None])
                buffers[key] = [was[0] + held, (was[1] or 0) + cap if cap else was[1]]
            interlocks += line.get("interlocks", [])
        interlocks.sort(key=lambda i: i.get("received", 0))
        self.run.interlocks = interlocks
        return {
            "stations": [
                {"id": sid, "state": min(eq, key=STATES.index) if eq else "idle", "eq": eq}
                for sid, eq in states.items()
            ],
            "buffers": buffers,
            "interlocks": interlocks[-50:],
            "interlocks_total": len(interlocks),
        }

    def sample(self) -> dict[str, Any]:
        """The totals of the shards' last samples, and a row per shard."""
        got = self._samples()
        now = time.time()
        groups: dict[str, dict[str, float]] = {}
        errors: Counter[str] = Counter()
        link = {"online": True, "backlog": 0, "draining": False, "drain_per_s": 0.0, "outages": 0,
                "offline_since": None, "relogins": 0, "mes_up": getattr(self.run.mes, "up", None)}  # fmt: skip
        sums = Counter[str]()
        rows = []
        for spec, s in got:
            for g, v in s["groups"].items():
                out = groups.setdefault(g, {"rps": 0.0, "p50": 0.0, "p99": 0.0, "n": 0})
                out["rps"] = round(out["rps"] + v["rps"], 2)
                out["n"] += v["n"]
                out["p50"], out["p99"] = max(out["p50"], v["p50"]), max(out["p99"], v["p99"])
            errors.update(s.get("errors", {}))
            for k in ("requests", "failures", "late_starts", "cells_out"):
                sums[k] += s[k]
            sums["errors_per_s"] += s["errors_per_s"]
            sums["cells_per_hour"] += s["cells_per_hour"]
            sl = s["link"]
            link["online"] = link["online"] and sl["online"]
            link["backlog"] += sl["backlog"]
            link["draining"] = link["draining"] or sl["draining"]
            link["drain_per_s"] += sl["drain_per_s"]
            link["outages"] = max(link["outages"], sl["outages"])
            link["relogins"] += sl["relogins"]
            if sl["offline_since"] is not None:
                link["offline_since"] = min(link["offline_since"] or sl["offline_since"], sl["offline_since"])
            rows.append({"shard": spec.index, "worker": spec.worker, "line": spec.line, "copies": list(spec.copies),
                         "rps": s["groups"].get(ALL, {}).get("rps", 0.0), "requests": s["requests"],
                         "failures": s["failures"], "virtual_s": s["virtual_s"],
                         "speed_achieved": s["speed_achieved"], "dead": spec.worker in self.run.dead})  # fmt: skip
        first = got[0][1] if got else {}
        return {
            "t": round(now, 3),
            "wall_s": round(now - self.run.started, 3),
            "virtual_s": max((s["virtual_s"] for _, s in got), default=0.0),
            "phase": "running" if got else "starting",
            "speed_asked": first.get("speed_asked", self.run.config.speed),
            "speed_achieved": round(sum(s["speed_achieved"] for _, s in got) / len(got), 3) if got else 0.0,
            "saturated": any(s.get("saturated") for _, s in got),  # one shard's limit is the twin's (twin.sim.pace)
            "groups": groups,
            "requests": sums["requests"],
            "failures": sums["failures"],
            "errors_per_s": round(sums["errors_per_s"], 2),
            "errors": dict(errors.most_common(12)),
            "late_starts": sums["late_starts"],
            "link": link,
            "cells_out": sums["cells_out"],
            "cells_per_hour": round(sums["cells_per_hour"], 1),
            "shards": rows,
        }

    def minute(self, samples: list[Mapping[str, Any]]) -> dict[str, Any] | None:
        """A coarse point of the history: the mean rates of the samples since the last one, the highest p99."""
        if not samples:
            return None
        groups: dict[str, dict[str, float]] = {}
        for g in {g for s in samples for g in s["groups"]}:
            points = [s["groups"][g] for s in samples if g in s["groups"]]
            groups[g] = {"rps": round(sum(p["rps"] for p in points) / len(samples), 2),
                         "p50": max(p["p50"] for p in points), "p99": max(p["p99"] for p in points)}  # fmt: skip
        return minute_point(samples, groups)


class ShardedControls(Controls):
    """The page's controls on a sharded run: speed, load shape and interlocks go to the shards that run them."""

    def _when(self) -> dict[str, float]:
        virtual = max((s.get("virtual_s", 0.0) for s in self.run.statuses.values()), default=0.0)  # type: ignore[attr-defined]
        return {"wall_s": round(time.time() - self.run.started, 3), "virtual_s": round(virtual, 3)}

    async def _on_shards(self, name: str, args: dict[str, Any], shards: list[int] | None = None) -> dict[str, Any]:
        run: ShardedRun = self.run  # type: ignore[assignment]
        workers = sorted({s.worker for s in run.shards if shards is None or s.index in shards} - set(run.dead))
        if not workers:
            raise Refused("no live shard runs that")
        answers = await asyncio.gather(*(run.pool.call(w, "control", name, args) for w in workers))
        entries = [e for got in answers for e in got if shards is None or e["shard"] in shards]
        refused = [e for e in entries if not e["ok"]]
        if refused:
            raise Refused("; ".join(f"shard {e['shard']}: {e.get('error')}" for e in refused))
        return {"shards": {str(e["shard"]): e.get("result") for e in entries}}

    async def _speed(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._on_shards("speed", args)

    async def _shape(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._on_shards("shape", args)

    async def _interlock(self, args: dict[str, Any]) -> dict[str, Any]:
        code = str(args.get("equipment", ""))
        run: ShardedRun = self.run  # type: ignore[assignment]
        for spec in run.shards:
            line = run.lines[spec.line]
            if code in {copy_code(c, k) for k in spec.copies for c in line.equipment_codes()}:
                return await self._on_shards("interlock", args, [spec.index])
        raise Refused(f"equipment {code!r} is not running in this twin")


async def with_sharded_web_view(
    main: Coroutine[Any, Any, T], run: ShardedRun, address: WebAddress, say: Callable[[str], None]
) -> T:
    """Await ``main`` (the sharded run) with the page served around it; the shards send samples meanwhile."""
    run.want_samples = True
    try:
        view = WebView(run, address, say=say, sampler=ShardedSampler(run), controls=ShardedControls(run))  # type: ignore[arg-type]
        await view.__aenter__()
    except BaseException:
        main.close()
        raise
    try:
        return await main
    finally:
        await view.__aexit__(None, None, None)
