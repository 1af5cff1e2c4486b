"""The loop every command runs on (twin.aio): uvloop unless asked otherwise, and fewer young collections."""

from __future__ import annotations

import asyncio
import gc

import pytest

from twin import aio


def test_run_uses_uvloop_unless_twin_loop_asks_for_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    async def loop_type() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert aio.run(loop_type()).startswith("uvloop")
    assert aio.loop_name() == "uvloop"
    monkeypatch.setenv(aio.ENV, "asyncio")
    assert aio.run(loop_type()).startswith("asyncio")
    assert aio.loop_name() == "asyncio"


def test_a_run_collects_the_young_generation_less_often_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()

    async def threshold() -> tuple[int, int, int]:
        return gc.get_threshold()

    inside = aio.run(threshold())
    assert inside[0] >= aio.YOUNG_COLLECTION_AT > before[0]
    assert inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_the_thresholds_come_back_when_the_run_fails() -> None:
    before = gc.get_threshold()

    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        aio.run(fail())
    assert gc.get_threshold() == before


def test_a_process_of_its_own_keeps_collecting_less() -> None:
    before = gc.get_threshold()
    try:
        assert aio.collect_less() == before
        assert gc.get_threshold()[0] == aio.YOUNG_COLLECTION_AT
    finally:
        gc.set_threshold(*before)
