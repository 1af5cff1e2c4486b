"""A worker of a sharded run: its shards' line models, host links and equipment sides, in one process.

``ShardWorker`` is what runs in a worker process (a Ray actor, ``twin.run.workers``), or in the driver's own
process when the run is not spread over processes. Every method is a coroutine of the worker's one event loop,
so the driver can ask for the figures while the shards run, with no lock: the figures are read between two
steps of the models, in the thread that runs them.

The driver speaks to a worker in this order:

1. ``open()``: every shard builds its run folder (``shards/<n>/``), starts its hosts' servers (section 3) and
   returns where each equipment listens; the run then waits for the MES.
2. ``go(url, token)``: the one MES of the run (the embedded one the driver started, told every shard's
   addresses, or ``--mes``). With the embedded MES's admin token, each shard announces its opening WIP
   (``POST /admin/opening-wip``) as a single-process run does.
3. ``status()`` / ``sample()`` every second while ``result()`` waits for the end; ``stop()`` on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from twin.line.linefile import load_line
from twin.line.model import Line
from twin.profile import Profile, load_profile
from twin.run.networked import NetConfig, NetworkedRun
from twin.run.plan import ShardSpec
from twin.transport.mesadmin import MesAdmin


class ShardRun(NetworkedRun):
    """A ``NetworkedRun`` that, once its hosts listen, waits for the driver to name the MES of the run."""

    def __init__(self, line: Line, profile: Profile, config: NetConfig, spec: ShardSpec) -> None:
        self.spec = spec
        super().__init__(line, profile, config)
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[dict[str, str]] = loop.create_future()
        self.go: asyncio.Future[tuple[str, str | None]] = loop.create_future()

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "shard": {**self.spec.to_dict(), "pid": os.getpid()}}

    async def _target(self, stack: contextlib.AsyncExitStack, registry: Path) -> str:
        if not self.opened.done():
            self.opened.set_result(yaml.safe_load(registry.read_text(encoding="utf-8")) or {})
        url, token = await self.go
        self.config.mes_url = url  # the driver checked it answers, or started it
        if token:
            self.admin = MesAdmin(url, token)  # the embedded MES of the driver: it takes this shard's opening WIP
        self.folder.extra["target_url"] = url
        return url


class ShardWorker:
    """The shards of one worker process (``specs``), each a ``ShardRun`` writing ``run_dir/shards/<n>/``."""

    def __init__(self, specs: list[ShardSpec], config: NetConfig, run_dir: str) -> None:
        self.specs = specs
        self.config = config
        self.run_dir = Path(run_dir)
        self.runs: dict[int, ShardRun] = {}
        self.tasks: dict[int, asyncio.Task[dict[str, Any]]] = {}
        self._samplers: dict[int, Any] = {}
        self._controls: dict[int, Any] = {}

    def pid(self) -> int:
        return os.getpid()

    def _config(self, spec: ShardSpec) -> NetConfig:
        return dataclasses.replace(
            self.config,
            scale=len(spec.copies),
            copies=list(spec.copies),
            start_offsets=dict(spec.start_offsets),
            equipment_prefix=spec.equipment_prefix,
            run_dir=self.run_dir / "shards" / str(spec.index),
            compare_offline=False,  # the offline model of one shard's copies says little; see the README
            mes_args=[],
            energy=None,
        )

    async def open(self) -> dict[int, dict[str, str]]:
        """Start every shard up to its listening hosts; their addresses by shard (then they wait for ``go``)."""
        override = load_profile(self.config.profile_ref) if self.config.profile_ref else None
        for spec in self.specs:
            line, profile = load_line(spec.line_ref, profile=override)
            config = self._config(spec)
            if config.preroll_s is not None and config.preroll_s < 0:  # --preroll auto: the line file's
                config.preroll_s = line.preroll_s
            run = ShardRun(line, profile, config, spec)
            self.runs[spec.index] = run
            self.tasks[spec.index] = asyncio.get_running_loop().create_task(run.run())
        out: dict[int, dict[str, str]] = {}
        for index, run in self.runs.items():
            opened, task = run.opened, self.tasks[index]
            await asyncio.wait([opened, task], return_when=asyncio.FIRST_COMPLETED)
            if not opened.done():
                task.result()  # the shard failed before its hosts listened: raise why
                raise RuntimeError(f"shard {index} ended before its hosts listened")
            out[index] = opened.result()
        return out

    async def go(self, url: str, token: str | None) -> None:
        for run in self.runs.values():
            if not run.go.done():
                run.go.set_result((url, token))

    async def abort(self, why: str) -> None:
        """The run cannot start (its MES did not come up): every shard ends now, its folder written."""
        for run in self.runs.values():
            run.stop()
            if not run.go.done():
                run.go.set_exception(RuntimeError(why))

    async def stop(self) -> None:
        for run in self.runs.values():
            run.stop()

    async def status(self) -> list[dict[str, Any]]:
        """Each shard's live figures, with its all-interface latency histogram (HDR, to merge exactly)."""
        out = []
        for index, run in self.runs.items():
            st = run.status()
            st["shard"] = index
            st["done"] = self.tasks[index].done()
            st["latency_hdr"] = run.latency_all.encode().decode("ascii")
            out.append(st)
        return out

    async def sample(self) -> list[dict[str, Any]]:
        """Each shard's web-view sample (``twin.run.sampler``) and its line (stations, buffers, interlocks)."""
        from twin.run.sampler import Sampler

        out = []
        for index, run in self.runs.items():
            sampler = self._samplers.get(index)
            if sampler is None:
                sampler = self._samplers[index] = Sampler(run)
            sample = sampler.sample()
            sample["shard"] = index
            sample["line"] = sampler.line() if run.sim is not None else None
            out.append(sample)
        return out

    async def control(self, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        """A control of the web view (speed, load shape, interlock) on each shard here, as a single run takes it."""
        from twin.run.controls import Controls

        out = []
        for index, run in self.runs.items():
            controls = self._controls.get(index)
            if controls is None:
                controls = self._controls[index] = Controls(run)
            entry = await controls.apply(name, args, by="driver")
            out.append({**entry, "shard": index})
        return out

    async def result(self) -> list[dict[str, Any]]:
        """Wait for every shard's end: its summary (or why it failed) and its start-delay histogram."""
        out = []
        for index, task in self.tasks.items():
            run = self.runs[index]
            entry: dict[str, Any] = {"shard": index}
            try:
                entry["summary"] = await task
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["start_delay_hdr"] = run.start_delay.encode().decode("ascii")
            entry["state"] = run.folder.state
            out.append(entry)
        return out
