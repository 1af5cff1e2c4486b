"""What the CT check profile says, in the form the client and the fleet use it.

The precondition table, the bit decoding, the poll period, the twin's error codes and the fleet model are data in
``profiles/ct-check-v1.openapi.yaml``; this module reads them once so neither side hard-codes a rule of the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from twin.errors import ProfileError
from twin.profile import Operation, Profile, load_profile
from twin.profile.loader import resolve_refs

PROFILE_NAME = "ct-check-v1"
STATUS_OP = "GetInverterBmsMeterStatus"
START_OP = "StartCheck"
RESULT_OP = "GetCheckResult"

# The twin's own error codes (x-error-codes of the profile), looked up by name so the numbers stay data.
ERROR_NAMES = ("token", "missing", "malformed", "not-found", "internal")


@dataclass(frozen=True, slots=True)
class Precondition:
    """One field of action 1 and the values that let the check go on."""

    field: str
    allowed: tuple[int, ...]
    meanings: dict[str, str]

    def passes(self, value: Any) -> bool:
        return value in self.allowed

    def describe(self, value: Any) -> str:
        meaning = self.meanings.get(str(value))
        return f"{self.field} {value} ({meaning})" if meaning else f"{self.field} {value}"


@dataclass(slots=True)
class CtSpec:
    """The CT check profile, read for use."""

    profile: Profile
    preconditions: tuple[Precondition, ...]
    progress: dict[tuple[int, int], str]
    results: dict[int, str]
    poll_s: float
    start_grace_s: float
    error_codes: dict[str, int]
    phase_flags: dict[str, str]
    fleet: dict[str, Any]
    path_aliases: dict[str, str]
    sn_pattern: re.Pattern[str]
    allowed_topologies: tuple[str, ...]
    ops: dict[str, Operation] = field(default_factory=dict)

    def op(self, operation_id: str) -> Operation:
        return self.ops[operation_id]

    def progress_state(self, bit1: Any, bit2: Any) -> str:
        """``checking``, ``failed``, ``complete`` or ``undefined`` (CT-11) for a bit1/bit2 pair."""
        return self.progress.get((bit1, bit2), "undefined")


def _error_codes(raw: dict[Any, Any]) -> dict[str, int]:
    codes = {str(entry.get("name")): int(code) for code, entry in raw.items() if isinstance(entry, dict)}
    missing = [name for name in ERROR_NAMES if name not in codes]
    if missing:
        raise ProfileError(f"profile {PROFILE_NAME}: x-error-codes names no code for {', '.join(missing)}")
    return codes


@lru_cache(maxsize=4)
def load_ct_spec(ref: str = PROFILE_NAME) -> CtSpec:
    """Read the CT profile (by name or path) once per process."""
    profile = load_profile(ref)
    doc = resolve_refs(profile.document, profile.document)
    ops = {op.operation_id: op for op in profile}
    for needed in (STATUS_OP, START_OP, RESULT_OP):
        if needed not in ops:
            raise ProfileError(f"profile {ref}: operation {needed} is missing")
    status_body = doc["components"]["schemas"]["StatusBody"]["properties"]
    preconditions = tuple(
        Precondition(name, tuple(sub["x-check-allowed"]), dict(sub.get("x-enum-descriptions") or {}))
        for name, sub in status_body.items()
        if "x-check-allowed" in sub
    )
    decoding = doc.get("x-result-decoding") or {}
    progress = {(int(row["bit1"]), int(row["bit2"])): str(row["state"]) for row in decoding.get("progress", ())}
    results = {int(row["bit3"]): str(row["outcome"]) for row in decoding.get("result", ())}
    phase = doc["components"]["schemas"]["PhaseResult"]["properties"]["phaseFlag"]
    aliases = {}
    for path, item in (doc.get("paths") or {}).items():
        for method_op in item.values():
            for alias in (method_op.get("x-path-aliases") or ()) if isinstance(method_op, dict) else ():
                aliases[alias] = path
    result_op = doc["paths"][ops[RESULT_OP].path]["get"]
    return CtSpec(
        profile=profile,
        preconditions=preconditions,
        progress=progress,
        results=results,
        poll_s=float((doc.get("x-poll") or {}).get("period_s", 10)),
        start_grace_s=float(result_op.get("x-start-grace-s", 30)),
        error_codes=_error_codes(doc.get("x-error-codes") or {}),
        phase_flags={str(k): str(v) for k, v in (phase.get("x-enum-descriptions") or {}).items()},
        fleet=dict(doc.get("x-twin-fleet") or {}),
        path_aliases=aliases,
        sn_pattern=re.compile(doc["components"]["schemas"]["SerialNumber"]["pattern"]),
        allowed_topologies=tuple((doc.get("x-scenarios") or {}).get("allowed-topologies") or ()),
        ops=ops,
    )
