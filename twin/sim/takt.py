"""What a line file promises at nominal rates: takt per station and the MES calls each station makes.

The takt comes from the line file (rates, cycles, slots, tray sizes). The calls per hour are measured, not
guessed: a short offline run of the line itself (the same model ``twin run`` uses), counted per station
after the start-up minutes, so the figure cannot drift from what the equipment really do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from twin.line.model import Line, Station
from twin.line.roles import role_for
from twin.profile import Profile
from twin.sim.builder import Simulation


def takt_per_min(station: Station) -> float:
    """Units (cells, jelly rolls, rolls, batches) the whole station makes per minute at nominal rates."""
    role = role_for(station.process, station.archetype or None)
    per_cycle = 1.0
    if role is not None and role.name == "chamber" and station.tray:
        per_cycle = max(1, station.slots) * int(station.tray["size"])
    elif role is not None and role.name == "rack":
        per_cycle = max(1, station.slots) * max(1, station.rack_size)
    elif role is not None and role.name == "converting":
        per_cycle = float(station.options.get("split", role.options.get("split", 1)))
    return station.count * per_cycle * 60.0 / station.ideal_cycle_s()


@dataclass
class CallEstimate:
    per_station: dict[str, float]  # calls per hour
    per_interface: dict[str, float]
    window_s: float


def estimate_calls(
    line: Line, profile: Profile, *, run_s: float = 2400.0, skip_s: float = 600.0, seed: int = 0
) -> CallEstimate:
    """Calls per hour per station and per interface, from ``run_s`` of offline run minus the first ``skip_s``."""
    sim = Simulation(line, profile, seed=seed, keep_calls=True, warmup_s=0.0)
    sim.run(run_s)
    owner = {eq.code: eq.station.id for eq in sim.equipment}
    stations: Counter[str] = Counter()
    interfaces: Counter[str] = Counter()
    for call in sim.traffic.calls:
        if call.virtual_s >= skip_s:
            stations[owner[call.equipment_code]] += 1
            interfaces[call.op.operation_id] += 1
    hours = (run_s - skip_s) / 3600.0
    return CallEstimate(
        {k: v / hours for k, v in stations.items()}, {k: v / hours for k, v in interfaces.items()}, run_s - skip_s
    )
