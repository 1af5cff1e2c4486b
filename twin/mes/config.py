"""The embedded MES's settings, one value object the CLI and ``twin run`` fill in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin.mes.faults import Faults

DEFAULT_LINE = "line-A02"
DEFAULT_PORT = 8080


@dataclass(slots=True, kw_only=True)
class MesConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: any free port (read it back from the running MES)
    db: str = "mes.sqlite"  # ":memory:" for a throwaway run
    lines: tuple[str, ...] = (DEFAULT_LINE,)  # line names or files: routes and equipment codes (a factory: several)
    profile: str | None = None  # another profile than the line's
    data_dir: Path | None = None  # another master-data folder than the profile's <name>.data
    synchronous: str = "FULL"  # SQLite synchronous in WAL mode: FULL = on disk at each commit; NORMAL = OS cache
    addresses: dict[str, str] = field(default_factory=dict)  # equipment code (or "*") -> host[:port]
    interlock_timeout_s: float = 3.0  # a section-3 call without an answer by then: the equipment is offline
    batch_every_s: float = 0.0  # push a new electrolyte batch (3.2) this often; 0 = only on request
    faults: Faults = field(default_factory=Faults)
    admin_token: str | None = None  # what /admin/* needs (Authorization: Bearer ...); None: a new one at start
    idle_timeout_s: float = 30.0  # a connection with no complete request for this long is closed (idle or half-sent)
    body_timeout_s: float = 30.0  # a request body must arrive within this, once its headers have (else 408)
