"""A sharded run: the copies of a line (``--scale K --workers N``) or of a factory, over worker processes.

The driver (this module, in ``twin run``'s process) owns what there is one of: the run folder, the one MES
(the embedded MES is started here, once, and told every shard's equipment addresses through one registry
file; or ``--mes``), the live view, Ctrl-C, and the merge at the end. The workers (``twin.run.shard``, Ray
actors or in this process, ``twin.run.workers``) own the rest: each shard's model, host link and equipment
side, and its folder ``shards/<n>/`` (exchange log, histograms, summary, outbox).

At the end the shards' HDR histograms are merged exactly (``histograms.json`` at the top is their sum, which
the report reads), the report reads every shard's exchange log, and ``summary.json`` holds the totals and a
``shards`` list with each shard's own. A worker that dies (its process killed, or lost with its node) is a
fault: the others run to their end, its folder keeps its last checkpoint, and the run is hurt (exit 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hdrh.histogram import HdrHistogram

from twin.errors import ConfigError, TwinError
from twin.line.factory import Copy, Factory, is_factory, load_factory
from twin.line.model import Line
from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import new_histogram
from twin.metrics.runfolder import new_run_dir, write_json
from twin.run.hurt import death_fault, iso
from twin.run.networked import NetConfig, check_config
from twin.run.plan import ShardSpec, plan_shards
from twin.transport import target
from twin.transport.embedded import EmbeddedMes

POLL_S = 1.0
POLL_TIMEOUT_S = 5.0  # a worker's figures that take longer are skipped this time (its result still counts)


class ShardStartError(TwinError):
    """A worker of a sharded run could not start its shards (its process, its node, or twin missing there)."""


SUMS = ("requests", "failures", "late_starts", "interlocks", "backlog", "cells_out")


class _Folder:
    """What the web view's controls need of a run folder: its state and the extras written into the summary."""

    def __init__(self) -> None:
        self.state = "running"
        self.extra: dict[str, Any] = {}


