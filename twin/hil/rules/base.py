"""What every behavioural rule shares: the exchange as a rule sees it, violations, the rule's context.

A rule is one class: ``feed`` is called with every exchange of the recording in order (all hosts together,
because a tray's life spans several equipment), ``finish`` once at the end; a rule counts the checks it made
per host and records violations with the exchanges that show them. Violations of one kind that repeat (a host
that never logged in sends a hundred heartbeats) are folded into one, counted, with the first exchanges kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from twin.datadirs import search_dirs
from twin.errors import ConfigError, UnknownOperation
from twin.hil.journal import Recorded
from twin.profile import Operation, Profile

EXAMPLES_KEPT = 10
_PACKAGED = Path(__file__).resolve().parent.parent / "behaviour"


@dataclass(frozen=True, slots=True)
class Settings:
    """The times the rules use; defaults come from the behaviour file, flags override them."""

    heartbeat_s: float = 10.0
    heartbeat_tolerance_s: float = 2.0
    down_reason_after_s: float = 180.0
    long_stop_s: float = 180.0

    @classmethod
    def from_behaviour(cls, behaviour: dict[str, Any], **overrides: float | None) -> Settings:
        base = {
            "heartbeat_s": behaviour["heartbeat"]["period_s"],
            "heartbeat_tolerance_s": behaviour["heartbeat"]["tolerance_s"],
            "down_reason_after_s": behaviour["state"]["down_reason_after_s"],
            "long_stop_s": behaviour["verification"]["long_stop_s"],
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: float(v) for k, v in base.items()})


def load_behaviour(profile: Profile) -> dict[str, Any]:
    """The behaviour file of a profile: ``profiles/<name>.data/behaviour.yaml``, else the packaged copy."""
    candidates = [d / f"{profile.name}.data" / "behaviour.yaml" for d in search_dirs("profiles")]
    candidates.append(_PACKAGED / f"{profile.name}.yaml")
    for path in candidates:
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8"))
    raise ConfigError(
        f"no behavioural rules for profile {profile.name}: expected profiles/{profile.name}.data/behaviour.yaml"
    )


@dataclass(slots=True)
class Seen:
    """An exchange with its operation resolved and its request in canonical field names."""

    rec: Recorded
    op: Operation | None
    data: dict[str, Any]
    ok: bool
    # Every rule reads these of every exchange (a dozen reads each): attributes, not properties over ``rec``.
    t: float = field(init=False)
    host: str = field(init=False)
    op_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.t, self.host, self.op_id = self.rec.received, self.rec.host, self.rec.operation

    @property
    def answered_t(self) -> float:
        """When the host had the answer (its send time if no answer time was recorded)."""
        return max(self.t, self.rec.answered or self.t)

    @property
    def label(self) -> str:
        return f"{self.rec.section} {self.rec.operation}".strip() or self.rec.path


@dataclass(slots=True)
class Violation:
    rule: str
    host: str
    message: str
    at: float
    seqs: list[int] = field(default_factory=list)
    count: int = 1


@dataclass(slots=True)
class RuleContext:
    profile: Profile
    behaviour: dict[str, Any]
    settings: Settings
    processes: dict[str, str] = field(default_factory=dict)

    def op_id(self, section: str) -> str:
        try:
            return self.profile.operation(section).operation_id
        except UnknownOperation as exc:
            raise ConfigError(f"behaviour file of {self.profile.name}: {exc}") from None

    def serves(self, host: str, section: str) -> bool | None:
        """Whether the host's process calls the interface (from the line file), or None when unknown."""
        process = self.processes.get(host)
        if process is None:
            return None
        op = self.profile.operation(section)
        return not op.processes or "all" in op.processes or process in op.processes


def pluck(data: Any, path: str) -> list[str]:
    """Values at a field path: ``Sfc``, ``SfcList[]``, ``ContainerSfcList[].Sfc`` (strings only)."""
    items: list[Any] = [data]
    for part in path.split("."):
        nxt: list[Any] = []
        many = part.endswith("[]")
        key = part[:-2] if many else part
        for item in items:
            value = item.get(key) if isinstance(item, dict) else None
            if many and isinstance(value, list):
                nxt.extend(value)
            elif value is not None and not many:
                nxt.append(value)
        items = nxt
    return [str(v) for v in items if isinstance(v, str | int) and not isinstance(v, bool)]


class Rule:
    """One behavioural rule; subclasses set the class attributes and implement ``feed``."""

    id: ClassVar[str]
    title: ClassVar[str]
    spec: ClassVar[str]
    party: ClassVar[str] = "host"  # whose behaviour it judges: the host PC, or the MES's answers

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.violations: list[Violation] = []
        self.checks: Counter[str] = Counter()
        self._open: dict[tuple[str, str], Violation] = {}

    def feed(self, seen: Seen) -> None:
        raise NotImplementedError

    def opening(self, host: str, cells: list[str], tray: str | None) -> None:
        """Work in progress that was inside ``host`` before the recording began (a warm line's opening WIP):
        its inbound (and, on a tray, the tray's binding and tray-in) happened before the first exchange."""

    def finish(self, last_seen: dict[str, float]) -> None:
        """Called once after the last exchange, with each host's last exchange time."""

    def applies(self, host: str) -> bool:
        return True

    def check(self, host: str) -> None:
        self.checks[host] += 1

    def violate(self, host: str, message: str, *seen: Seen, key: str | None = None, at: float | None = None) -> None:
        """Record a violation; with a ``key``, repeats are folded into the open one until ``close(key)``."""
        when = at if at is not None else (seen[-1].t if seen else 0.0)  # the last one is the one that broke it
        seqs = [s.rec.seq for s in seen]
        if key is not None:
            current = self._open.get((host, key))
            if current is not None:
                current.count += 1
                current.seqs.extend(seqs[: max(EXAMPLES_KEPT - len(current.seqs), 0)])
                return
        violation = Violation(self.id, host, message, when, seqs[:EXAMPLES_KEPT])
        self.violations.append(violation)
        if key is not None:
            self._open[(host, key)] = violation

    def close(self, host: str, key: str) -> None:
        self._open.pop((host, key), None)
