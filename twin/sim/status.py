"""State (2.3) and alarm (2.4) reporting of a host, and where each equipment's time goes.

The rules, as the spec and the profile's recorded choices (2.3-1..3, 2.4-2, 2.4-5) state them:

* State is reported only when it changes: ``1`` run, ``2`` fault (an M or H alarm stops the equipment),
  ``3`` standby (normal, but no motion for ``standby_after_s``, 1 min). An L alarm changes nothing.
* The ``1`` report that ends a standby or fault that lasted more than ``down_reason_after_s`` (3 min) carries
  the stop reason (1-12, from the catalogue's cause table); every other report sends ``""``.
* Of concurrent alarms only the earliest is reported: at most one alarm is open at the MES; alarms raised
  while it is open are not reported at all. Its ``0`` is sent when every alarm is gone and, for a stopping
  alarm, when the equipment moves again ("the time it resumes running is the end of the alarm").

Motion is tracked lazily: an equipment is "moving" until it has to wait (for material, for space, for an
operator); the archetypes call ``still()`` then and ``go()`` when a cycle starts again.
"""

from __future__ import annotations

from typing import Any

import simpy

from twin.line.catalogue import Alarm

# When causes overlap during one stop, the reported reason is the strongest one.
CAUSE_RANK = {"starved": 1, "blocked": 1, "startup": 2, "refused": 3, "system": 3, "changeover": 4, "repair": 5}
MODES = ("busy", "idle", "setup", "down")


class Ticket:
    """One raised alarm."""

    __slots__ = ("alarm", "since")

    def __init__(self, alarm: Alarm, since: float) -> None:
        self.alarm = alarm
        self.since = since


class Reporting:
    """State machine, alarm list and time accounting shared by every equipment (mixed into ``Equipment``)."""

    env: simpy.Environment
    periods: dict[str, float]
    down_reasons: dict[str, str]

    def tell(self, name: str, values: dict[str, Any] | None = None) -> None:  # provided by Equipment
        raise NotImplementedError

    def _init_reporting(self) -> None:
        self.reported: str | None = None  # last StateCode sent
        self.moving = False
        self.still_since: float | None = 0.0  # start of the current period without motion
        self.normal_since = 0.0  # since when no stopping alarm has been active
        self.cause = "startup"
        self.stop_reported_at: float | None = None  # when the current standby/fault period was reported
        self.stop_alarms = 0
        self.active: list[Ticket] = []
        self.open: Ticket | None = None
        self.close_on_motion = False
        self.alarms_raised = 0
        self._up: simpy.Event | None = None
        self._standby_armed = False
        self.mode = "setup"
        self.mode_since = 0.0
        self.time = dict.fromkeys(MODES, 0.0)
        self.power_on_s = 0.0  # a host that powers on later (a factory's start offset) says nothing before
        self._arm_standby(self.periods["standby_after_s"])

    # -- time accounting ------------------------------------------------------------------------
    def _switch(self, mode: str) -> None:
        now = self.env.now
        self.time[self.mode] += now - self.mode_since
        self.mode = mode
        self.mode_since = now

    def time_split(self) -> dict[str, float]:
        """Seconds per mode so far (busy, idle, setup, down)."""
        out = dict(self.time)
        out[self.mode] += self.env.now - self.mode_since
        return out

    # -- state ------------------------------------------------------------------------------------
    def _report(self, code: str) -> None:
        if code == self.reported or self.env.now < self.power_on_s:
            return
        now = self.env.now
        reason = ""
        if code == "1":
            if self.stop_reported_at is not None and now - self.stop_reported_at > self.periods["down_reason_after_s"]:
                reason = self.down_reasons.get(self.cause, "")
            self.stop_reported_at = None
        elif self.stop_reported_at is None:
            self.stop_reported_at = now
        self.reported = code
        self.tell("State", {"StateCode": code, "DownReason": reason})

    def _note_cause(self, cause: str) -> None:
        if CAUSE_RANK.get(cause, 0) > CAUSE_RANK.get(self.cause, 0):
            self.cause = cause

    def go(self) -> None:
        """The equipment moves again (a cycle starts)."""
        if self.moving:
            return
        self.moving = True
        self._switch("busy")
        if self.close_on_motion:
            self._send_clear()
        self._report("1")
        self.still_since = None

    def still(self, cause: str, mode: str = "idle") -> None:
        """The equipment stops moving: waiting for material (starved), space (blocked), setup..."""
        if not self.moving:
            self._note_cause(cause)
            if self.mode != "down" and mode != self.mode:
                self._switch(mode)
            return
        self.moving = False
        self.still_since = self.env.now
        self.cause = cause
        self._switch(mode)
        self._arm_standby(self.periods["standby_after_s"])

    def stopped_for(self) -> float:
        return 0.0 if self.still_since is None else self.env.now - self.still_since

    def _arm_standby(self, delay: float) -> None:
        if self._standby_armed:
            return
        self._standby_armed = True
        self.env.timeout(delay).callbacks.append(self._standby_check)

    def _standby_check(self, _event: simpy.Event) -> None:
        self._standby_armed = False
        if self.moving or self.stop_alarms:
            return
        wait = self.periods["standby_after_s"]
        quiet_since = max(self.still_since or 0.0, self.normal_since, self.power_on_s)  # a host is quiet once on
        left = quiet_since + wait - self.env.now
        if left <= 1e-9:
            self._report("3")
        else:
            self._arm_standby(left)

    # -- alarms -----------------------------------------------------------------------------------
    def raise_alarm(self, alarm: Alarm, cause: str = "repair") -> Ticket:
        """An alarm occurs; M and H stop the equipment (state 2) until it is cleared."""
        ticket = Ticket(alarm, self.env.now)
        self.active.append(ticket)
        self.alarms_raised += 1
        if self.open is None:
            self.open = ticket
            self.close_on_motion = False
            self.tell("Alarm", _alarm_body("1", alarm))
        if alarm.level != "L":
            self.stop_alarms += 1
            if self.stop_alarms == 1:
                self._halt(cause)
        return ticket

    def clear_alarm(self, ticket: Ticket) -> None:
        """The alarm's cause is gone (repaired, operator acknowledged)."""
        self.active.remove(ticket)
        if ticket.alarm.level != "L":
            self.stop_alarms -= 1
            if self.stop_alarms == 0:
                self._release()
        if not self.active and self.open is not None:
            if self.open.alarm.level == "L" or self.moving:
                self._send_clear()
            else:
                self.close_on_motion = True  # the "0" goes when the equipment runs again

    def _send_clear(self) -> None:
        if self.open is not None:
            self.tell("Alarm", _alarm_body("0", self.open.alarm))
        self.open = None
        self.close_on_motion = False

    def _halt(self, cause: str) -> None:
        if self.moving:
            self.moving = False
            self.still_since = self.env.now
            self.cause = cause
        else:
            self._note_cause(cause)
        self._switch("down")
        self._up = simpy.Event(self.env)
        self._report("2")

    def _release(self) -> None:
        self.normal_since = self.env.now
        self._switch("idle")
        up, self._up = self._up, None
        if up is not None:
            up.succeed()
        self._arm_standby(self.periods["standby_after_s"])

    def until_up(self) -> simpy.Event | None:
        """An event that fires when no stopping alarm is active any more (None if none is)."""
        return self._up


def _alarm_body(status: str, alarm: Alarm) -> dict[str, Any]:
    return {"Status": status, "AlarmCode": alarm.code, "AlarmMsg": alarm.msg, "AlarmLevel": alarm.level}
