"""A fleet of virtual inverters behind the CT check API, with the state a real installed base shows.

Each inverter has a topology (only masters and three-phase single units may be checked), a working state, a BMS
communication alarm, a meter connection and, once started, a CT check that takes the command after a delivery delay,
runs for a while and ends normal, failed or with a wiring error (phases swapped, a CT reversed, a CT open). The
shares of each come from ``x-twin-fleet`` in the profile; the random draws from one seeded generator, so the same
seed gives the same fleet. Time is read from an injected clock so tests can run checks in fractions of a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.ct.spec import CtSpec

PHASES = ("A", "B", "C")
Clock = Callable[[], float]


@dataclass(slots=True)
class CheckRun:
    """One CT check of one inverter, decided when it starts and revealed as time passes."""

    started_at: float
    delivered_at: float
    ends_at: float
    outcome: str  # normal | wiring-error | failed
    phases: list[dict[str, Any]]
    meter_word: int

    def running(self, now: float) -> bool:
        return now < self.ends_at


@dataclass(slots=True)
class Inverter:
    sn: str
    topology: str
    device_status: int
    bms_alarm: int
    meter_ok: int
    run: CheckRun | None = None

    def status(self, now: float) -> dict[str, Any]:
        """The body of action 1."""
        return {
            "meterStatus": self.meter_ok,
            "checking": 1 if self.run is not None and self.run.running(now) else 0,
            "meterConnected": self.meter_ok,
            "faultArmFlag2": self.bms_alarm,
            "deviceStatus": self.device_status,
        }

    def result(self, now: float) -> dict[str, Any]:
        """The body of action 3: 0/0 before the command is taken (CT-10), 1/0 while running, then the outcome."""
        body: dict[str, Any] = {
            "meterCheckConfigVOS": None,
            "bit0": 1,
            "bit1": 0,
            "bit2": 0,
            "bit3": None,
            "meterStatus": None,
        }
        run = self.run
        if run is None or now < run.delivered_at:
            return body
        if now < run.ends_at:
            body["bit1"] = 1
            return body
        if run.outcome == "failed":
            return body
        body.update(
            bit2=1,
            bit3=1 if run.outcome == "wiring-error" else 0,
            meterStatus=run.meter_word,
            meterCheckConfigVOS=[dict(p) for p in run.phases],
        )
        return body


def _span(value: Sequence[float] | None, default: Sequence[float]) -> tuple[float, float]:
    low, high = (value or default)[0], (value or default)[-1]
    if low < 0 or high < low:
        raise ValueError(f"a duration range must be 0 <= low <= high, got {low}-{high}")
    return float(low), float(high)


@dataclass(slots=True)
class Fleet:
    """The inverters and the rules of the cloud that fronts them."""

    inverters: dict[str, Inverter]
    spec: CtSpec
    rng: np.random.Generator
    check_s: tuple[float, float]
    delivery_s: tuple[float, float]
    clock: Clock = time.monotonic
    starts: int = field(default=0)

    def __len__(self) -> int:
        return len(self.inverters)

    def get(self, sn: str) -> Inverter | None:
        return self.inverters.get(sn)

    def now(self) -> float:
        return self.clock()

    def start(self, inv: Inverter) -> tuple[bool, str | None]:
        """Action 2 on one inverter: (issued, reason if not). The cloud refuses what it knows cannot run (CT-13)."""
        now = self.clock()
        if inv.device_status == -1:
            return False, "device offline (deviceStatus -1): the command cannot be delivered"
        if inv.device_status == 4:
            return False, "device upgrading (deviceStatus 4)"
        if inv.topology not in self.spec.allowed_topologies:
            allowed = " or ".join(self.spec.allowed_topologies)
            return False, f"topology {inv.topology}: the CT check runs only on a {allowed} system"
        if inv.run is not None and inv.run.running(now):
            return False, "a CT check is already running"
        inv.run = self._new_run(inv, now)
        self.starts += 1
        return True, None

    def _new_run(self, inv: Inverter, now: float, *, started_ago_s: float = 0.0) -> CheckRun:
        weights = self.spec.fleet.get("outcome") or {"normal": 1.0}
        outcome = _pick(self.rng, weights)
        # A check started while a precondition fails cannot succeed: the inverter aborts it.
        if inv.device_status not in (2, 5) or inv.bms_alarm or not inv.meter_ok:
            outcome = "failed"
        start = now - started_ago_s
        delivered = start + float(self.rng.uniform(*self.delivery_s))
        ends = delivered + float(self.rng.uniform(*self.check_s))
        phases = self._phases(outcome)
        return CheckRun(start, delivered, ends, outcome, phases, int(self.rng.integers(1, 0xFFFF)))

    def _phases(self, outcome: str) -> list[dict[str, Any]]:
        phases = [{"phaseFlag": 0, "inverterSide": p, "smartSide": p, "sensorAns": 0} for p in PHASES]
        if outcome != "wiring-error":
            return phases
        fault = _pick(self.rng, self.spec.fleet.get("wiring-fault") or {"swapped-phases": 1.0})
        if fault == "swapped-phases":
            i, j = (int(x) for x in self.rng.choice(3, size=2, replace=False))
            for a, b in ((i, j), (j, i)):
                phases[a].update(phaseFlag=1, smartSide=PHASES[b], sensorAns=1)
        else:
            k = int(self.rng.integers(0, 3))
            if fault == "reversed-ct":
                phases[k].update(phaseFlag=2, sensorAns=1)
            else:  # open-ct: no current, so the CT side has no phase to report
                phases[k].update(phaseFlag=3, smartSide=None, sensorAns=1)
        return phases


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([float(weights[n]) for n in names])
    return str(names[int(rng.choice(len(names), p=p / p.sum()))])


def generate_fleet(
    count: int,
    spec: CtSpec,
    *,
    seed: int = 1,
    check_s: Sequence[float] | None = None,
    delivery_s: Sequence[float] | None = None,
    clock: Clock = time.monotonic,
) -> Fleet:
    """``count`` inverters drawn from the profile's fleet model; the same seed gives the same fleet."""
    if count < 1:
        raise ValueError(f"a fleet needs at least 1 inverter, got {count}")
    model = spec.fleet
    rng = np.random.default_rng(seed)
    fleet = Fleet(
        {},
        spec,
        rng,
        _span(check_s, model.get("check-s") or (60, 180)),
        _span(delivery_s, model.get("delivery-s") or (1, 5)),
        clock,
    )
    prefix, first = str(model.get("sn-prefix", "A1122001")), int(model.get("sn-first", 0))
    now = clock()
    for i in range(count):
        inv = Inverter(
            sn=f"{prefix}{first + i:06d}4A",
            topology=_pick(rng, model.get("topology") or {"three-phase-single": 1.0}),
            device_status=int(_pick(rng, model.get("device-status") or {"2": 1.0})),
            bms_alarm=int(rng.random() < float(model.get("bms-alarm", 0))),
            meter_ok=int(rng.random() >= float(model.get("meter-abnormal", 0))),
        )
        if inv.device_status in (2, 5) and rng.random() < float(model.get("already-checking", 0)):
            # Started by someone else a little while ago: already past command delivery, well before its end.
            ago = fleet.delivery_s[1] + float(rng.uniform(0, fleet.check_s[0] / 2))
            inv.run = fleet._new_run(inv, now, started_ago_s=ago)
        fleet.inverters[inv.sn] = inv
    return fleet
