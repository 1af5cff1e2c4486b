"""The host link's outage figures after a hang (issue 13, item 4).

A hang outage holds the requests in flight and cuts them when it ends, while new requests are already answered.
Each cut request used to open an outage of its own: the summary listed spurious 0.0 s "reset" outages with no
drain time, the real one looked 0.0 s long, and records queued in one outage were counted as re-uploaded in
another. The MES here is a fake client whose answers the test hands out in exactly that order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from twin.metrics.exchange import NO_ANSWER, Exchange
from twin.profile import Profile, load_profile
from twin.profile.calls import Call
from twin.transport.hostlink import HostLink
from twin.transport.http import Reply
from twin.transport.outbox import Outbox


class HangingMes:
    """While ``hung``, calls wait until the test cuts them (``cut``); otherwise they are answered at once."""

    timeout_s = 5.0

    def __init__(self) -> None:
        self.hung = False
        self.held: list[tuple[float, asyncio.Future[None]]] = []
        self.answered = 0

    async def call(self, op: Any, body: Any, *, equipment: str, **_: Any) -> Reply:
        sent = time.time()
        if self.hung:
            gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.held.append((sent, gate))
            await gate
            return self._reply(op.operation_id, equipment, sent, NO_ANSWER, "reset")
        self.answered += 1
        return self._reply(op.operation_id, equipment, sent, 200, "")

    def cut(self, i: int) -> None:
        self.held[i][1].set_result(None)

    @staticmethod
    def _reply(op: str, equipment: str, sent: float, status: int, error: str) -> Reply:
        ex = Exchange(op, equipment, 0.0, sent, sent, time.time(), status, 0 if status else None, 10, 10, error)
        return Reply(status, 0 if status else None, "", None, status == 200, error, ex)


def state(profile: Profile, equipment: str, n: int) -> Call:
    values = {"StateCode": str(n % 3 + 1), "DownReason": ""}
    return Call(profile, profile.operation("State"), values, equipment, f"R-{equipment}", n, None, 1.79e9 + n, None)


def heartbeat(profile: Profile, equipment: str, n: int) -> Call:
    op = profile.operation("Heartbeat")
    return Call(profile, op, {"IsOnline": True}, equipment, f"R-{equipment}", n, None, 1.79e9 + n, None)


async def test_a_hang_is_one_outage_from_its_first_held_call_with_every_record_drained() -> None:
    profile = load_profile("qingke-mes-v1")
    mes = HangingMes()
    link = HostLink(mes, profile, Outbox(), credentials={"user": "op", "password": "pw"})  # type: ignore[arg-type]
    link.static_token = "Bearer fixed"  # spec 1.5.3: no login needed for this test
    assert (await link.exchange(state(profile, "EQ-0", 0))).status == 200
    mes.hung = True
    began = time.time()
    held = [asyncio.create_task(link.exchange(state(profile, f"EQ-{i}", i))) for i in range(1, 6)]
    while len(mes.held) < 5:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the hang lasts
    mes.hung = False
    for i in range(5):  # the MES is back: cut held calls arrive between answers to new ones (heartbeats)
        mes.cut(i)
        await asyncio.sleep(0.01)
        assert (await link.exchange(heartbeat(profile, "EQ-new", 10 + i))).status == 200
    await asyncio.gather(*held)
    for _ in range(100):
        if not link.draining and len(link.outbox) == 0:
            break
        await asyncio.sleep(0.01)
    stats = link.stats.to_dict(len(link.outbox))
    outages = stats["outages"]
    assert len(outages) == 1, outages  # not one per cut request
    outage = link.stats.outages[0]
    assert abs(outage.started - mes.held[0][0]) < 1e-6 and outage.started < began + 0.05  # from the first held call
    assert outages[0]["offline_s"] >= 0.3 and outages[0]["drain_s"] is not None
    assert outages[0]["queued"] == outages[0]["resent"] == stats["queued"] == stats["resent"] > 0
    assert stats["backlog_now"] == 0 and link.online


async def test_a_slow_call_timing_out_while_others_are_answered_is_not_an_outage() -> None:
    profile = load_profile("qingke-mes-v1")
    mes = HangingMes()
    link = HostLink(mes, profile, Outbox(), credentials={"user": "op", "password": "pw"})  # type: ignore[arg-type]
    link.static_token = "Bearer fixed"
    mes.hung = True
    slow = asyncio.create_task(link.exchange(state(profile, "EQ-1", 1)))
    while not mes.held:
        await asyncio.sleep(0.01)
    mes.hung = False
    assert (await link.exchange(state(profile, "EQ-2", 2))).status == 200  # the MES answers others meanwhile
    mes.cut(0)
    await slow
    for _ in range(100):
        if not link.draining and len(link.outbox) == 0:
            break
        await asyncio.sleep(0.01)
    assert link.stats.outages == [] and link.online
    assert link.stats.queued == link.stats.resent == 1 and len(link.outbox) == 0  # re-uploaded, not stranded