class ShardedRun:
    """One run over several shards; ``await run.run()`` returns the merged summary written to ``summary.json``."""

    def __init__(
        self,
        name: str,
        lines: dict[str, Line],
        shards: list[ShardSpec],
        config: NetConfig,
        *,
        workers: int,
        ray_address: str | None = None,
        factory: Factory | None = None,
    ) -> None:
        self.name = name
        self.lines = lines
        self.shards = shards
        self.config = config
        self.workers = workers
        self.ray_address = ray_address
        self.factory = factory
        self.path = new_run_dir(config.reports, name)
        self.folder = _Folder()
        self.started = time.time()
        self.mes: EmbeddedMes | None = None
        self.pool: Any = None
        self.on_fault: list[Callable[[dict[str, Any]], None]] = []
        self.faults: list[dict[str, Any]] = []
        self.statuses: dict[int, dict[str, Any]] = {}  # shard -> its last status
        self.samples: dict[int, dict[str, Any]] = {}  # shard -> its last web sample (when a page is served)
        self.want_samples = False
        self.rates: dict[int, float] = {}  # shard -> requests per second over the last poll
        self.interlocks: list[dict[str, Any]] = []  # the shards' latest, as the web view last added them up
        self.dead: dict[int, str] = {}  # worker -> why it is gone
        self._stop_requested = False
        self._stop_sent = False
        self._aborted = False
        self._last_poll: tuple[float, dict[int, int]] | None = None
        write_json(self.path / "settings.json", self.settings())

    # -- what it is -------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "line": self.name,
            "factory": str(self.factory.source) if self.factory else None,
            "lines": {name: str(line.source) if line.source else name for name, line in self.lines.items()},
            "mode": "realtime" if c.speed == 1 else f"speed {c.speed:g}",
            "speed": c.speed,
            "duration_s": c.duration_s,
            "seed": c.seed,
            "scale": sum(len(s.copies) for s in self.shards),
            "load": c.load,
            "target": c.mes_url or "embedded",
            "workers": self.workers,
            "backend": self.backend,
            "ray_address": self.ray_address,
            "shards": [s.to_dict() for s in self.shards],
            "equipment": sum(self.lines[s.line].equipment_count() * len(s.copies) for s in self.shards),
            "mes_args": c.mes_args,
        }

    def _ray(self) -> bool:
        return self.workers > 1 or self.ray_address is not None

    @property
    def backend(self) -> str:
        """Where the workers run: ``ray`` (actors), or ``in-process`` (one worker, in the driver's process)."""
        return "ray" if self._ray() else "in-process"

    def plan(self) -> list[list[ShardSpec]]:
        out: list[list[ShardSpec]] = [[] for _ in range(max(s.worker for s in self.shards) + 1)]
        for s in self.shards:
            out[s.worker].append(s)
        return out

    # -- the run ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ctrl-C: every shard ends at its next step and writes its folder; then the whole folder is written."""
        self._stop_requested = True
        if self.pool is not None and not self._stop_sent:
            self._stop_sent = True
            for w in range(len(self.pool_workers())):
                asyncio.get_running_loop().create_task(self._quiet(w, "stop"))

    def pool_workers(self) -> list[int]:
        return [w for w in range(len(self.plan())) if w not in self.dead]

    async def _quiet(self, worker: int, method: str, *args: Any) -> Any:
        with contextlib.suppress(Exception):  # a dead worker: seen by its result, reported there
            return await self.pool.call(worker, method, *args)
        return None

    async def run(self, progress: Callable[[ShardedRun], None] | None = None) -> dict[str, Any]:
        from twin.run.workers import LocalWorkers, RayWorkers

        plan = self.plan()
        results: dict[int, list[dict[str, Any]] | BaseException] = {}
        state = "failed"
        try:
            if self._ray():
                self.pool = RayWorkers(plan, self.config, self.path, self.ray_address)
            else:
                self.pool = LocalWorkers(plan, self.config, self.path)
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(self.pool.close)
                opened = await self._open(len(plan))
                registry = self._registry(opened)
                try:
                    url, token = await self._target(stack, registry)
                except BaseException as exc:
                    await asyncio.gather(*(self._quiet(w, "abort", str(exc)) for w in range(len(plan))))
                    await asyncio.gather(*(self._quiet(w, "result") for w in range(len(plan))))
                    raise
                self.folder.extra["target_url"] = url
                await asyncio.gather(*(self.pool.call(w, "go", url, token) for w in range(len(plan))))
                if self._stop_requested:
                    self._stop_sent = False
                    self.stop()
                results = await self._watch(len(plan), progress)
                state = "aborted" if self._aborted else "interrupted" if self._stop_requested else "finished"
                await self._mes_side()
        finally:
            self.folder.state = state
            summary = self._merge(results, state)
        return summary

    async def _open(self, n: int) -> list[dict[int, dict[str, str]]]:
        """Every worker's shards up to their listening hosts; a worker that cannot start is one line of why."""
        try:
            return list(await asyncio.gather(*(self.pool.call(w, "open") for w in range(n))))
        except TwinError:
            raise
        except Exception as exc:  # a Ray task error wraps the worker's own: say its last line, not 40 lines
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith(" ")]
            why = lines[-1] if lines else type(exc).__name__
            raise ShardStartError(
                f"the workers could not start their shards: {why} (on a Ray cluster, every node needs this "
                "version of twin installed)"
            ) from None

    def _registry(self, opened: list[dict[int, dict[str, str]]]) -> Path:
        """Where every host of every shard listens: one file, which the one MES reads."""
        addresses: dict[str, str] = {}
        for by_shard in opened:
            for shard in sorted(by_shard):
                addresses |= by_shard[shard]
        registry = self.path / "registry.yaml"
        registry.write_text(yaml.safe_dump(addresses), encoding="utf-8")
        return registry

    async def _target(self, stack: contextlib.AsyncExitStack, registry: Path) -> tuple[str, str | None]:
        url = self.config.mes_url
        if url is not None:
            await target.check_reachable_async(url, self.config.timeout_s)
            return url, None
        args = ["--db", str(self.path / "mes.sqlite"), "--registry", str(registry), "--durability", "normal"]
        for name, line in self.lines.items():  # several lines in one MES: --line once for each
            args += ["--line", str(line.source) if line.source else name]
        if self.config.profile_ref:
            args += ["--profile", self.config.profile_ref]
        self.mes = await stack.enter_async_context(EmbeddedMes(self.path, args + list(self.config.mes_args)))
        self.mes.on_death(self._mes_died)
        return self.mes.url, self.mes.admin_token

    def _mes_died(self, mes: EmbeddedMes) -> None:
        virtual = max((s.get("virtual_s", 0.0) for s in self.statuses.values()), default=0.0)
        self._fault(death_fault(mes.died, mes.exit_code, virtual))
        self._aborted = True
        self._stop_sent = False
        self.stop()

    def _fault(self, fault: dict[str, Any]) -> None:
        self.faults.append(fault)
        for tell in self.on_fault:
            tell(fault)

    async def _watch(self, n: int, progress: Callable[[ShardedRun], None] | None) -> dict[int, Any]:
        """Poll the shards every second (the live view) until every worker has returned its shards' ends."""
        ends = {w: asyncio.get_running_loop().create_task(self.pool.call(w, "result")) for w in range(n)}
        while True:
            pending = [t for t in ends.values() if not t.done()]
            for w, task in ends.items():
                if task.done() and w not in self.dead and task.exception() is not None:
                    self._worker_died(w, task.exception())
            if not pending:
                break
            await asyncio.wait(pending, timeout=POLL_S)
            await self._poll([w for w in range(n) if not ends[w].done()])
            if progress is not None:
                progress(self)
        return {w: (t.exception() or t.result()) for w, t in ends.items()}

    def _worker_died(self, worker: int, exc: BaseException | None) -> None:
        shards = [s.index for s in self.shards if s.worker == worker]
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        self.dead[worker] = why
        self._fault({"kind": "shard-died", "worker": worker, "shards": shards, "at": iso(time.time()), "why": why})

    async def _poll(self, workers: list[int]) -> None:
        got = await asyncio.gather(*(self._ask(w, "status") for w in workers), return_exceptions=True)
        samples: list[Any] = []
        if self.want_samples:
            samples = await asyncio.gather(*(self._ask(w, "sample") for w in workers), return_exceptions=True)
        now = time.monotonic()
        for items in got:
            if isinstance(items, BaseException):
                continue
            for st in items:
                self.statuses[st["shard"]] = st
        for items in samples:
            if isinstance(items, BaseException):
                continue
            for sample in items:
                self.samples[sample["shard"]] = sample
        counts = {k: int(st["requests"]) for k, st in self.statuses.items()}
        if self._last_poll is not None and now > self._last_poll[0]:
            then, before = self._last_poll
            self.rates = {k: (c - before.get(k, 0)) / (now - then) for k, c in counts.items()}
        self._last_poll = (now, counts)

    async def _ask(self, worker: int, method: str) -> Any:
        """A live figure from a worker, or a timeout: a worker too busy to answer keeps its last figures."""
        return await asyncio.wait_for(self.pool.call(worker, method), POLL_TIMEOUT_S)

    # -- the figures -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The live view's figures: the totals of the shards (percentiles from their merged histograms)."""
        sts = list(self.statuses.values())
        out: dict[str, Any] = {k: sum(int(st.get(k, 0)) for st in sts) for k in SUMS}
        merged = new_histogram()
        for st in sts:
            merged.add(HdrHistogram.decode(st["latency_hdr"].encode("ascii")))
        p50, p99 = HdrArrays(merged).values_at((50, 99)) if merged.get_total_count() else (0.0, 0.0)
        asked = self.config.speed
        out |= {
            "virtual_s": max((st["virtual_s"] for st in sts), default=0.0),
            "duration_s": self.config.duration_s,
            "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000,
            "online": all(st.get("online", True) for st in sts),
            "wall_s": time.time() - self.started,
            "faults": [f["kind"] for f in self.faults],
            # one saturated shard is the twin's limit (twin.sim.pace); the pace kept is the slowest shard's
            "saturated": any(st.get("saturated") for st in sts),
            "speed_asked": asked,
            "speed_kept": min((float(st.get("speed_kept", asked)) for st in sts), default=asked),
            "shards": [
                {
                    "shard": s.index,
                    "worker": s.worker,
                    "line": s.line,
                    "copies": list(s.copies),
                    "requests": int(self.statuses.get(s.index, {}).get("requests", 0)),
                    "rate_per_s": round(self.rates.get(s.index, 0.0), 1),
                    "dead": s.worker in self.dead,
                }
                for s in self.shards
            ],
        }
        return out

    async def _mes_side(self) -> None:
        admin = self.mes
        if admin is None:
            return
        stats = await admin.stats()
        if stats is not None:
            self.folder.extra["mes_counts"] = stats

    def _merge(self, results: dict[int, Any], state: str) -> dict[str, Any]:
        """The whole folder: histograms merged exactly, the shards' totals, faults and why the run is hurt."""
        from twin.run.merge import merge_shards

        summary = merge_shards(self, results, state)
        write_json(self.path / "summary.json", summary)
        return summary


