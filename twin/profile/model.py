"""Operations and profiles: what a protocol says, ready to build and check messages with.

Nothing here knows the MES: an operation is whatever an OpenAPI operation (or one ``x-variants`` entry of
it, where two spec sections share one HTTP path) describes; the ``x-`` extensions the twin's own profiles
carry (section, Chinese name, trigger, processes, contradictions) are read when present.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import Issue, PayloadInvalid, UnknownOperation
from twin.profile.casing import Casing
from twin.profile.shape import encode, normalise
from twin.profile.validate import CompiledSchema


def format_time(moment: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z``, as the spec's examples write ``LocalTime`` (on every request: isoformat
    is several times cheaper than strftime)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


@functools.lru_cache(maxsize=8)
def _second(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None).isoformat()


def format_epoch(epoch_s: float) -> str:
    """``format_time`` of the UTC moment ``epoch_s``, exactly, without a datetime per call: a run's requests fall in
    the same second by the hundreds, so the date and time of day are formatted once a second."""
    frac, whole = math.modf(epoch_s)
    us = round(frac * 1_000_000)  # as datetime.fromtimestamp rounds (half to even), then carries
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    return f"{_second(int(whole))}.{us // 1000:03d}Z"


@dataclass(slots=True)
class Operation:
    """One logical operation of a profile."""

    operation_id: str
    method: str
    path: str
    casing: Casing
    section: str | None = None
    name_cn: str | None = None
    summary: str = ""
    description: str = ""
    trigger: Mapping[str, Any] = field(default_factory=dict)
    processes: tuple[str, ...] = ()
    contradictions: tuple[Mapping[str, Any], ...] = ()
    needs_auth: bool = False
    success_codes: tuple[Any, ...] = (0,)
    direction: str = "client-to-server"
    servers: tuple[Mapping[str, Any], ...] = ()
    request_schema: dict[str, Any] | None = None
    response_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_examples: dict[str, Any] = field(default_factory=dict)
    response_examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    _compiled: dict[str, CompiledSchema] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"{self.section} {self.operation_id}" if self.section else self.operation_id

    # -- schemas ---------------------------------------------------------------------------------
    def _schema(self, which: str) -> CompiledSchema | None:
        compiled = self._compiled.get(which)
        if compiled is None:
            raw = self.request_schema if which == "request" else self.response_schemas.get(which)
            if raw is None:
                return None
            compiled = CompiledSchema(raw, self.casing, f"{self.operation_id} {which}")
            self._compiled[which] = compiled
        return compiled

    def check_request(self, payload: Any) -> tuple[Any, list[Issue]]:
        """The payload renamed to canonical field names, and what is wrong with it (empty if nothing)."""
        compiled = self._schema("request")
        if compiled is None:
            return payload, []
        return compiled.check(payload)

    def check_response(self, payload: Any, status: int | str = 200) -> tuple[Any, list[Issue]]:
        compiled = self._schema(str(status))
        if compiled is None:
            return payload, []
        return compiled.check(payload)

    def validate_request(self, payload: Any) -> Any:
        data, issues = self.check_request(payload)
        if issues:
            raise PayloadInvalid(self.operation_id, issues)
        return data

    def validate_response(self, payload: Any, status: int | str = 200) -> Any:
        data, issues = self.check_response(payload, status)
        if issues:
            raise PayloadInvalid(f"{self.operation_id} response {status}", issues)
        return data

    # -- building --------------------------------------------------------------------------------
    def request_fields(self) -> list[str]:
        return list(((self.request_schema or {}).get("properties") or {}).keys())

    def encode(self, payload: Any, which: str = "request") -> Any:
        """The payload with its keys spelt in the profile's casing."""
        compiled = self._schema(which)
        return encode(payload, compiled.shape) if compiled is not None else payload

    def normalise(self, payload: Any, which: str = "request") -> Any:
        compiled = self._schema(which)
        return normalise(payload, compiled.shape) if compiled is not None else payload


