"""A station's I/O image: the values a virtual PLC serves, and the API the line model drives it with.

The SimPy model (one thread with the asyncio loop, DESIGN.md decision 1) calls ``set_running``,
``pulse_cycle``, ``set_alarm`` ...; the Modbus and OPC UA servers read the image on every request (or are told
of each change) and hand the host's writes back through ``host_write``. The model learns of an interlock
written by the host, or of new startup-parameter limits, through ``on_interlock`` and ``on_host_write``.

The cycle-complete pulse is timed in wall seconds, because that is what a host polling the PLC sees: it drops
``pulse_s`` after ``pulse_cycle`` (a loop timer when a loop runs, and lazily on the next read otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin.errors import ConfigError
from twin.hil.iomap import INT_RANGES, IoMap, Signal

log = logging.getLogger(__name__)

#: Called with (signal name, new value, who wrote it: "plc" or "host") after every change.
ChangeListener = Callable[[str, Any, str], None]


@dataclass(frozen=True, slots=True)
class ParamLimits:
    """One startup parameter as the PLC holds it: the set value and the limits in force (2.9 ParamList)."""

    code: str
    value: float
    upper: float
    lower: float

    def within(self) -> bool:
        return self.lower <= self.value <= self.upper

    def as_param(self) -> dict[str, str]:
        """The 2.9 ParamList entry (values as strings, as the spec sends them)."""
        return {
            "ParamCode": self.code,
            "ParamValue": f"{self.value:g}",
            "ParamUpper": f"{self.upper:g}",
            "ParamLower": f"{self.lower:g}",
        }


class IoImage:
    """The values of one station's PLC, by signal name, in engineering units."""

    def __init__(self, io_map: IoMap, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.map = io_map
        self._clock = clock
        self._values: dict[str, Any] = {s.name: s.default() for s in io_map.signals}
        self._listeners: list[ChangeListener] = []
        self._pulse_until: float | None = None
        self._pulse_timer: asyncio.TimerHandle | None = None

    # -- generic access ---------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        if self._pulse_until is not None and self._clock() >= self._pulse_until:
            self._end_pulse()
        return self._values[name]

    def snapshot(self) -> dict[str, Any]:
        self.get(self.map.signals[0].name)  # expire a pulse that is due
        return dict(self._values)

    def set(self, name: str, value: Any, *, by: str = "plc") -> None:
        """Change one value (checked against the signal's type and range) and tell the listeners."""
        sig = self.map.signal(name)
        try:
            value = sig.coerce(value)
        except ValueError as exc:
            raise ConfigError(f"map {self.map.name}: {exc}") from None
        if self._values[name] == value:
            return
        self._values[name] = value
        for listener in list(self._listeners):
            listener(name, value, by)

    def on_change(self, listener: ChangeListener) -> Callable[[], None]:
        """Be told of every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def host_write(self, name: str, value: Any) -> None:
        """A host wrote a signal over the wire: only signals the map gives to the host may change."""
        sig = self.map.signal(name)
        if not sig.host_writable:
            raise PermissionError(f"{sig.name} ({sig.where}) is written by the PLC, not the host")
        self.set(name, value, by="host")

    def _role(self, role: str) -> Signal:
        return self.map.require(role)

    def _set_role(self, role: str, value: Any) -> None:
        sig = self.map.role(role)
        if sig is not None:
            self.set(sig.name, value)

    # -- what the line model calls ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self.get(self._role("run").name))

    def set_running(self, running: bool) -> None:
        self.set(self._role("run").name, bool(running))

    def pulse_cycle(self, barcode: str = "", *, ok: bool = True) -> int:
        """One finished part: barcode, result and counters first, then the pulse. Returns the cycle count."""
        if barcode and self.map.role("barcode") is not None:
            self.set(self._role("barcode").name, barcode)
        self._set_role("cycle_ok", ok)
        tally = self.map.role("ok_counter" if ok else "ng_counter")
        if tally is not None:
            self.set(tally.name, _wrap(tally, self.get(tally.name) + 1))
        count = 0
        counter = self.map.role("cycle_counter")
        if counter is not None:
            count = _wrap(counter, self.get(counter.name) + 1)
            self.set(counter.name, count)
        pulse = self.map.role("cycle_pulse")
        if pulse is not None:
            self.set(pulse.name, True)
            self._arm_pulse_drop()
        return count

    def _arm_pulse_drop(self) -> None:
        self._pulse_until = self._clock() + self.map.pulse_s
        if self._pulse_timer is not None:
            self._pulse_timer.cancel()
            self._pulse_timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pulse_timer = loop.call_later(self.map.pulse_s, self._end_pulse)

    def _end_pulse(self) -> None:
        self._pulse_until = None
        if self._pulse_timer is not None:
            self._pulse_timer.cancel()
            self._pulse_timer = None
        pulse = self.map.role("cycle_pulse")
        if pulse is not None:
            self.set(pulse.name, False)

    @property
    def alarm_code(self) -> int:
        return int(self.get(self._role("alarm_code").name))

    def set_alarm(self, code: int) -> None:
        """The earliest active alarm (0 clears it), as 2.4 asks the host to report."""
        self.set(self._role("alarm_code").name, int(code))

    @property
    def interlocked(self) -> bool:
        return bool(self.get(self._role("interlock").name))

    @property
    def interlock_code(self) -> int:
        sig = self.map.role("interlock_code")
        return int(self.get(sig.name)) if sig is not None else 0

    def raise_interlock(self, code: int = 0) -> None:
        """Set the interlock as a host would on a 3.1 call (for the twin's own side, and for tests)."""
        if code:
            self._set_role("interlock_code", int(code))
        self.set(self._role("interlock").name, True, by="host")

    def clear_interlock(self) -> None:
        self.set(self._role("interlock").name, False, by="host")
        self._set_role("interlock_code", 0)

    def on_interlock(self, callback: Callable[[bool, int], None]) -> Callable[[], None]:
        """``callback(interlocked, code)`` whenever the interlock bit changes (the model must alarm and stop)."""
        name = self._role("interlock").name

        def listener(changed: str, value: Any, _by: str) -> None:
            if changed == name:
                callback(bool(value), self.interlock_code)

        return self.on_change(listener)

    def on_host_write(self, callback: Callable[[str, Any], None]) -> Callable[[], None]:
        def listener(changed: str, value: Any, by: str) -> None:
            if by == "host":
                callback(changed, value)

        return self.on_change(listener)

    def tick_watchdog(self) -> None:
        sig = self.map.role("watchdog")
        if sig is not None:
            self.set(sig.name, _wrap(sig, self.get(sig.name) + 1))

    def read_limits(self) -> dict[str, ParamLimits]:
        """Every startup parameter as the PLC holds it now (value set on the HMI, limits from the host)."""
        return {
            p.code: ParamLimits(p.code, self.get(p.value.name), self.get(p.upper.name), self.get(p.lower.name))
            for p in self.map.parameters
        }

    def set_param_value(self, code: str, value: float) -> None:
        for p in self.map.parameters:
            if p.code == code:
                self.set(p.value.name, value)
                return
        raise ConfigError(f"map {self.map.name} has no startup parameter {code!r}")


def _wrap(sig: Signal, value: int) -> int:
    """Counters roll over as the PLC's integer does."""
    if sig.type not in INT_RANGES or sig.scale is not None:
        return value
    low, high = INT_RANGES[sig.type]
    return (int(value) - low) % (high - low + 1) + low
