"""The proxy's journal: every exchange with its payloads, one JSON line each, for the conformance report.

The exchange log of ``twin.metrics`` (``exchanges.parquet``) keeps times, status and sizes for the latency
figures; the conformance rules also need what was said, so the proxy writes this journal beside it
(``journal.jsonl``). Lines are appended and flushed one by one (a host PC talks at a few calls per second):
a killed proxy leaves every exchange before the kill readable, and a half-written last line is skipped.

Secrets are not kept: the operator password of 2.1 is replaced by ``***`` (an empty one stays empty, so the
rule against empty logins still sees it), and tokens (the login answer's ``authorization``, the
``Authorization`` header of each call) are kept as a short SHA-256 digest, enough to tell whether a call
carried the token the MES issued.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
HOST_TO_MES = "host"  # a section-2 call from the host PC, forwarded to the MES
MES_TO_HOST = "mes"  # a section-3 call from the MES, forwarded to the host PC


def digest(secret: str | None) -> str:
    if not secret:
        return ""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


@dataclass(slots=True)
class Recorded:
    """One exchange as the proxy saw it. Times are wall epoch seconds."""

    seq: int
    direction: str
    path: str
    operation: str
    section: str
    equipment: str
    peer: str
    received: float
    forwarded: float
    answered: float
    status: int
    code: int | None
    request: Any
    response: Any
    request_issues: list[str] = field(default_factory=list)
    response_issues: list[str] = field(default_factory=list)
    error: str = ""
    token: str = ""
    attempts: int = 1

    @property
    def host(self) -> str:
        """The equipment code the exchange belongs to, or the peer's address when the body named none."""
        return self.equipment or f"?{self.peer}"

    def as_dict(self) -> dict[str, Any]:
        """Shallow: payloads are kept as they are (``dataclasses.asdict`` deep-copies them, ~1 ms a record)."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recorded:
        return cls(**data)


def redact(request: Any, response: Any, *, password_field: str, token_field: str) -> tuple[Any, Any]:
    """The login request and answer without the password and the token (see the module's docstring)."""
    if isinstance(request, dict):
        request = {k: ("***" if v else v) if k.lower() == password_field.lower() else v for k, v in request.items()}
    if isinstance(response, dict):
        response = dict(response)
        for key, data in response.items():
            if key.lower() == "data" and isinstance(data, dict):
                response[key] = {
                    k: digest(str(v)) if k.lower() == token_field.lower() and v else v for k, v in data.items()
                }
    return request, response


class JournalWriter:
    """Appends exchanges to ``journal.jsonl``; numbering continues after what the file already holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.count = sum(1 for _ in read_journal(path)) if path.exists() else 0
        self._file = path.open("ab")

    def next_seq(self) -> int:
        self.count += 1
        return self.count

    def append(self, rec: Recorded) -> None:
        self._file.write(orjson.dumps(rec, option=orjson.OPT_NON_STR_KEYS) + b"\n")  # orjson writes dataclasses
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path) -> Iterator[Recorded]:
    """Every exchange of a journal, in order; a line that cannot be read (a crash mid-write) is skipped."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Recorded.from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError) as exc:
                log.warning("%s:%d: unreadable journal line skipped (%s)", path, number, exc)
