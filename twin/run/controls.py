"""What the web view may do to a running twin, each action logged in the run folder.

* speed: N virtual seconds per wall second from now on (a clock segment; the rest of a load shape is dropped);
* load shape: ``steady``, ``ramp:FROM:TO``, ``step:F@AT``, ``storm[:W]@AT`` over what is left of the run (times
  and percentages count from now, factors multiply the speed last asked);
* MES faults: set or clear them on the embedded MES through its admin API (``/admin/faults``);
* crash: the embedded MES process killed (SIGKILL) and restarted on its port after some seconds, by the
  supervisor of ``twin.transport.embedded`` (its ``--crash-after`` rehearsal, now);
* interlock: the MES's section-3.1 call, made to the equipment's own server exactly as the MES makes it;
* stop: the same clean end as Ctrl-C (``NetworkedRun.stop``).

Every control, accepted or refused, is one JSON line of ``controls.jsonl`` in the run folder, and the list
goes into ``summary.json`` (``controls``) so that the report can mark them on its time plots.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from twin.aio import loop_time
from twin.durations import parse_duration
from twin.errors import ConfigError
from twin.run.networked import NetworkedRun
from twin.sim.clock import Bridge
from twin.sim.shapes import parse_shape, start_storm

CONTROLS_FILE = "controls.jsonl"
MAX_SPEED = 10_000.0
CLEAR_FAULTS = {"latency": None, "latency_for": {}, "error_rate": 0, "error_rate_for": {}, "outage": None,
                "slow_db_ms": 0}  # fmt: skip
NAMES = ("speed", "shape", "faults", "crash", "interlock", "stop")
MAX_RESTART_S = 600.0
INTERLOCK_CODES = ("500201", "500202", "500203", "500204", "500301")


class Refused(ConfigError):
    """A control the run cannot take (bad value, nothing to act on): answered 400 with this text."""


class Controls:
    """The actions of the page on one run; ``apply`` runs one, logs it and returns what it did."""

    def __init__(self, run: NetworkedRun) -> None:
        self.run = run
        self.base_speed = run.config.speed  # what shape factors multiply
        self.log: list[dict[str, Any]] = []
        self._path: Path = run.path / CONTROLS_FILE

    async def apply(self, name: str, args: dict[str, Any], *, by: str = "") -> dict[str, Any]:
        """Run control ``name`` with ``args``; the log line says whether it was done or why not."""
        action = getattr(self, f"_{name}", None) if name in NAMES else None
        entry: dict[str, Any] = {"at": round(time.time(), 3), "control": name, "args": args, "by": by}
        entry |= self._when()
        try:
            if action is None:
                raise Refused(f"unknown control {name!r}: {', '.join(NAMES)}")
            entry["result"] = await action(args)
            entry["ok"] = True
        except ConfigError as exc:
            entry["ok"] = False
            entry["error"] = str(exc)
        self._record(entry)
        return entry

    def _when(self) -> dict[str, float]:
        sim = self.run.sim
        return {
            "wall_s": round(time.time() - self.run.started, 3),
            "virtual_s": round(sim.env.now, 3) if sim is not None else 0.0,
        }

    def _record(self, entry: dict[str, Any]) -> None:
        self.log.append(entry)
        self.run.folder.extra["controls"] = self.log  # summary.json at the next checkpoint and at the end
        with self._path.open("ab") as fh:
            fh.write(orjson.dumps(entry) + b"\n")

    # -- the controls -------------------------------------------------------------------------------------
    def _bridge(self) -> Bridge:
        sim = self.run.sim
        # the bridge has a loop once it steps the model (after the MES has taken the opening WIP)
        if sim is None or not isinstance(sim.gateway, Bridge) or sim.gateway._loop is None:
            raise Refused("the line model is not running yet")
        return sim.gateway

    def _now_virtual(self, bridge: Bridge) -> float:
        """The virtual time of this wall instant (the model may be a step behind it): where a change starts."""
        return bridge.arrival_at(loop_time())

    async def _speed(self, args: dict[str, Any]) -> dict[str, Any]:
        speed = _number(args.get("speed"), "speed")
        if not 0 < speed <= MAX_SPEED:
            raise Refused(f"speed must be above 0 and at most {MAX_SPEED:g}, got {speed:g}")
        bridge = self._bridge()
        at = self._now_virtual(bridge)
        bridge.clock.change_from(at, [(at, speed)])
        self.base_speed = speed
        bridge.inject(lambda: None)  # wake the bridge: it sleeps by the old pace
        return {"from_virtual_s": round(at, 3), "speed": speed}

    async def _shape(self, args: dict[str, Any]) -> dict[str, Any]:
        shape = parse_shape(str(args.get("shape", "")))
        bridge = self._bridge()
        at = self._now_virtual(bridge)
        left = self.run.config.duration_s - at
        if left <= 0:
            raise Refused("the run is at its end: no time left for a load shape")
        later = [(at + v, s) for v, s in shape.segments(self.base_speed, left, parse_duration)]
        bridge.clock.change_from(at, later)
        result: dict[str, Any] = {"from_virtual_s": round(at, 3), "segments": [[round(v, 3), s] for v, s in later]}
        if shape.kind == "storm":
            sim = self.run.sim
            assert sim is not None
            storm_at, window = at + shape.at_s(left, parse_duration), parse_duration(shape.window)
            bridge.inject(lambda: start_storm(sim, storm_at, window))
            result["storm_at_virtual_s"] = round(storm_at, 3)
        else:
            bridge.inject(lambda: None)  # wake the bridge: it sleeps by the old pace
        return result

    async def _faults(self, args: dict[str, Any]) -> dict[str, Any]:
        mes = self.run.mes
        if mes is None:
            raise Refused(f"faults are injected into the embedded MES; this run's MES is {self.run.config.mes_url}")
        doc = CLEAR_FAULTS if args.get("clear") else args.get("set")
        if not isinstance(doc, dict) or not doc:
            raise Refused('faults: give {"set": {...the admin API\'s fault fields...}} or {"clear": true}')
        answer = await mes.post_json("/admin/faults", doc)
        if answer is None:
            raise Refused("the embedded MES did not answer its admin API")
        if "error" in answer:
            raise Refused(f"the MES refused the faults: {answer['error']}")
        return {"faults": answer}

    async def _crash(self, args: dict[str, Any]) -> dict[str, Any]:
        mes = self.run.mes
        if mes is None:
            raise Refused(f"only the embedded MES can be crashed; this run's MES is {self.run.config.mes_url}")
        # The supervisor's crash rehearsal (``--crash-after``), started now: SIGKILL, then a new MES process on
        # the same port from the same database. Private to EmbeddedMes; asked for by name so that an MES
        # without a supervisor says so instead of failing.
        rehearse = getattr(mes, "_crash_rehearsal", None)
        if rehearse is None or not hasattr(mes, "_spawn"):
            raise Refused("this embedded MES has no supervisor that can crash and restart it")
        if not getattr(mes, "up", True):
            raise Refused("the embedded MES is not up now (crashed, restarting or dead)")
        restart = _number(args.get("restart_after_s", 5.0), "restart_after_s")
        if not 0 <= restart <= MAX_RESTART_S:
            raise Refused(f"restart_after_s must be from 0 to {MAX_RESTART_S:g}, got {restart:g}")
        mes._spawn(rehearse(0.0, restart))
        return {"crashed": True, "restart_after_s": restart}

    async def _interlock(self, args: dict[str, Any]) -> dict[str, Any]:
        code = str(args.get("equipment", ""))
        if code not in {eq.code for eq in (self.run.sim.equipment if self.run.sim is not None else [])}:
            raise Refused(f"equipment {code!r} is not running in this twin")
        interlock = str(args.get("code") or INTERLOCK_CODES[0])
        message = str(args.get("message") or "interlock from the twin's web view")
        address = self._address(code)
        body = {"EquipmentCode": code, "InterlockCode": interlock, "InterlockMessage": message}
        sent = time.time()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.post(
                    f"{address}/api/SendInterLock",
                    data=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                status, text = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Refused(f"{code}'s host at {address} did not answer: {exc or type(exc).__name__}") from None
        if status != 200:
            raise Refused(f"{code}'s host at {address} answered {status}: {text[:200]}")
        return {"address": address, "answered_ms": round((time.time() - sent) * 1000, 3)}

    def _address(self, code: str) -> str:
        """Where the MES would call the equipment: the run's registry (the embedded MES reads the same file)."""
        registry = yaml.safe_load((self.run.path / "registry.yaml").read_text()) or {}
        where = registry.get(code)
        if not where:
            raise Refused(f"{code} has no section-3 address in this run's registry")
        return where if str(where).startswith("http") else f"http://{where}"

    async def _stop(self, args: dict[str, Any]) -> dict[str, Any]:
        self.run.stop()
        return {"stopping": True}


def _number(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise Refused(f"{name} must be a number, got {value!r}") from None
    if out != out:
        raise Refused(f"{name} must be a number, got NaN")
    return out