def prepare_sharded(ref: str, config: NetConfig, *, workers: int, ray_address: str | None = None) -> ShardedRun:
    """A factory file, or ``--scale K`` copies of one line, planned over ``workers``; options checked first."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    config.equipment_prefix = target.check_prefix(config.equipment_prefix)
    if workers > 1 or ray_address is not None:
        from twin.run.workers import import_ray

        import_ray()  # not installed: exit 2 with the install command, before anything starts
    factory: Factory | None = None
    if is_factory(ref):
        if config.scale != 1:
            raise ConfigError("--scale is for one line; a factory file says how many copies of each line run")
        factory = load_factory(ref)
        lines, copies, name = factory.lines, list(factory.copies), factory.name
        for line in lines.values():  # on a copy: --preroll auto is each line's own, resolved by its shard
            check_config(line, dataclasses.replace(config), equipment=factory.equipment_count())
    else:
        line, _profile, _checked = check_config(ref, dataclasses.replace(config))
        lines = {line.name: line}
        copies = [Copy(line.name, str(line.source or ref), k, 0.0) for k in range(1, config.scale + 1)]
        name = line.name
    if config.energy:
        raise ConfigError("--energy runs with one process; leave it out of a sharded run")
    equipment = {n: line.equipment_count() for n, line in lines.items()}
    shards = plan_shards(copies, equipment, workers, config.equipment_prefix)
    return ShardedRun(name, lines, shards, config, workers=workers, ray_address=ray_address, factory=factory)
