"""HTTPS between the uplink and the platform, as section 6 and 8.1 ask (EN-3), with a throw-away certificate."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from twin.energy.platform import Platform, server_tls
from twin.energy.site import Site
from twin.energy.store import UplinkStore
from twin.energy.uplink import EnergyUplink, UplinkConfig

T0 = datetime(2026, 11, 23, 0, 0)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_the_uplink_talks_https_to_a_platform_it_trusts(certificate: tuple[Path, Path], site: Site) -> None:
    cert, key = certificate
    platform = Platform(ssl_context=server_tls(cert, key))
    await platform.start("127.0.0.1", 0)
    assert platform.url.startswith("https://")
    try:
        trusting = EnergyUplink(site, UplinkStore(), UplinkConfig(f"{platform.url}/register", ca_file=str(cert)))
        await trusting.tick(T0)
        assert [e.outcome for e in trusting.events][:2] == ["ok", "ok"]
        await trusting.aclose()
        wary = EnergyUplink(site, UplinkStore(), UplinkConfig(f"{platform.url}/register"))
        await wary.tick(T0)
        assert wary.events[0].outcome == "unavailable" and "certificate" in wary.events[0].detail.lower()
        await wary.aclose()
    finally:
        await platform.stop()
