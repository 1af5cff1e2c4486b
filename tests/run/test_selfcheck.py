"""The run's self-check is fed off the sending path: noted at once, fed when idle, bounded, every exchange seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twin.metrics.exchange import Exchange
from twin.profile import Profile
from twin.run import selfcheck as module
from twin.run.selfcheck import SelfCheck

START = 1_790_000_000.0


@dataclass
class Reply:
    exchange: Exchange
    status: int = 200
    code: int | None = 0
    msg: str = "Success"
    data: Any = None
    error: str = ""


def heartbeat(mes: Profile, equipment: str, t: float) -> tuple[Any, dict[str, Any], str, str, Reply]:
    op = mes.operation("Heartbeat")
    body = mes.build_request(op, {"EquipmentCode": equipment, "ResourceCode": f"R-{equipment}", "LocalTime": "x"})
    ex = Exchange("Heartbeat", equipment, t, START + t, START + t, START + t + 0.001, 200, 0, 10, 10)
    return op, body, equipment, "Bearer t", Reply(ex)


def check(mes: Profile) -> SelfCheck:
    found = SelfCheck.for_run(mes, {"EQ-1": "winding"}, lambda v: START + v, lambda wall: wall - START)
    assert found is not None
    return found


def test_exchanges_are_noted_and_fed_to_the_rules_when_idle_or_at_the_summary(mes: Profile) -> None:
    sc = check(mes)
    for i in range(10):
        sc.observe(*heartbeat(mes, "EQ-1", 10.0 * i))
    assert sc.conformance.exchanges == 0  # nothing fed on the sending path
    sc.drain(until=0.0)  # an idle moment already over: one batch at least, then it stops
    assert sc.fed_when_idle == 10
    summary = sc.summary()
    assert summary["exchanges_checked"] == 10 and summary["fed_when_idle"] == 10


def test_a_run_without_idle_moments_stays_bounded_and_still_feeds_every_exchange(
    mes: Profile, monkeypatch: Any
) -> None:
    monkeypatch.setattr(module, "MAX_PENDING", 50)
    sc = check(mes)
    for i in range(500):
        sc.observe(*heartbeat(mes, "EQ-1", 10.0 * i))
        assert len(sc._pending) <= 50 + 1
    assert sc.summary()["exchanges_checked"] == 500
    assert sc.fed_when_idle == 0
