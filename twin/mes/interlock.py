"""What an interlock is once the MES decided to send it (spec 3.1), and the spec's message templates.

The rules that decide (count NG results and tool life) are in ``twin.mes.rules.interlocks``; sending, after the
commit, in ``twin.mes.callouts``. Kept apart so a rule's ``RuleCall`` can carry its firings without the two modules
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Firing:
    """An interlock the MES decided to send."""

    code: str
    equipment: str  # the equipment that must react (and is called)
    detector: str  # the equipment whose result triggered it
    message: str
    at: str


def fill(template: str, *values: str) -> str:
    """Fill the spec's templates, whose placeholders all read ``{EquipmentCode}``, in order (3.1-3)."""
    out = template
    for value in values:
        out = out.replace("{EquipmentCode}", value, 1)
    return out
