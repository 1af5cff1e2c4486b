"""The proxy in front of the embedded MES (``--upstream embedded``): the MES's section 3 reaches the host."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.conftest import MES_PROFILE
from tests.hil.conftest import wait_until
from tests.hil.hosts import FakeHost, HostListener
from twin.commands.proxy import start_embedded_mes
from twin.hil.journal import JOURNAL, read_journal
from twin.hil.proxy import HostProxy, ProxyConfig
from twin.profile import load_profile

PROFILE = load_profile(MES_PROFILE)
INJECTOR = "A02-INJ1-01"


@pytest.mark.e2e
async def test_embedded_mes_behind_the_proxy(record_dir: Path) -> None:
    pytest.importorskip("twin.mes")
    listener = HostListener(200)
    await listener.start()
    proxy = HostProxy(
        PROFILE, ProxyConfig(upstream="embedded", record_dir=record_dir, host_map={INJECTOR: listener.url})
    )
    await proxy.start()
    mes = await start_embedded_mes(proxy, line="line-A02", db=":memory:", profile=None)
    try:
        async with aiohttp.ClientSession() as session:
            host = FakeHost(session, PROFILE, proxy.url, INJECTOR)
            await host.login()  # a real account of the embedded MES's seed data
            assert host.token
            await host.call("2.2", {"IsOnline": True})
            async with session.post(
                mes.url + "/admin/electrolyte-batch", json={"equipment": [INJECTOR]}, headers=mes.admin_headers
            ) as resp:
                assert resp.status == 200, await resp.text()
        await wait_until(lambda: bool(listener.received))
    finally:
        await proxy.stop()
        await mes.stop()
        await listener.stop()
    [(path, body)] = listener.received
    assert path == "/api/SendBatchSfc" and body.get("EquipmentCode", body.get("equipmentCode")) == INJECTOR
    journal = list(read_journal(record_dir / JOURNAL))
    assert [r.operation for r in journal] == ["OperatorLogin", "Heartbeat", "SendBatchSfc"]
    assert journal[0].code == 0 and journal[2].direction == "mes" and journal[2].status == 200