@dataclass(slots=True)
class Profile:
    """A loaded protocol profile: its operations and its document-level extensions."""

    name: str
    source: Path | None
    title: str
    version: str
    casing: Casing
    operations: dict[str, Operation]
    document: dict[str, Any] = field(repr=False)
    autofill: dict[str, str] = field(default_factory=dict)
    _fills: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, repr=False)
    contradictions: tuple[Mapping[str, Any], ...] = ()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.operations.values())

    def __len__(self) -> int:
        return len(self.operations)

    def operation(self, ref: str) -> Operation:
        """Find an operation by id (any casing), section number (``2.27``) or path."""
        ref = ref.strip()
        if ref in self.operations:
            return self.operations[ref]
        lowered = ref.lower()
        for op in self.operations.values():
            if op.operation_id.lower() == lowered or op.section == ref:
                return op
        by_path = self.operations_at(ref)
        if len(by_path) == 1:
            return by_path[0]
        if by_path:
            ids = ", ".join(f"{o.operation_id} ({o.section})" for o in by_path)
            raise UnknownOperation(f"path {ref} serves several operations: {ids}; name one of them")
        hints = difflib.get_close_matches(ref, list(self.operations), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(hints)}?" if hints else "; see `twin profiles list`"
        raise UnknownOperation(f"no operation {ref!r} in profile {self.name}{hint}")

    def operations_at(self, path: str, method: str | None = None) -> list[Operation]:
        """Every operation served at a path (normalised: stray spaces and case ignored)."""
        want = path.replace(" ", "").rstrip("/").lower()
        return [
            op
            for op in self.operations.values()
            if op.path.lower() == want and (method is None or op.method == method.lower())
        ]

    def match(self, path: str, payload: Any, method: str = "post") -> tuple[Operation, Any, list[Issue]]:
        """The operation a request at a shared path belongs to: the first whose schema it satisfies.

        Variants that ask for more fields are tried first, so the more specific reading wins; when none
        is satisfied, the issues of the first (the path's own operation) are returned.
        """
        candidates = self.operations_at(path, method)
        if not candidates:
            raise UnknownOperation(f"no operation at {method.upper()} {path} in profile {self.name}")
        ordered = sorted(candidates, key=lambda o: -len((o.request_schema or {}).get("required") or ()))
        first: tuple[Operation, Any, list[Issue]] | None = None
        for op in ordered:
            data, issues = op.check_request(payload)
            if not issues:
                return op, data, issues
            if first is None or op is candidates[0]:
                first = (op, data, issues)
        assert first is not None
        return first

    def build_request(
        self,
        ref: str | Operation,
        values: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        validate: bool = False,
    ) -> dict[str, Any]:
        """A request body for an operation, encoded in the profile's casing.

        ``values`` may use any casing. Top-level fields named in the profile's ``x-autofill`` (for the MES:
        ``LocalTime``, ``EquipmentCode``, ``ResourceCode``) are filled from ``context`` when not given;
        a ``datetime`` is written as the spec writes times.
        """
        op = ref if isinstance(ref, Operation) else self.operation(ref)
        # One walk, any casing in, the wire casing out (it was two: to canonical names, then to the wire's): this
        # runs for every request the twin sends.
        body = op.encode(dict(values or {}))
        if context:
            for wire, source in self._autofill_of(op):
                if wire not in body and source in context:
                    body[wire] = context[source]
        for key, value in body.items():
            if isinstance(value, datetime):
                body[key] = format_time(value)
        if validate:
            op.validate_request(body)
        return body

    def _autofill_of(self, op: Operation) -> tuple[tuple[str, str], ...]:
        """(wire name, context key) of the operation's top-level fields filled from the context."""
        found = self._fills.get(op.operation_id)
        if found is None:
            fields = [(name, self.autofill.get(name)) for name in op.request_fields()]
            found = tuple((op.encode({name: 0}).popitem()[0], source) for name, source in fields if source is not None)
            self._fills[op.operation_id] = found
        return found
