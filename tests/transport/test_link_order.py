"""What a strict MES sees of the hosts' link: reports in the order they were made, and never without a token.

Each test runs the host link (``HostLink`` over the pooled client) against ``PermissiveMes``, an MES built
from the profile's examples alone, which processes concurrent requests in a shuffled order unless the
hosts themselves keep it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from twin.profile import Profile, load_profile
from twin.profile.calls import Call
from twin.transport.hostlink import HostLink
from twin.transport.http import MesClient
from twin.transport.outbox import Outbox

from .permissive_mes import PermissiveMes, Seen, serve

CREDS = {"user": "op", "password": "pw"}
EPOCH = 1_790_000_000.0
EQUIPMENT = ["A02-WIND-01", "A02-WIND-02", "A02-HP-01"]
VALUES: dict[str, dict[str, Any]] = {
    "OperatorLogin": {"OperatorUserID": "op", "OperatorPassword": "pw"},
    "Heartbeat": {"IsOnline": True},
    "State": {"StateCode": "1", "DownReason": ""},
    "Alarm": {"AlarmCode": "A1", "AlarmLevel": "M", "AlarmMsg": "x", "Status": "1"},
    "Inbound": {"Sfc": "C1"},
    "Outbound": {"Sfc": "C1", "Passed": 1},
    "EquipmentProcessParam": {"ParamList": []},
}


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("qingke-mes-v1")


def call(profile: Profile, op: str, equipment: str, n: float) -> Call:
    """The ``n``-th thing a host made: its LocalTime says when, so the MES side can read the made order."""
    return Call(profile, profile.operation(op), VALUES[op], equipment, f"R-{equipment}", n, None, EPOCH + n, None)


def made(s: Seen) -> str:
    return str(s.body.get("localTime"))


async def logged_in(link: HostLink, profile: Profile) -> None:
    for eq in EQUIPMENT:
        assert (await link.exchange(call(profile, "OperatorLogin", eq, 0))).status == 200


async def test_states_and_alarms_reach_the_mes_in_the_order_they_were_made(profile: Profile) -> None:
    mes = PermissiveMes(profile, jitter_s=0.02)
    runner, url = await serve(mes)
    try:
        async with MesClient(url, connections=32) as client:
            link = HostLink(client, profile, Outbox(), credentials=CREDS)
            await logged_in(link, profile)
            # an alarm cleared, the next raised, a state change: made in one instant, handed over at once (the bridge)
            calls = [call(profile, "Alarm" if n % 3 else "State", eq, n) for n in range(1, 31) for eq in EQUIPMENT]
            await asyncio.gather(*(link.exchange(c) for c in calls))
    finally:
        await runner.cleanup()
    status = [s for s in mes.seen if s.operation in ("State", "Alarm")]
    assert len(status) == len(calls)
    assert mes.order_violations(lambda s: s.equipment if s.operation in ("State", "Alarm") else None, made) == []
    assert len(link.lanes) == 0  # every lane handed back


async def test_after_a_hang_every_record_arrives_in_its_made_order(profile: Profile) -> None:
    """A hang outage: calls in flight time out; they go back to the head of their queue, not its tail."""
    mes = PermissiveMes(profile, jitter_s=0.005)
    runner, url = await serve(mes)
    records = ["Inbound", "Outbound", "EquipmentProcessParam", "State", "Alarm"]
    tasks: list[asyncio.Task[Any]] = []
    made_calls: list[Call] = []
    try:
        async with MesClient(url, connections=16, timeout_s=0.3) as client:
            link = HostLink(client, profile, Outbox(), credentials=CREDS, retry_s=0.05)
            await logged_in(link, profile)
            loop = asyncio.get_running_loop()
            start = loop.time()
            n = 0
            while (t := loop.time() - start) < 1.6:
                if 0.4 <= t < 0.9 and mes._hang is None and not mes.dropped:
                    mes.hang()
                if t >= 0.9:
                    mes.release()
                for eq in EQUIPMENT:
                    for op in records:
                        n += 1
                        made_calls.append(call(profile, op, eq, n))
                        tasks.append(asyncio.ensure_future(link.exchange(made_calls[-1])))
                    tasks.append(asyncio.ensure_future(link.exchange(call(profile, "Heartbeat", eq, n))))
                await asyncio.sleep(0.02)
            await asyncio.gather(*tasks)
            for _ in range(200):
                if len(link.outbox) == 0 and not link.draining:
                    break
                await asyncio.sleep(0.05)
    finally:
        mes.release()
        await runner.cleanup()
    assert mes.dropped > 0 and link.stats.outages, "the hang must have been lived"
    made_records = {(c.equipment_code, c.op.operation_id, c.body["localTime"]) for c in made_calls}
    processed = {(s.equipment, s.operation, made(s)) for s in mes.seen if s.operation in records}
    assert made_records <= processed, f"{len(made_records - processed)} records never reached the MES"

    def lane(s: Seen) -> tuple[str, str] | None:
        if s.operation not in records:
            return None
        return s.equipment, "status" if s.operation in ("State", "Alarm") else s.operation

    assert mes.order_violations(lane, made) == []
    stats = link.stats
    assert stats.queued == stats.resent and len(link.outbox) == 0  # nothing queued that was not re-uploaded
    assert stats.possible_duplicates > 0  # the requests the hang swallowed were resent, and said so
    assert sum(o.queued for o in stats.outages) == sum(o.resent for o in stats.outages) == stats.queued


async def test_nothing_but_the_login_leaves_without_a_token(profile: Profile) -> None:
    """Logins fail at first (a start-up storm): the hosts' reports wait, and their heartbeats stay home."""
    mes = PermissiveMes(profile, login_refusals=1)
    runner, url = await serve(mes)
    first, second, third = EQUIPMENT
    try:
        async with MesClient(url, connections=8, timeout_s=0.2) as client:
            link = HostLink(client, profile, Outbox(), credentials=CREDS, retry_s=0.05)
            assert (await link.exchange(call(profile, "OperatorLogin", first, 0))).status == 503  # no token
            assert (await link.exchange(call(profile, "State", first, 1))).status == 200  # kept, not sent
            assert (await link.exchange(call(profile, "Heartbeat", first, 2))).error == "no-token"
            assert (await link.exchange(call(profile, "OperatorLogin", second, 3))).status == 200
            assert (await link.exchange(call(profile, "Alarm", first, 4))).status == 200  # behind the State
            await asyncio.sleep(0.2)  # the drain waits for the first host's own login
            assert [s.operation for s in mes.seen] == ["OperatorLogin"]
            assert (await link.exchange(call(profile, "OperatorLogin", first, 5))).status == 200
            await _drained(link)
            # online, nothing owed: a host that has not logged in yet keeps its report until it has
            assert (await link.exchange(call(profile, "State", third, 6))).status == 200
            assert (await link.exchange(call(profile, "OperatorLogin", third, 7))).status == 200
            await _drained(link)
    finally:
        await runner.cleanup()
    assert mes.unauthenticated == []
    sent = [(s.operation, s.equipment) for s in mes.seen if s.operation != "OperatorLogin"]
    assert sent == [("State", first), ("Alarm", first), ("State", third)]
    assert all((s.authorization or "").startswith("Bearer ") for s in mes.seen if s.operation != "OperatorLogin")
    assert link.stats.held_for_login == 2 and link.stats.unsent_no_token == 1
    assert link.stats.queued == link.stats.resent == 3


async def _drained(link: HostLink) -> None:
    for _ in range(100):
        if len(link.outbox) == 0 and not link.draining:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the outbox did not drain: {len(link.outbox)} left")
