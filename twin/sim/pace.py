"""The pace governor: past what one process can send, virtual time slows down instead of the twin collapsing.

A networked run asks a pace (``--speed``, a load shape, the web view's controls). Every call the model makes has
an intended wall time from that pace; when the process cannot step the model and send its calls that fast, the
model falls behind the clock. Left alone, that lag only grows: every call leaves later than meant, answers are
scheduled further and further ahead in virtual time (the line stops making cells), calls pile up in memory
and time out, and the link goes "offline" although the MES is fine. The figures then measure the twin.

So the bridge tells the governor, a few times a second, how far the twin is behind (the *lag* of its next due
event or of its sends, in wall seconds), how much of that wall time the process ran or waited to run (its CPU),
and how long the model was held waiting for answers. When the lag stays above ``lag_s`` for ``ticks_behind``
ticks and does not shrink while the process is the one that is short (busy on the CPU, or stepping rather than
waiting for answers: a slow MES is the MES's figure, measured as late starts, never hidden by slowing down), the
twin is *saturated*: the clock is re-based where the model is (``Clock.rebase``: the lag is given up, not caught
up) and the pace is capped a little under what the model achieved (``Clock.govern``). Every second without lag
the cap is raised by ``raise_by``, back to the pace asked when the process keeps up again. The model's pace
gives way, never its traffic mix: every host still makes every call its behaviour makes, only the line lives
more slowly.

What it did is kept (``report()``): whether the run saturated, for how long, the pace asked and the lowest kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Governed(Protocol):
    """What the governor needs of the clock (``twin.sim.clock.Clock``)."""

    cap: float | None

    def govern(self, virtual_s: float, cap: float | None) -> None: ...
    def rebase(self, wall_s: float) -> None: ...
    def speed_asked_at(self, virtual_s: float) -> float | None: ...
    def speed_at(self, virtual_s: float) -> float | None: ...


@dataclass
class PaceGovernor:
    """Decides, tick by tick, the highest pace the process keeps up with (see the module's docstring)."""

    clock: Governed
    tick_s: float = 0.25  # wall seconds between decisions
    lag_s: float = 0.1  # the twin this far (wall) behind at ``ticks_behind`` ticks in a row, not shrinking: saturated
    ticks_behind: int = 3  # (a pause it catches up with by itself, a checkpoint or a collection, is no saturation)
    headroom: float = 0.9  # the cap is this share of the pace achieved while behind
    most_cut: float = 0.5  # one decision lowers the pace at most to this share of the one kept
    raise_every_s: float = 1.0  # without lag this long, the cap is raised...
    raise_by: float = 1.1  # ...by this factor, up to the pace asked
    busy_cpu: float = 0.8  # the process ran or waited to run this share of the time: it is the one short
    enabled: bool = True
    # what happened, for the summary and the live view
    saturations: int = 0  # times the cap was lowered
    saturated_s: float = 0.0  # wall seconds run under a cap
    first_virtual_s: float | None = None  # virtual time of the first saturation
    lowest_cap: float | None = None
    lag_given_up_s: float = 0.0  # wall seconds of lag given up by re-basing the clock
    _last: tuple[float, float, float, float] | None = None  # wall, virtual, cpu, held at the previous tick
    _window: tuple[float, float] | None = None  # wall, virtual where the lag began to be seen
    _behind: int = 0  # consecutive ticks with lag
    _prev_lag: float = 0.0
    _changed_at: float = 0.0  # wall time of the last change of cap
    history: list[dict[str, float | None]] = field(default_factory=list)  # each change (bounded)

    @property
    def saturated(self) -> bool:
        """The pace is capped now: the process is what limits the run."""
        return self.clock.cap is not None

    def due(self, wall: float) -> bool:
        return self._last is None or wall - self._last[0] >= self.tick_s

    def reset(self, wall: float, virtual: float, cpu: float, held: float) -> None:
        """Start measuring afresh (after a pause the model did not cause: a barrier, a pre-roll's end)."""
        self._last, self._window, self._behind, self._prev_lag = (wall, virtual, cpu, held), None, 0, 0.0

    def tick(self, wall: float, virtual: float, lag: float, cpu: float, held: float) -> bool:
        """One decision: ``lag`` (wall s the next due event is late), process ``cpu`` and ``held`` (cumulative
        seconds). Returns True when the clock was changed (the bridge must sleep by the new pace)."""
        last = self._last
        if last is None or not self.enabled:
            self.reset(wall, virtual, cpu, held)
            return False
        dt = wall - last[0]
        if self.clock.cap is not None:
            self.saturated_s += dt
        cpu_share, held_share = (cpu - last[2]) / dt, (held - last[3]) / dt
        self._last = (wall, virtual, cpu, held)
        short = cpu_share >= self.busy_cpu or held_share < 0.5  # the process, not the MES's answers
        if lag > self.lag_s and lag >= 0.9 * self._prev_lag and short:
            if self._window is None:
                self._window = (last[0], last[1])
            self._behind += 1
            self._prev_lag = lag
            if self._behind >= self.ticks_behind:
                return self._lower(wall, virtual, lag)
            return False
        self._behind, self._prev_lag, self._window = 0, lag, None
        if self.clock.cap is not None and lag < self.lag_s / 2 and wall - self._changed_at >= self.raise_every_s:
            return self._raise(wall, virtual)
        return False

    def _lower(self, wall: float, virtual: float, lag: float) -> bool:
        assert self._window is not None
        w0, v0 = self._window
        achieved = (virtual - v0) / max(1e-6, wall - w0)
        asked = self.clock.speed_asked_at(virtual) or 1.0
        kept = self.clock.speed_at(virtual) or asked
        # A model held up for a whole window (waiting for answers a busy loop has not read yet) achieved ~0: the
        # pace is at most halved at a time, so one bad window cannot stall the line for a minute.
        cap = max(asked * 0.001, kept * self.most_cut, min(kept * 0.95, self.headroom * achieved))
        self.clock.rebase(lag)
        self.clock.govern(virtual, cap)
        self.lag_given_up_s += lag
        self.saturations += 1
        if self.first_virtual_s is None:
            self.first_virtual_s = virtual
        self.lowest_cap = cap if self.lowest_cap is None else min(self.lowest_cap, cap)
        self._note(wall, virtual, cap, lag)
        self._behind, self._prev_lag, self._window = 0, 0.0, None
        self._last = (wall, virtual, self._last[2] if self._last else 0.0, self._last[3] if self._last else 0.0)
        return True

    def _raise(self, wall: float, virtual: float) -> bool:
        assert self.clock.cap is not None
        asked = self.clock.speed_asked_at(virtual) or 1.0
        cap: float | None = self.clock.cap * self.raise_by
        if cap is not None and cap >= asked:
            cap = None  # keeps up with the pace asked again
        self.clock.govern(virtual, cap)
        self._note(wall, virtual, cap, 0.0)
        return True

    def _note(self, wall: float, virtual: float, cap: float | None, lag: float) -> None:
        self._changed_at = wall
        if len(self.history) < 1000:
            self.history.append({"virtual_s": round(virtual, 3), "cap": cap, "lag_s": round(lag, 4)})

    def report(self, *, asked: float, achieved: float) -> dict[str, Any]:
        """What ``summary.json`` says of the twin's own pace."""
        return {
            "saturated": self.saturations > 0,
            "saturated_now": self.saturated,
            "speed_asked": asked,
            "speed_achieved": round(achieved, 3),
            "speed_lowest_kept": round(self.lowest_cap, 3) if self.lowest_cap is not None else None,
            "saturated_s": round(self.saturated_s, 3),
            "saturations": self.saturations,
            "first_saturated_virtual_s": round(self.first_virtual_s, 3) if self.first_virtual_s is not None else None,
            "lag_given_up_s": round(self.lag_given_up_s, 3),
            "periods_virtual_s": self.periods(),
        }

    def periods(self) -> list[list[float | None]]:
        """When (virtual seconds) the pace was capped: ``[from, to]`` each, ``to`` None if it still is."""
        out: list[list[float | None]] = []
        for change in self.history:
            if change["cap"] is not None and (not out or out[-1][1] is not None):
                out.append([change["virtual_s"], None])
            elif change["cap"] is None and out and out[-1][1] is None:
                out[-1][1] = change["virtual_s"]
        return out[:100]
