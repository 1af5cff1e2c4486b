"""One exchange: a request, its answer, and the times that keep latency honest.

``intended_wall`` is when the model meant to send it; ``sent_wall`` when it left; ``answered_wall`` when the
answer arrived. Latency from the intended time is what the line felt (no coordinated omission: a stalled
sender still pays for the wait); service time is what the server took. All wall times are epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: Status used when no HTTP answer came back (refused, reset, timed out).
NO_ANSWER = 0


@dataclass(slots=True)
class Exchange:
    operation: str
    equipment: str
    intended_virtual_s: float
    intended_wall: float
    sent_wall: float
    answered_wall: float
    status: int
    code: int | None
    bytes_out: int
    bytes_in: int
    error: str = ""

    @property
    def latency_s(self) -> float:
        """From the intended send time to the answer: what the line felt."""
        return self.answered_wall - self.intended_wall

    @property
    def service_s(self) -> float:
        """From the actual send time to the answer: what the server (and network) took."""
        return self.answered_wall - self.sent_wall

    @property
    def start_delay_s(self) -> float:
        """How late the request left compared with the model's intention."""
        return self.sent_wall - self.intended_wall

    def ok(self, success_codes: tuple[object, ...] = (0,)) -> bool:
        return self.status == 200 and self.code in success_codes

    def as_row(self) -> tuple[object, ...]:
        # dataclasses.astuple deep-copies field by field: ten times slower on the hot path
        return (
            self.operation,
            self.equipment,
            self.intended_virtual_s,
            self.intended_wall,
            self.sent_wall,
            self.answered_wall,
            self.status,
            self.code,
            self.bytes_out,
            self.bytes_in,
            self.error,
        )


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Exchange))
