"""The seam between the line model and whatever answers its MES calls.

Equipment decide *what* to say and *when* (a ``Call``); a ``Transport`` says it and returns what the MES
answered (an ``Answer``). Offline, an in-process MES model answers without a transport; in the networked
modes the bridge (``twin.sim.clock``) hands each call to a transport and turns the answer back into a
SimPy event. A transport only has to implement one coroutine::

    class MyTransport:
        async def exchange(self, call: Call) -> Answer: ...

The request body is built lazily (``call.body``) with ``Profile.build_request`` in the profile's casing:
an offline run that never sends anything does not pay ~10-15 µs per call for JSON it would throw away.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from twin.profile.model import Operation, Profile, format_epoch


@dataclass(slots=True)
class Answer:
    """What the MES answered: HTTP status, business code and message, data, and when (epoch seconds)."""

    status: int
    code: int | None
    msg: str = ""
    data: Any = None
    sent_wall: float | None = None
    answered_wall: float | None = None
    error: str | None = None

    def ok_for(self, op: Operation) -> bool:
        """Success as the operation defines it (``x-success-codes``, default [0])."""
        return self.status == 200 and self.code in op.success_codes


OK = Answer(200, 0, "Success")


class Call:
    """One MES request an equipment wants to make, with its intended send times."""

    __slots__ = (
        "_body",
        "answer",
        "equipment_code",
        "local_s",
        "op",
        "profile",
        "resource_code",
        "token",
        "values",
        "virtual_s",
        "wall_s",
    )

    def __init__(
        self,
        profile: Profile,
        op: Operation,
        values: dict[str, Any],
        equipment_code: str,
        resource_code: str,
        virtual_s: float,
        wall_s: float | None,
        local_s: float,
        token: str | None,
    ) -> None:
        self.profile = profile
        self.op = op
        self.values = values  # canonical (table) field names, EquipmentCode/ResourceCode/LocalTime left out
        self.equipment_code = equipment_code
        self.resource_code = resource_code
        self.virtual_s = virtual_s  # intended send time on the virtual clock
        self.wall_s = wall_s  # intended send time on the loop's clock (``twin.aio.loop_time``); None offline
        self.local_s = local_s  # the host's own clock (epoch seconds): LocalTime of the body
        self.token = token  # the Authorization value from 2.1 (already "Bearer ...")
        self.answer: Answer | None = None
        self._body: dict[str, Any] | None = None

    @property
    def operation_id(self) -> str:
        return self.op.operation_id

    @property
    def body(self) -> dict[str, Any]:
        """The request body in the profile's casing, built once on first use."""
        if self._body is None:
            context = {
                "now": format_epoch(self.local_s),
                "equipment_code": self.equipment_code,
                "resource_code": self.resource_code,
            }
            self._body = self.profile.build_request(self.op, self.values, context=context)
        return self._body

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok_for(self.op)

    def __repr__(self) -> str:
        return f"<Call {self.op.operation_id} {self.equipment_code} t={self.virtual_s:.3f}>"


@runtime_checkable
class Transport(Protocol):
    """Says a call to an MES and returns its answer (failures are answers too: status 0 and ``error``)."""

    async def exchange(self, call: Call) -> Answer: ...


class Traffic:
    """Counts calls per interface per virtual hour; keeps every call when asked (tests, small runs)."""

    __slots__ = ("_current", "_hour", "_hours", "_next", "calls", "keep", "total")

    def __init__(self, *, keep: bool = False) -> None:
        self.keep = keep
        self.calls: list[Call] = []
        self._hours: dict[str, list[int]] = {}  # operation id -> calls in each past virtual hour
        self._current: dict[str, int] = {}  # operation id -> calls in the current hour
        self._hour = 0
        self._next = 3600.0
        self.total = 0

    def record(self, call: Call) -> None:
        self.total += 1
        if call.virtual_s >= self._next:
            self._roll(int(call.virtual_s // 3600))
        current = self._current
        op = call.op.operation_id
        current[op] = current.get(op, 0) + 1
        if self.keep:
            self.calls.append(call)

    def counts(self) -> dict[str, int]:
        """Calls per interface over the whole run."""
        out = dict(self._current)
        for op, hours in self._hours.items():
            out[op] = out.get(op, 0) + sum(hours)
        return out

    def _roll(self, hour: int) -> None:
        """Close the current hour (calls arrive in virtual-time order, one environment per run)."""
        for op, n in self._current.items():
            hours = self._hours.setdefault(op, [])
            hours.extend([0] * (self._hour + 1 - len(hours)))
            hours[self._hour] += n
        self._current = {}
        self._hour = hour
        self._next = (hour + 1) * 3600.0

    def _all_hours(self) -> dict[str, list[int]]:
        out = {op: list(hours) for op, hours in self._hours.items()}
        for op, n in self._current.items():
            hours = out.setdefault(op, [])
            hours.extend([0] * (self._hour + 1 - len(hours)))
            hours[self._hour] += n
        return out

    @property
    def by_hour(self) -> Counter[tuple[str, int]]:
        return Counter({(op, h): n for op, hours in self._all_hours().items() for h, n in enumerate(hours) if n})

    def count(self, operation_id: str | None = None) -> int:
        if operation_id is None:
            return self.total
        return sum(self._all_hours().get(operation_id, ()))

    def totals(self) -> Counter[str]:
        return Counter({op: sum(hours) for op, hours in self._all_hours().items()})

    def per_interface(self, start_s: float = 0.0, end_s: float | None = None) -> dict[str, int]:
        """Calls per operation id whose hour lies in [start_s, end_s)."""
        first = int(start_s // 3600)
        last = None if end_s is None else int(-(-end_s // 3600))
        out: Counter[str] = Counter()
        for (op, hour), n in self.by_hour.items():
            if hour >= first and (last is None or hour < last):
                out[op] += n
        return dict(out)

    def peak_hour(self, operation_id: str) -> int:
        return max(self._all_hours().get(operation_id, ()), default=0)
