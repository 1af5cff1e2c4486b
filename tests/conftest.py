"""Shared fixtures: small and obvious."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.profile import Profile, load_profile

ROOT = Path(__file__).resolve().parent.parent
MES_PROFILE = ROOT / "profiles" / "qingke-mes-v1.openapi.yaml"
TINY_PROFILE = Path(__file__).resolve().parent / "data" / "tiny.openapi.yaml"


@pytest.fixture(scope="session")
def mes() -> Profile:
    return load_profile(MES_PROFILE)


@pytest.fixture(scope="session")
def tiny() -> Profile:
    return load_profile(TINY_PROFILE)
