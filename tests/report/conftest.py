"""Run folders written by the real writer (RunFolder) from synthetic exchanges with known properties.

A run is 600 wall seconds of a small line at speed 24 (four virtual hours): six interfaces, business
refusals, HTTP errors, an MES outage from 300 s to 360 s during which heartbeats get no answer and
everything else is queued and re-sent after it (the backlog), late starts, and summary extras (line KPIs
with hourly output, the cost of MES latency, interlocks, outages).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from twin.metrics import Exchange
from twin.metrics.runfolder import RunFolder, new_run_dir

WALL_S = 600.0
SPEED = 24.0
OUTAGE = (300.0, 360.0)
#: interface -> (exchanges per second, success codes as the profile says)
MIX = {
    "Heartbeat": (2.0, (0,)),
    "State": (0.3, (0,)),
    "Inbound": (4.0, (0,)),
    "Outbound": (4.0, (0,)),
    "EquipmentProcessParam": (1.0, (0,)),
    "FillingData": (0.5, (0, 1)),  # 2.34: 1 also means success
}
INTERLOCKS = [
    {
        "code": 500201,
        "equipment": "A02-WIND-01",
        "decided_wall": 0,
        "stopped_wall": 0,
        "reaction_s": 0.8,
        "outcome": "stopped",
    },
    {
        "code": 500203,
        "equipment": "A02-WIND-02",
        "decided_wall": 0,
        "stopped_wall": 0,
        "reaction_s": 1.4,
        "outcome": "stopped",
    },
    {
        "code": 500301,
        "equipment": "A02-HOTP-01",
        "decided_wall": 0,
        "stopped_wall": None,
        "reaction_s": None,
        "outcome": "equipment offline",
    },
]


@dataclass
class SyntheticRun:
    path: Path
    exchanges: list[Exchange]
    success: dict[str, tuple[int, ...]]
    started_wall: float


def _answer(op: str, rng: random.Random, slow: float) -> tuple[int, int | None, str, float]:
    """(status, code, error, service seconds) for one exchange."""
    service = rng.lognormvariate(-5.8, 0.5) * slow  # ~3 ms median
    if rng.random() < 0.004:
        service += rng.uniform(0.15, 0.4)  # a slow tail
    r = rng.random()
    if op == "Inbound" and r < 0.01:
        return 200, 1, "", service
    if op == "Outbound" and r < 0.005:
        return 503, None, "", service
    if op == "FillingData" and r < 0.3:
        return 200, 1, "", service  # success for 2.34
    return 200, 0, "", service


def synthesize(seed: int = 1, *, slow: float = 1.0, wall_s: float = WALL_S) -> tuple[list[Exchange], float]:
    """Exchanges of one run, in the order a run logs them (by sent time), and the run's start time."""
    rng = random.Random(seed)
    t0 = time.time() - wall_s - 5
    out: list[Exchange] = []
    backlog_at = OUTAGE[1] + 0.5
    for op, (rate, _) in MIX.items():
        t = rng.uniform(0, 1 / rate)
        while t < wall_s - 1:
            intended = t0 + t
            late = 0.02 if rng.random() < 0.02 else rng.uniform(0, 0.001)
            sent = intended + late
            status, code, error, service = _answer(op, rng, slow)
            if OUTAGE[0] <= t < OUTAGE[1]:
                if op == "Heartbeat":  # heartbeats are not queued: they fail
                    status, code, error, service = 0, None, "timeout", 2.0
                else:  # the rest is queued and re-sent in order after the outage
                    sent, backlog_at = t0 + backlog_at, backlog_at + 0.05
            eq = f"A02-EQ-{rng.randrange(12):02d}"
            out.append(Exchange(op, eq, t * SPEED, intended, sent, sent + service, status, code, 300, 60, error))
            t += rng.expovariate(rate)
    out.sort(key=lambda ex: ex.sent_wall)
    return out, t0


def extras(t0: float, backlog_max: int, drain_s: float) -> dict[str, Any]:
    interlocks = [dict(i, decided_wall=t0 + 100 + k * 50) for k, i in enumerate(INTERLOCKS)]
    for i in interlocks:
        if i["reaction_s"] is not None:
            i["stopped_wall"] = i["decided_wall"] + i["reaction_s"]
    return {
        "virtual_s": WALL_S * SPEED,
        "line": {
            "cells_out": 5_812,
            "cells_per_hour": 1_453.0,
            "yield": 0.934,
            "bottleneck": "HOTPRESS",
            "stations": {"WIND": {"oee": 0.81, "utilisation": 0.9}, "HOTPRESS": {"oee": 0.88, "utilisation": 0.97}},
            "hourly": [{"hour": h, "cells_out": c} for h, c in enumerate((1480, 1466, 1391, 1475))],
        },
        "output_cost_of_mes_latency": {"cells_lost": 37, "share": 0.0063, "offline_model_cells_out": 5_849},
        "interlocks": interlocks,
        "outages": [
            {"start_wall": t0 + OUTAGE[0], "end_wall": t0 + OUTAGE[1], "backlog_max": backlog_max, "drain_s": drain_s}
        ],
    }


def drain_s(queued: list[Exchange], t0: float) -> float:
    """From the end of the outage to the last queued exchange re-sent: what a run records as the drain."""
    return max(ex.sent_wall for ex in queued) - (t0 + OUTAGE[1])


def write_run(
    root: Path, *, seed: int = 1, slow: float = 1.0, with_extras: bool = True, wall_s: float = WALL_S
) -> SyntheticRun:
    """A run folder as ``twin run`` writes it; a shorter ``wall_s`` (no outage before 300 s) for tests of plumbing."""
    exchanges, t0 = synthesize(seed, slow=slow, wall_s=wall_s)
    success = {op: codes for op, (_, codes) in MIX.items()}
    run = RunFolder(
        new_run_dir(root, "mini"),
        {"line": "mini", "seed": seed, "speed": SPEED, "mes": "embedded", "duration_s": wall_s, "scale": 1},
    )
    run.started_wall = t0
    for ex in exchanges:
        run.record(ex, ex.ok(success[ex.operation]))
    if with_extras:
        queued = [ex for ex in exchanges if OUTAGE[0] <= ex.intended_wall - t0 < OUTAGE[1] and ex.status]
        run.extra.update(extras(t0, len(queued), drain_s(queued, t0)))
    run.finish()
    return SyntheticRun(run.path, exchanges, success, t0)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRun:
    """One run with everything, reported once with the default SLOs (read-only for tests)."""
    from twin.report import write_report

    made = write_run(tmp_path_factory.mktemp("reports"))
    write_report(made.path, slo="default")
    return made
