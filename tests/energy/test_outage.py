"""8.8 across platform trouble: each batch tried, resent 3 times, queued, sent first at the next upload - and in
the end every value at the platform exactly once: nothing lost, nothing sent twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from twin.energy.platform import Platform
from twin.energy.site import Site
from twin.energy.store import UplinkStore
from twin.energy.uplink import EnergyUplink, UplinkConfig

T0 = datetime(2026, 11, 23, 0, 0)
Expected = dict[tuple[str, int, str], float]


Make = Callable[..., EnergyUplink]


@pytest.fixture
async def make(platform: Platform, site: Site) -> AsyncIterator[Make]:
    """Uplinks to the platform, every 15 minutes, no pause between resends; closed at the end of the test."""
    made: list[EnergyUplink] = []

    def build(store: UplinkStore, **config: object) -> EnergyUplink:
        settings = {"upload_every_s": 900.0, "upload_offset_s": 0.0, "retry_pause_s": 0.0, "timeout_s": 1.0, **config}
        made.append(EnergyUplink(site, store, UplinkConfig(register_url=f"{platform.url}/register", **settings)))
        return made[-1]

    yield build
    for up in made:
        await up.aclose()


def feed(up: EnergyUplink, site: Site, at: datetime, expected: Expected) -> None:
    """One minute of consumption on three points, remembered independently of the uplink."""
    for i, point in enumerate(site.points[1:4], 1):
        kwh = i * 0.5 + at.minute / 100
        up.record(at, point.code, kwh)
        quarter = at.replace(minute=at.minute - at.minute % 15)
        for code in (point.code, site.total.code):
            expected[(code, 0, quarter.strftime("%Y-%m-%d %H:%M:%S"))] += kwh
            expected[(code, 1, at.strftime("%Y-%m-%d 00:00:00"))] += kwh


def ended_by(expected: Expected, moment: datetime) -> Expected:
    """The values whose period has ended by ``moment`` (the others are still open, not yet to upload)."""
    span = {0: timedelta(minutes=15), 1: timedelta(days=1)}
    return {k: v for k, v in expected.items() if datetime.fromisoformat(k[2]) + span[k[1]] <= moment}


def assert_all_there_once(platform: Platform, expected: Expected) -> None:
    stored = platform.store.values()
    assert set(stored) == set(expected)  # nothing lost, nothing extra
    for key, kwh in expected.items():
        value, received = stored[key]
        assert abs(value - kwh) < 1e-3 and received == 1, key  # nothing sent twice


async def test_an_outage_queues_batches_and_the_queue_drains_in_order(
    platform: Platform, site: Site, make: Make
) -> None:
    up = make(UplinkStore())
    expected: Expected = defaultdict(float)
    at = T0
    await up.tick(at)
    while at < T0 + timedelta(hours=26):  # a day and a bit, so daily values go through too
        feed(up, site, at, expected)
        at += timedelta(minutes=1)
        if at == T0 + timedelta(hours=2):
            await platform.outage(True)
        if at == T0 + timedelta(hours=3, minutes=5):
            await platform.outage(False)
        await up.tick(at)
    assert await up.finish(at)

    sends = [e for e in up.events if e.operation == "UploadEnergyData"]
    first_failure = next(i for i, e in enumerate(sends) if e.outcome != "ok")
    assert [e.outcome for e in sends[first_failure : first_failure + 5]] == ["unavailable"] * 4 + ["queued"]
    assert [e.attempt for e in sends[first_failure : first_failure + 4]] == [1, 2, 3, 4]  # 1 try + 3 resends
    assert up.stats.queued_after_retries == 5  # the uploads at 02:00, 02:15, 02:30, 02:45 and 03:00
    recovered = [e for e in sends[first_failure:] if e.outcome == "ok"]
    assert recovered[0].at == "2026-11-23 03:15:00"
    assert [e.batch_id for e in recovered[:6]] == sorted(e.batch_id for e in recovered[:6])  # oldest first
    assert up.store.counts()["queued"] == 0 and up.store.counts()["rejected"] == 0
    assert_all_there_once(platform, ended_by(expected, at))
    assert platform.stats()["received_again"] == 0


async def test_a_lost_answer_is_resent_and_the_platform_keeps_the_value_once(
    platform: Platform, site: Site, make: Make
) -> None:
    up = make(UplinkStore(), timeout_s=0.2)
    expected: Expected = defaultdict(float)
    await up.tick(T0)
    for minute in range(15):
        feed(up, site, T0 + timedelta(minutes=minute), expected)
    platform.faults.add("UploadEnergyData", slow_s=0.4, count=2)  # stored, but answered after the client gave up
    assert await up.upload(T0 + timedelta(minutes=16))
    outcomes = [e.outcome for e in up.events if e.operation == "UploadEnergyData"]
    assert outcomes == ["timeout", "timeout", "ok"]
    stored = platform.store.values()
    quarter = {k: v for k, v in expected.items() if k[1] == 0}
    assert {k: round(v[0], 3) for k, v in stored.items()} == {k: round(v, 3) for k, v in quarter.items()}
    assert {v[1] for v in stored.values()} == {3}  # received three times, kept once (EN-18)


async def test_the_queue_survives_a_restart_of_the_uplink(
    platform: Platform, site: Site, make: Make, tmp_path: Path
) -> None:
    db = tmp_path / "uplink.db"
    first = make(UplinkStore(db))
    expected: Expected = defaultdict(float)
    await first.tick(T0)
    for minute in range(30):
        feed(first, site, T0 + timedelta(minutes=minute), expected)
    await platform.outage(True)
    assert not await first.upload(T0 + timedelta(minutes=31))
    assert first.store.counts()["queued"] == 8  # two quarters of three points and the total
    await first.aclose()
    first.store.close()  # the twin stops (or crashes) with the batch queued

    await platform.outage(False)
    second = make(UplinkStore(db))  # a new process on the same queue
    assert await second.finish(T0 + timedelta(minutes=31))
    assert not [e for e in second.events if e.operation == "Register"]  # it kept its registration
    assert second.store.counts()["queued"] == 0
    assert_all_there_once(platform, ended_by(expected, T0 + timedelta(minutes=30)))
    second.store.close()
