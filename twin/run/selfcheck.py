"""The twin checks its own traffic: the validating proxy's conformance rules over every exchange of a run.

A load tool whose requests break the protocol measures the wrong thing, and an MES team will (rightly)
stop reading a report whose tool sent a state report before logging in. So every ``twin run`` feeds what its
hosts send to the same rules ``twin proxy`` holds real host PCs to (login first, heartbeat period, state
only on change, earliest alarm only, verification before production, inbound before outbound, tray
life-cycle, the token issued at login...), and the summary gives the violations by rule and interface:
for line-A02 against any MES the expected figure is 0.

Checking costs about a fifth of the CPU of a request (issue 14: 13-19 us of 60-75 per exchange, line-A02
against nginx), so it runs in a process of its own (``twin.run.checker``), which feeds this class every exchange,
in its host's time order; the request is only renamed to canonical field names for the rules, not validated
against its schema again (the rules never read schema issues, and the twin built it from this very profile).

The rules judge time as the line lives it: an exchange's time is the virtual time its host meant to send it
(a heartbeat every 10 virtual seconds is one every 10 s here, whatever the speed; how late the twin itself
sent it is the takt figures' business), converted to epoch seconds.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from typing import Any

from twin.hil.conformance import Conformance
from twin.hil.journal import HOST_TO_MES, Recorded, digest
from twin.profile import Operation, Profile

EXAMPLES_KEPT = 20
# Answers come back in their own order: at a high pace two heartbeats 10 virtual s apart may be answered the other
# way round. The rules read each host's exchanges in time order, so exchanges wait this long (virtual) before
# they are fed, sorted; a re-upload much older than that is fed when it comes, as the MES sees it.
REORDER_S = 120.0
_LABEL = re.compile(r"^(\d+\.\d+ \w+)")  # rule messages name the exchange first: "2.3 State ..."


class SelfCheck:
    """Feed it each exchange (``record``, times on the line's clock); ``summary()`` at the end."""

    def __init__(self, profile: Profile, processes: dict[str, str]) -> None:
        self.conformance = Conformance(profile, processes=processes)
        self._seq = 0
        self._digests: dict[str, str] = {}
        self._waiting: list[tuple[float, int, Recorded]] = []  # (time, seq, exchange), a heap
        self._latest = float("-inf")

    def record(
        self,
        op: Operation,
        body: dict[str, Any],
        equipment: str,
        token: str | None,
        status: int,
        code: Any,
        msg: str,
        data: Any,
        error: str,
        sent: float,
        answered: float,
    ) -> None:
        """One exchange whose times are already the line's (epoch seconds): held, then fed in time order."""
        self._seq += 1
        self._hold(
            Recorded(
                self._seq,
                HOST_TO_MES,
                op.path,
                op.operation_id,
                op.section or "",
                equipment,
                equipment,
                sent,
                sent,
                answered,
                status,
                code if isinstance(code, int) and not isinstance(code, bool) else None,
                body,
                {"code": code, "msg": msg, "data": data} if status else None,
                token=self._digest(token),
                error=error,
            )
        )

    def _hold(self, rec: Recorded) -> None:
        heapq.heappush(self._waiting, (rec.received, rec.seq, rec))
        self._latest = max(self._latest, rec.received)
        while self._waiting and self._waiting[0][0] < self._latest - REORDER_S:
            self.conformance.feed(heapq.heappop(self._waiting)[2], validate=False, report=False)

    def opening(self, equipment: str, cells: list[str], tray: str | None) -> None:
        """The opening WIP of a warm line: inside ``equipment`` before the run (see ``Simulation.opening``)."""
        self.conformance.opening(equipment, cells, tray)

    def _digest(self, token: str | None) -> str:
        if not token:
            return ""
        found = self._digests.get(token)
        if found is None:
            if len(self._digests) > 10_000:
                self._digests.clear()
            found = self._digests[token] = digest(token)
        return found

    def summary(self) -> dict[str, Any]:
        """Violations by rule and by interface, with the first few messages; ``hosts_failed`` of ``hosts``."""
        while self._waiting:
            self.conformance.feed(heapq.heappop(self._waiting)[2], validate=False, report=False)
        self.conformance.finish()
        by_rule: Counter[str] = Counter()
        by_interface: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        failed = 0
        for host in self.conformance.results():
            failed += host["verdict"] == "fail"
            for rule in host["rules"]:
                for v in rule["violations"]:
                    by_rule[rule["id"]] += v["count"]
                    label = _LABEL.match(v["message"])
                    by_interface[label[1] if label else f"({rule['id']})"] += v["count"]
                    if len(examples) < EXAMPLES_KEPT:
                        examples.append({"host": host["host"], "rule": rule["id"], "message": v["message"]})
        return {
            "exchanges_checked": self.conformance.exchanges,
            "violations": sum(by_rule.values()),
            "by_rule": dict(by_rule.most_common()),
            "by_interface": dict(by_interface.most_common()),
            "hosts": len(self.conformance.hosts),
            "hosts_failed": failed,
            "examples": examples,
        }
