"""The embedded reference MES: a strict, real service the twin runs against by default.

It serves the 58 interfaces of section 2 at the profile's paths, enforces the spec's business rules
against master data (``profiles/<profile>.data/``), persists to SQLite (WAL, answer after commit),
calls equipment back (section 3: interlocks, electrolyte batches), injects faults on purpose and shows
itself (status page, ``/metrics``, ``/swagger.json``).

    from twin.mes import MesConfig, serve_mes
    async with serve_mes(MesConfig(port=0, db=":memory:")) as mes:
        ...  # mes.url
"""

from twin.mes.app import RunningMes, create_app, serve_mes, start_mes
from twin.mes.config import MesConfig
from twin.mes.faults import Faults, Latency
from twin.mes.registry import equipment_addresses

__all__ = [
    "Faults",
    "Latency",
    "MesConfig",
    "RunningMes",
    "create_app",
    "equipment_addresses",
    "serve_mes",
    "start_mes",
]
