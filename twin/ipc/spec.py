"""What the industrial-PC profile says, in the form the virtual PC and the driver use it.

Answer codes, card positions, move targets, reset actions, the virtual device's settings and the default scripted
session are data in ``profiles/ipc-open-platform-v1.asyncapi.yaml``; this module reads them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from twin.errors import ProfileError
from twin.profile.asyncapi import AsyncProfile, load_asyncapi

PROFILE_NAME = "ipc-open-platform-v1"
WS_PATH = "/WebSocketMessenger"
DEFAULT_PORT = 5000


@dataclass(frozen=True, slots=True)
class Code:
    value: int
    name: str
    text: str

    def __str__(self) -> str:
        return f"{self.value:#04x} {self.name}"


@dataclass(slots=True)
class IpcSpec:
    profile: AsyncProfile
    codes: dict[str, Code]  # by name: CRS_SUCCESS, CRS_NOCARDIN, ReadFail ...
    positions: dict[str, int]  # position name (gate, front, rf, ...) -> status code
    position_text: dict[int, str]  # status code -> Chinese description
    move_targets: dict[int, str]  # location -> target name
    reset_targets: dict[int, str]  # action -> target name
    device: dict[str, Any]
    session: list[dict[str, Any]]

    def code(self, name: str) -> int:
        return self.codes[name].value

    def code_named(self, value: int) -> Code | None:
        for code in self.codes.values():
            if code.value == value:
                return code
        return None

    def describe(self, value: Any) -> str:
        found = self.code_named(value) if isinstance(value, int) else None
        return str(found) if found else repr(value)


def _table(doc: dict[str, Any], key: str, field: str) -> dict[int, str]:
    table = doc.get(key)
    if not isinstance(table, dict) or not table:
        raise ProfileError(f"profile {PROFILE_NAME}: {key} is missing")
    return {int(k): str(v[field]) for k, v in table.items()}


@lru_cache(maxsize=4)
def load_ipc_spec(ref: str = PROFILE_NAME) -> IpcSpec:
    """Read the industrial-PC profile (by name or path) once per process."""
    profile = load_asyncapi(ref)
    doc = profile.document
    codes = {
        str(v["name"]): Code(int(k), str(v["name"]), str(v.get("text", "")))
        for k, v in (doc.get("x-response-codes") or {}).items()
    }
    needed = ("CRS_SUCCESS", "CRS_NOCARDIN", "CRS_NOTINSTDPOS", "TWIN_PARAM_ERROR", "TWIN_CAMERA_OFF", "Interrupted")
    missing = [n for n in needed if n not in codes]
    if missing:
        raise ProfileError(f"profile {ref}: x-response-codes lacks {', '.join(missing)}")
    positions = _table(doc, "x-card-positions", "name")
    return IpcSpec(
        profile=profile,
        codes=codes,
        positions={name: code for code, name in positions.items()},
        position_text=_table(doc, "x-card-positions", "text-cn"),
        move_targets=_table(doc, "x-move-locations", "to"),
        reset_targets=_table(doc, "x-reset-actions", "to"),
        device=dict(doc.get("x-twin-device") or {}),
        session=list(doc.get("x-twin-session") or ()),
    )
