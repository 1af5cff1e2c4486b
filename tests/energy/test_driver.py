"""The standalone driver: consumption from a line's stations, virtual time at --speed, and the two commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from twin.energy.consumption import ConsumptionModel
from twin.energy.driver import run_uplink
from twin.energy.platform import Platform
from twin.energy.site import Site
from twin.energy.uplink import UplinkConfig


def test_consumption_is_seeded_and_near_its_long_run_mean(site: Site) -> None:
    start = datetime(2026, 11, 23)
    a, b = ConsumptionModel(site, seed=4), ConsumptionModel(site, seed=4)
    day_a = [a.step(start + timedelta(minutes=m), 60) for m in range(1440)]
    day_b = [b.step(start + timedelta(minutes=m), 60) for m in range(1440)]
    assert day_a == day_b
    kwh = sum(k for minute in day_a for _, k in minute)
    assert 0.85 < kwh / (a.mean_kw() * 24) < 1.15
    coating = np.array([dict(minute)[site.points[1].code] for minute in day_a]) * 60  # kW
    run, idle, _ = site.points[1].power_kw
    assert coating.max() > run and coating.min() < 2 * idle  # both coaters run at times, and stop at times
    dry = np.array([dict(minute)[next(p.code for p in site.points if p.source == "dry-rooms")] for minute in day_a])
    assert dry[15 * 60] > dry[3 * 60]  # the dry rooms work harder in the afternoon


async def test_a_run_at_speed_uploads_everything_that_ended(platform: Platform, site: Site) -> None:
    config = UplinkConfig(
        register_url=f"{platform.url}/register", upload_every_s=3600, upload_offset_s=0, retry_pause_s=0
    )
    run = await run_uplink(site, config, duration_s=3 * 3600, speed=1e6, start=datetime(2026, 11, 23, 22, 0), seed=2)
    s = run.summary()
    assert s["virtual_end"] == "2026-11-24 01:00:00"
    # 12 quarter hours and one day (the 23rd) per point; the 24th is still open
    assert s["values"]["acked"] == len(site.points) * 13 and s["values"]["open"] == len(site.points)
    stored = platform.store.values()
    day = stored[(site.total.code, 1, "2026-11-23 00:00:00")][0]
    quarters = sum(
        v for (code, t, d), (v, _) in stored.items() if code == site.total.code and t == 0 and d < "2026-11-24"
    )
    assert day == pytest.approx(quarters, rel=1e-6)  # a day sums its quarter hours (of the hours it ran)
    assert s["kwh_total"] == pytest.approx(
        day
        + sum(v for (code, t, d), (v, _) in stored.items() if code == site.total.code and t == 0 and d >= "2026-11-24"),
        rel=1e-4,
    )
    run.uplink.store.close()


def test_the_commands_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    serve = subprocess.Popen(
        [str(Path(sys.executable).parent / "twin"), "energy", "serve", "--port", "0", "--duration-s", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout is not None
        found = re.search(r"register at (\S+)\)", serve.stdout.readline())
        assert found
        summary = tmp_path / "summary.json"
        from twin.cli import main

        monkeypatch.setattr(
            "sys.argv",
            [
                "twin",
                "energy",
                "upload",
                "--line",
                "line-A02",
                "--url",
                found.group(1),
                "--duration",
                "2h",
                "--speed",
                "100000",
                "--start",
                "2026-11-23 08:00",
                "--upload-every",
                "1h",
                "--upload-offset",
                "0",
                "--json",
                str(summary),
            ],
        )
        with pytest.raises(SystemExit) as info:
            main()
            raise SystemExit(0)
        out = capsys.readouterr().out
        assert info.value.code == 0, out
        data = json.loads(summary.read_text())
        points = int(re.search(r"(\d+) data codes", out).group(1))  # type: ignore[union-attr]
        assert data["values"]["acked"] == points * 8 and data["values"]["queued"] == 0  # 8 quarter hours each
        assert "UploadEnergyData   ok" in out and "Register" in out
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        if serve.stdout is not None:
            serve.stdout.close()


def test_an_unreachable_platform_fails_the_command(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from twin.cli import main

    monkeypatch.setattr(
        "sys.argv",
        [
            "twin",
            "energy",
            "upload",
            "--line",
            "line-A02",
            "--url",
            "http://127.0.0.1:9/register",
            "--duration",
            "30m",
            "--speed",
            "100000",
            "--start",
            "2026-11-23 08:00",
            "--retry-pause-s",
            "0",
            "--quiet",
        ],
    )
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert "values not acknowledged" in err and "never sent" in err
