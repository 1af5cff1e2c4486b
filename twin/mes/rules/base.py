"""What every business rule gets (``RuleCall``) and gives back (``RuleAnswer`` or ``Refused``), and the MES's
codes.

A rule is a plain function ``rule(call) -> RuleAnswer``: it checks first, raising ``Refused`` with a message
that names what is wrong, and only then changes the state (so a refusal never leaves half a change).
It runs on the event loop without awaiting, which makes check-and-change atomic. What it changes goes
into ``call.tx``; an interlock to send once the answer is durable goes into ``call.fired``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twin.mes.interlock import Firing
from twin.mes.route import Place, Route
from twin.mes.seed import MesData
from twin.mes.state import MesState
from twin.mes.store import Tx
from twin.profile import Operation

# Business codes of the embedded MES (0 = success, as every section's return-code table says). The
# spec leaves failure codes free ("其他 失败"), so these are ours; the reason is what the status page
# and /metrics count refusals by.
CODES: dict[str, int] = {
    "invalid": 1001,  # the request breaks the profile's schema
    "not-json": 1002,  # the body is not JSON
    "unauthorised": 1101,  # missing or unknown token
    "login": 1102,  # wrong account or password
    "equipment": 1201,  # unknown equipment, or an interface its station does not call
    "protocol": 1301,  # a call the spec forbids at that moment (state reported without a change)
    "route": 2001,  # inbound/outbound out of route order
    "ng": 2002,  # an NG product asked to go on
    "product": 2003,  # unknown product code, or one already known
    "material": 2101,  # inventory, feeding, consumption
    "verification": 2201,  # startup parameters / formulas
    "barcode": 2301,  # codes handed out or reported
    "tray": 2401,  # tray life cycle
    "sorting": 2501,  # sorting rules and grades
    "fault": 9001,  # injected on purpose (fault injection)
    "storage": 9501,  # the database failed to commit
}
OK_MSG = "Success"


class Refused(Exception):  # control flow inside the MES, never raised out of twin.mes
    """A business rule refuses the request: ``msg`` names what is wrong."""

    def __init__(self, reason: str, msg: str, data: Any = None, *, keep: bool = False) -> None:
        super().__init__(msg)
        self.reason = reason
        self.code = CODES[reason]
        self.msg = msg
        self.data = data
        self.keep = keep  # commit the changes made before refusing (a failed verification revokes the last one)


@dataclass(slots=True)
class RuleAnswer:
    data: Any = None
    msg: str = OK_MSG
    code: int = 0
    reason: str = ""


@dataclass(slots=True)
class RuleCall:
    """One request as a rule sees it: the operation, the body by canonical field names, the context."""

    op: Operation
    body: dict[str, Any]
    equipment: str
    place: Place | None
    at: datetime  # the equipment's LocalTime (server time when it cannot be read)
    at_text: str
    now: datetime
    state: MesState
    data: MesData
    route: Route
    tx: Tx
    token_user: str = ""
    fired: list[Firing] = field(default_factory=list)  # interlocks to send once the answer is durable
    sfc: str | None = None  # the product the exchange is about, for the exchange log

    def need_place(self) -> Place:
        if self.place is None:
            raise Refused(
                "equipment",
                f"equipment {self.equipment!r} is not on line {self.route.line.name}; {self.op.operation_id} "
                f"({self.op.section}) needs a station (codes are CODE-NN: {self.route.describe_codes()})",
            )
        return self.place
