"""A virtual PLC driven by the line model: one SimPy equipment's life mirrored into a served I/O image.

``plc: {serve: ...}`` puts a real host PC in front of one virtual machine. The host reads the machine's PLC, so
that PLC must show what the model's machine does: its run bit, its earliest alarm, a cycle-complete pulse,
counters and the barcode of every finished part, and the startup-parameter values set on its HMI. The model
already says all of that, in the calls its equipment makes (each host action is a call: 2.3 state, 2.4
alarm, a result report with ``Sfc`` and ``Passed`` per part, 2.9 with the set values), so the mirror listens
to those calls (a tap on the equipment's traffic counter, the one seam every call passes through) and writes
the image; it adds nothing the model did not decide.

The other way, the host writes the interlock bit when the MES sends it 3.1: the mirror hands it to the model
(``Equipment.on_interlock``: an H alarm, state 2, stopped until cleared), whose state report then drops the
run bit, which is what the host and the MES's interlock check watch for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twin.errors import ConfigError
from twin.hil.image import IoImage

if TYPE_CHECKING:
    from twin.profile.calls import Call, Traffic

log = logging.getLogger(__name__)

NO_NUMBER = 0xFFFF  # an alarm whose code is not a number still shows as an alarm on the PLC


class Equipment(Protocol):
    """What the mirror needs of a model equipment (``twin.sim.equipment.Equipment`` is one): hil reads the model
    through this, so it does not import the simulation."""

    code: str
    traffic: Traffic
    reported: str | None

    def on_interlock(self, code: str, message: str) -> Any: ...


class _Tap:
    """The equipment's traffic counter, with the mirror told of every call first."""

    def __init__(self, inner: Traffic, listener: Callable[[Call], None]) -> None:
        self.inner = inner
        self.listener = listener

    def record(self, call: Call) -> None:
        self.listener(call)
        self.inner.record(call)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class EquipmentMirror:
    """Keeps ``image`` in step with ``equipment`` (one machine of a ``Simulation``) until ``detach``."""

    def __init__(self, image: IoImage, equipment: Equipment) -> None:
        self.image = image
        self.equipment = equipment
        self.parts = 0
        self.interlocks: list[int] = []
        self._inner = equipment.traffic
        equipment.traffic = _Tap(self._inner, self._on_call)  # type: ignore[assignment]
        self._unsubscribe = image.on_interlock(self._on_interlock)
        self._params = {p.code for p in image.map.parameters}
        image.set_running(equipment.reported == "1")

    def detach(self) -> None:
        self.equipment.traffic = self._inner
        self._unsubscribe()

    # -- model -> image -------------------------------------------------------------------------------
    def _on_call(self, call: Call) -> None:
        try:
            self._mirror(call)
        except ConfigError as exc:  # a value the map cannot hold (a barcode too long): the run goes on
            log.warning("%s: not mirrored into %s: %s", self.equipment.code, self.image.map.name, exc)

    def _mirror(self, call: Call) -> None:
        values = call.values
        op = call.op.operation_id
        if op == "State":
            self.image.set_running(str(values.get("StateCode")) == "1")
        elif op == "Alarm":
            raised = str(values.get("Status")) == "1"
            self.image.set_alarm(_alarm_number(values.get("AlarmCode")) if raised else 0)
        elif op == "Recipe":
            for row in values.get("ParamList") or ():
                self._set_value(row)
        else:
            for sfc, passed in _results(values):
                self.parts += 1
                self.image.pulse_cycle(sfc, ok=passed)

    def _set_value(self, row: dict[str, Any]) -> None:
        code = str(row.get("ParamCode", ""))
        if code not in self._params:
            return
        try:
            self.image.set_param_value(code, float(row.get("ParamValue", "")))
        except ValueError:
            log.warning("%s: set value %r of %s is not a number", self.equipment.code, row.get("ParamValue"), code)

    # -- host -> model ----------------------------------------------------------------------------------
    def _on_interlock(self, interlocked: bool, code: int) -> None:
        if not interlocked:
            return  # the model's engineer clears it (the line file's interlock_clear_s), not the bit
        self.interlocks.append(code)
        message = f"interlock {code} written by the host PC"
        self.equipment.on_interlock(str(code), message)


def _alarm_number(code: Any) -> int:
    text = str(code or "")
    return int(text) if text.isdigit() and int(text) < NO_NUMBER else NO_NUMBER


def _results(values: dict[str, Any]) -> list[tuple[str, bool]]:
    """Parts a call reports as finished: ``Sfc`` with ``Passed``, alone or as rows of ``SfcList``."""
    if "Sfc" in values and "Passed" in values:
        return [(str(values["Sfc"]), bool(int(values["Passed"])))]
    rows = values.get("SfcList")
    if isinstance(rows, list):
        return [
            (str(r["Sfc"]), bool(int(r["Passed"])))
            for r in rows
            if isinstance(r, dict) and "Sfc" in r and "Passed" in r
        ]
    return []
