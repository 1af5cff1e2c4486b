"""The uplink against our platform: register first, values aggregated right, versions checked, codes handled."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from twin.energy.platform import Platform
from twin.energy.site import Site
from twin.energy.store import UplinkStore
from twin.energy.uplink import EnergyUplink, UplinkConfig
from twin.errors import ConfigError

T0 = datetime(2026, 11, 23, 0, 0)


def uplink(platform: Platform, site: Site, store: UplinkStore | None = None, **config: object) -> EnergyUplink:
    settings = {"upload_every_s": 900.0, "upload_offset_s": 0.0, "retry_pause_s": 0.0, "timeout_s": 2.0, **config}
    return EnergyUplink(site, store or UplinkStore(), UplinkConfig(register_url=f"{platform.url}/register", **settings))


async def test_register_comes_first_then_the_dictionary_versions_and_enterprise(platform: Platform, site: Site) -> None:
    up = uplink(platform, site)
    await up.tick(T0)
    assert [e.operation for e in up.events] == [
        "Register",
        "DownloadBaseData",
        "VersionCheck",
        "UploadConfigData",
        "UploadMeteringData",
    ]
    assert all(e.outcome == "ok" for e in up.events)
    stats = platform.stats()
    assert stats["registrations"] == 1 and stats["enterprises"] == 1 and stats["meters"] == len(site.points)
    await up.tick(T0 + timedelta(minutes=1))
    assert len(up.events) == 5  # nothing more is due
    await up.aclose()


async def test_samples_become_quarter_hour_and_daily_values(platform: Platform, site: Site) -> None:
    up = uplink(platform, site)
    a, b = site.points[1].code, site.points[2].code
    await up.tick(T0)
    for minute in range(0, 24 * 60):  # a whole day: 1 kWh a minute on a, 2 on b
        at = T0 + timedelta(minutes=minute)
        up.record(at, a, 1.0)
        up.record(at, b, 2.0)
        if minute % 15 == 14:
            await up.tick(at + timedelta(minutes=2))
    assert await up.finish(T0 + timedelta(days=1))
    values = platform.store.values()
    quarters = {k: v for k, v in values.items() if k[1] == 0}
    assert len([k for k in quarters if k[0] == a]) == 96
    assert all(v == (15.0, 1) for k, v in quarters.items() if k[0] == a)
    assert all(v == (30.0, 1) for k, v in quarters.items() if k[0] == b)
    assert all(v == (45.0, 1) for k, v in quarters.items() if k[0] == site.total.code)
    assert values[(a, 1, "2026-11-23 00:00:00")] == (1440.0, 1)
    assert values[(site.total.code, 1, "2026-11-23 00:00:00")] == (4320.0, 1)
    assert quarters[(a, 0, "2026-11-23 23:45:00")] == (15.0, 1)
    downloaded = await up.download_energy(T0 + timedelta(days=1), 1, "2026-11-23")
    assert {d["dataCode"]: d["dataValue"] for d in downloaded} == {a: 1440.0, b: 2880.0, site.total.code: 4320.0}
    config = await up.download_config(T0 + timedelta(days=1))
    assert config["enterprise"]["code"] == site.enterprise_code and len(config["collectItemConfig"]) == 2 * len(
        site.points
    )
    await up.aclose()


async def test_the_version_is_checked_daily_and_a_new_one_acted_on(platform: Platform, site: Site) -> None:
    up = uplink(platform, site)
    for hour in range(0, 49):
        await up.tick(T0 + timedelta(hours=hour))
    checks = [e for e in up.events if e.operation == "VersionCheck"]
    assert [c.at for c in checks] == ["2026-11-23 00:00:00", "2026-11-24 00:00:00", "2026-11-25 00:00:00"]
    platform.dic_version = "2"
    await up.tick(T0 + timedelta(days=3))
    assert [e.operation for e in up.events][-2:] == ["VersionCheck", "DownloadBaseData"]
    platform.reg_version = "2"
    await up.tick(T0 + timedelta(days=4))
    assert [e.operation for e in up.events][-6:] == [
        "VersionCheck",
        "Register",
        "DownloadBaseData",
        "VersionCheck",
        "UploadConfigData",
        "UploadMeteringData",
    ]
    assert platform.stats()["registrations"] == 2
    await up.aclose()


async def test_a_platform_that_forgot_us_gets_a_new_registration(platform: Platform, site: Site) -> None:
    up = uplink(platform, site)
    await up.tick(T0)
    up.record(T0, site.points[1].code, 5.0)
    platform.store.forget_registrations()
    await up.tick(T0 + timedelta(minutes=16))  # the upload is answered E2002: provinceId unknown (EN-20)
    assert [(e.operation, e.outcome) for e in up.events][-2:] == [
        ("UploadEnergyData", "E2002"),
        ("UploadEnergyData", "queued"),
    ]
    assert up.store.counts()["queued"] == 2  # the point's and the total's quarter hour: kept, not rejected
    await up.tick(T0 + timedelta(minutes=17))  # registers again and sends it at once
    assert up.store.counts()["queued"] == 0 and up.stats.rejected == 0
    assert platform.store.values()[(site.points[1].code, 0, "2026-11-23 00:00:00")] == (5.0, 1)
    await up.aclose()


@pytest.mark.parametrize("code", ["E1001", "E1002"])
async def test_a_platform_failure_is_resent_until_acknowledged(platform: Platform, site: Site, code: str) -> None:
    up = uplink(platform, site)
    await up.tick(T0)
    up.record(T0, site.points[1].code, 1.0)
    platform.faults.add("UploadEnergyData", code=code, count=2)
    assert await up.upload(T0 + timedelta(minutes=16))
    tries = [e.outcome for e in up.events if e.operation == "UploadEnergyData"]
    assert tries == [code, code, "ok"] and up.stats.resends == 2
    assert up.store.batch(1)["attempts"] == 2 and up.store.batch(1)["state"] == "acked"
    await up.aclose()


@pytest.mark.parametrize("code", ["E2001", "E2002"])
async def test_a_malformed_batch_answer_is_not_resent(platform: Platform, site: Site, code: str) -> None:
    up = uplink(platform, site)
    await up.tick(T0)
    up.record(T0, site.points[1].code, 1.0)
    platform.faults.add("UploadEnergyData", code=code, count=1)
    assert not await up.upload(T0 + timedelta(minutes=16))
    assert [e.outcome for e in up.events if e.operation == "UploadEnergyData"] == [code, "rejected"]
    assert up.store.counts()["rejected"] == 2 and up.store.counts()["queued"] == 0 and up.stats.resends == 0
    up.record(T0 + timedelta(minutes=20), site.points[1].code, 1.0)
    assert await up.upload(T0 + timedelta(minutes=31))  # the queue goes on without it
    await up.aclose()


async def test_registration_failures_are_retried_later(platform: Platform, site: Site) -> None:
    up = uplink(platform, site, duty_retry_s=300.0)
    platform.faults.add("Register", code="E1001", count=1)
    await up.tick(T0)
    await up.tick(T0 + timedelta(minutes=1))  # quiet: not hammering a failing platform
    assert [e.outcome for e in up.events] == ["E1001"]
    await up.tick(T0 + timedelta(minutes=5))
    assert [e.operation for e in up.events][1:3] == ["Register", "DownloadBaseData"]
    await up.aclose()


async def test_samples_are_checked_and_late_ones_counted(platform: Platform, site: Site) -> None:
    up = uplink(platform, site)
    with pytest.raises(ConfigError, match="not one of the site"):
        up.record(T0, "99-99-00-00-023300-11", 1.0)
    with pytest.raises(ConfigError, match=">= 0 kWh"):
        up.record(T0, site.points[1].code, -1.0)
    await up.tick(T0)
    up.record(T0, site.points[1].code, 1.0)
    await up.upload(T0 + timedelta(minutes=16))
    up.record(T0 + timedelta(minutes=3), site.points[1].code, 1.0)  # its quarter hour is closed and sent
    up.flush_samples()
    assert up.store.late_samples == 2  # the point's and the total's quarter hour
    await up.aclose()
