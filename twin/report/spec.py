"""What the MES profile says about an interface or a code, for the page: how an MES team names things.

An MES team speaks of "2.8 获取开机参数明细", not of ``GetRecipeDetail``: the profile has the section
(``x-section``) and the Chinese title (``x-name-cn``) of every operation. The spec leaves failure codes to
the MES (every return-code table: 0 success, "其他 失败"); the embedded MES's own codes are named where
the run was against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from twin.errors import TwinError

PROFILE = "qingke-mes-v1"


@dataclass(frozen=True, slots=True)
class SpecName:
    section: str
    name_cn: str


class SpecNames:
    """Section and Chinese name per operation id; empty when the profile cannot be loaded."""

    def __init__(self, profile: str = PROFILE) -> None:
        self.names: dict[str, SpecName] = {}
        self.success: dict[str, tuple[int, ...]] = {}
        try:
            from twin import load_profile

            loaded = load_profile(profile)
        except (TwinError, OSError):
            return
        for op_id, op in loaded.operations.items():
            self.names[op_id] = SpecName(op.section or "", op.name_cn or "")
            self.success[op_id] = tuple(op.success_codes)

    def of(self, operation: str) -> SpecName:
        return self.names.get(operation, SpecName("", ""))


def section_key(section: str) -> tuple[int, ...]:
    """``"2.27"`` sorts after ``"2.3"``; no section sorts last."""
    parts = [int(p) for p in re.findall(r"\d+", section)]
    return tuple(parts) if parts else (10**6,)


def _embedded_reasons() -> dict[int, str]:
    try:  # the embedded MES's own codes (twin.mes is another layer: read only when a report needs them)
        from twin.mes.rules.base import CODES
    except ImportError:  # pragma: no cover - twin.mes ships with twin
        return {}
    return {code: reason for reason, code in CODES.items()}


def meaning(outcome: str, *, embedded: bool) -> str:
    """What a failing outcome means: a business code (the spec's rule, the embedded MES's reason), an HTTP
    status, or an exchange without an answer."""
    if outcome.lstrip("-").isdigit():
        text = "refused by the MES (spec: 0 is success, any other code a failure named in msg)"
        reason = _embedded_reasons().get(int(outcome)) if embedded else None
        if reason == "fault":
            return "injected on purpose by the embedded MES's fault injection"
        return f"{text}; embedded MES: {reason}" if reason else text
    if outcome.startswith("http "):
        code = outcome[5:]
        try:
            phrase = HTTPStatus(int(code)).phrase
        except ValueError:
            phrase = "HTTP status"
        return f"HTTP {code} {phrase}: the MES answered without a business result"
    return f"no answer ({outcome}): the equipment counts it as the MES being away"


def is_embedded(settings: dict[str, Any]) -> bool:
    return str(settings.get("target", "")) == "embedded"
