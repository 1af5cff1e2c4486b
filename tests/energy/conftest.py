"""Fixtures of the energy tests: a platform on a free loopback port, and a small plant of three stations.

The small plant is a line built in code (loading line-A02 means parsing the 60-interface MES profile, seconds of
YAML); ``test_site`` checks the real line-A02.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from twin.energy.platform import Platform
from twin.energy.site import Site, build_site
from twin.energy.spec import load_energy_spec
from twin.line.model import Line, Station


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    p = Platform()
    await p.start("127.0.0.1", 0)
    yield p
    await p.stop()


@pytest.fixture(scope="session")
def site() -> Site:
    stations = (
        Station("coating", "coating", 2, "T-COAT", (), segment="electrode"),
        Station("winding", "winding", 4, "T-WIND", (), segment="assembly"),
        Station("formation", "formation", 12, "T-FORM", (), segment="formation"),
    )
    return build_site(Line("mini-energy", "three stations", "qingke-mes-v1", stations, ()), load_energy_spec())
