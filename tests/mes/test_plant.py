"""One embedded MES for a whole plant (a factory file's lines): each line's equipment on its own route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.mes.conftest import HOT_PRESS, WINDER, Host, verified
from twin.errors import ConfigError
from twin.mes import MesConfig, RunningMes, start_mes
from twin.profile import Profile

A03_HALL_1, A03_HALL_2, A03_HOT_PRESS = "A03-WINDA-01", "A03-WINDB-04", "A03-HP-01"


@pytest.fixture
async def plant_host(
    make_mes: Callable[..., Awaitable[RunningMes]], session: aiohttp.ClientSession, profile: Profile
) -> Host:
    mes = await make_mes(lines=("line-A02", "line-A03"))
    host = Host(session, mes.url, profile, mes.admin_headers)
    await host.login()
    return host


async def test_each_line_s_products_follow_their_own_line_s_route(plant_host: Host) -> None:
    host = plant_host
    await verified(host, WINDER, HOT_PRESS, A03_HALL_1, A03_HALL_2, A03_HOT_PRESS)
    # both winding halls of line-A03 are one route step: a jelly roll of either goes on to A03's hot press
    for winder in (A03_HALL_1, A03_HALL_2):
        roll = await host.jelly_roll(winder)
        await host.move(roll, A03_HOT_PRESS)
    a02_roll = await host.jelly_roll(WINDER)
    await host.move(a02_roll, HOT_PRESS)
    # a product never changes lines: an A03 jelly roll at A02's hot press is a route refusal naming both
    a03_roll = await host.jelly_roll(A03_HALL_2)
    await host.refused("Inbound", {"Sfc": a03_roll}, HOT_PRESS, "another line", A03_HALL_2, "line-A02")
    await host.refused("Inbound", {"Sfc": a02_roll}, A03_HOT_PRESS, "another line", "line-A03")


async def test_the_status_page_and_unknown_codes_name_every_line(plant_host: Host) -> None:
    async with plant_host.session.get(plant_host.url + "/") as resp:
        page = await resp.text()
    assert "line line-A02: 77 equipment" in page and "line line-A03: 78 equipment" in page
    await plant_host.refused("Inbound", {"Sfc": "JR-X"}, "B07-HP-01", "not on line")


async def test_lines_of_different_profiles_cannot_share_one_mes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    swagger = tmp_path / "their-mes.openapi.yaml"  # another MES's interface: same operations, another document
    swagger.write_text(
        (root / "profiles/qingke-mes-v1.openapi.yaml").read_text().replace(
            "title: Qingke Energy MES equipment interface", "title: Another plant's MES", 1
        )
    )
    (tmp_path / "their-mes.data").symlink_to(root / "profiles/qingke-mes-v1.data")
    line = tmp_path / "their-line.yaml"
    line.write_text((root / "lines/mini.yaml").read_text().replace("profile: qingke-mes-v1", f"profile: {swagger}"))
    with pytest.raises(ConfigError, match="one MES speaks one profile: line mini"):
        await start_mes(MesConfig(port=0, db=":memory:", lines=("line-A02", str(line))))
