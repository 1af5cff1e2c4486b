"""The run's self-check runs in a process of its own: every exchange reaches the rules, in order, and a checker
that dies or falls behind is said, never taken for a clean run."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import orjson
import pytest

from twin.metrics.exchange import NO_ANSWER, Exchange
from twin.profile import Profile
from twin.run import checker as module
from twin.run.checker import CheckerProcess
from twin.run.selfcheck import SelfCheck
from twin.transport.http import Reply

START = 1_790_000_000.0
OK = orjson.dumps({"code": 0, "msg": "Success", "data": None})


def call(mes: Profile, operation: str, equipment: str, t: float, values: dict[str, Any] | None = None) -> tuple:
    """(op, body, equipment, token, reply) as the host link hands them to ``observe``, answered OK."""
    op = mes.operation(operation)
    base = {"EquipmentCode": equipment, "ResourceCode": f"R-{equipment}", "LocalTime": "2026-12-06 08:00:00"}
    body = mes.build_request(op, base | (values or {}))
    request = orjson.dumps(body)
    ex = Exchange(op.operation_id, equipment, t, START + t, START + t, START + t + 0.001, 200, 0, len(request), 10)
    return op, body, equipment, "Bearer t", Reply(200, 0, "Success", None, True, "", ex, request, OK)


@pytest.fixture
def checker(mes: Profile) -> Any:
    found = CheckerProcess.for_run(mes, {"EQ-1": "winding"}, lambda v: START + v, lambda wall: wall - START)
    assert found is not None
    yield found
    found.close()


def test_every_exchange_reaches_the_rules_in_the_checker_process(mes: Profile, checker: CheckerProcess) -> None:
    checker.observe(*call(mes, "OperatorLogin", "EQ-1", 0.0, {"OperatorUserID": "u", "OperatorPassword": "p"}))
    for i in range(1, 1001):
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    summary = checker.summary()
    assert summary["exchanges_checked"] == 1001
    assert summary["violations"] == 0, summary["examples"]
    assert summary["not_checked"] == 0 and "error" not in summary
    assert checker.process.pid != os.getpid()


def test_a_broken_rule_is_found_by_the_checker(mes: Profile, checker: CheckerProcess) -> None:
    for i in range(5):  # heartbeats with no login before them: the login-first rule
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    summary = checker.summary()
    assert summary["violations"] >= 1
    assert "login-first" in summary["by_rule"]


def test_an_unanswered_call_is_checked_as_unanswered(mes: Profile, checker: CheckerProcess) -> None:
    op, body, equipment, token, _ = call(mes, "Heartbeat", "EQ-1", 10.0)
    ex = Exchange(op.operation_id, equipment, 10.0, START + 10, START + 10, START + 15, NO_ANSWER, None, 10, 0, "reset")
    checker.observe(op, body, equipment, token, Reply(NO_ANSWER, None, "", None, False, "reset", ex))
    assert checker.summary()["exchanges_checked"] == 1


def test_a_checker_that_died_is_said_and_its_exchanges_counted(mes: Profile, checker: CheckerProcess) -> None:
    for i in range(10):
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    checker.drain()
    os.kill(checker.process.pid, signal.SIGKILL)
    checker.process.wait(timeout=10)
    for i in range(10, 20):
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    summary = checker.summary()
    assert "error" in summary and "self-check process ended" in summary["error"]
    assert summary["not_checked"] >= 10


def test_a_checker_far_behind_says_how_many_it_did_not_check(
    mes: Profile, checker: CheckerProcess, monkeypatch: Any
) -> None:
    monkeypatch.setattr(module, "MAX_QUEUED", 0)  # no room at all: nothing may be handed over
    for i in range(module.BATCH):
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    summary = checker.summary()
    assert summary["not_checked"] == module.BATCH
    assert summary["exchanges_checked"] == 0


def test_the_rules_read_each_hosts_exchanges_in_time_order(mes: Profile) -> None:
    """Answers come back in their own order: two heartbeats recorded the other way round are no violation."""
    check = SelfCheck(mes, {"EQ-1": "winding"})
    for t in (0.0, 20.0, 10.0, 30.0):  # 20 s before 10 s
        op, body, equipment, token, _ = call(mes, "Heartbeat", "EQ-1", t)
        check.record(op, body, equipment, token, 200, 0, "Success", None, "", START + t, START + t + 0.001)
    summary = check.summary()
    assert summary["exchanges_checked"] == 4
    assert "heartbeat-period" not in summary["by_rule"]


def test_summary_waits_for_a_checker_still_busy(mes: Profile, checker: CheckerProcess) -> None:
    t0 = time.monotonic()
    for i in range(20 * module.BATCH):
        checker.observe(*call(mes, "Heartbeat", "EQ-1", 10.0 * i))
    assert checker.summary()["exchanges_checked"] == 20 * module.BATCH
    assert time.monotonic() - t0 < module.SUMMARY_TIMEOUT_S


def test_the_end_of_a_run_says_what_the_self_check_found_and_what_it_could_not() -> None:
    from twin.run.live import conformance_line

    clean = conformance_line({"violations": 0, "exchanges_checked": 1200})
    assert clean == "self-check: 0 violations in 1,200 exchanges"
    said = conformance_line({"violations": 0, "exchanges_checked": 10, "not_checked": 300, "error": "it died"})
    assert said is not None and "300 NOT CHECKED" in said and "THE SELF-CHECK FAILED: it died" in said
    assert conformance_line(None) is None
