"""What every virtual host does about its link to the MES: order, token, offline mode, history re-upload.

The spec asks hosts to keep working when the MES is gone (1.5.8 "MES offline function") and to upload
their history when it returns (1.5.9). The twin's hosts do it this way, and the README says so:

* **Order** (DESIGN decision 9). Per equipment, states and alarms (2.3, 2.4) share one lane and every other
  *record* has a lane per interface: a record leaves only after the one made before it in its lane was
  answered or kept for re-upload, so two reports made in one instant never arrive swapped. Lanes of
  different equipment never wait for each other.
* **Token.** Nothing but the login (2.1) leaves without the Authorization its equipment got there (or the
  fixed value of spec 1.5.3). A record made before its equipment is logged in is kept in the outbox and
  counted (``held_for_login``); a call whose answer the host needs waits for the login; a heartbeat is not
  sent. The model's hosts retry a login that got no answer with jittered back-off.
* A call that gets no answer (connection refused, reset, timeout) puts the link **offline**.
* While offline, a record (the profile's response has no ``data``, e.g. inbound, outbound, state, alarm,
  parameters) is appended to the durable outbox (SQLite) and the host goes on as if accepted. A call whose
  answer the host needs (login, barcodes, recipes, sorting grades...) waits for the MES: the equipment
  waits with it, as a real one would. Heartbeats are not history: a failed one is just failed (that is the
  host's heartbeat state going offline), and heartbeats keep probing the MES.
* Any answer puts the link back **online** and starts the **drain**: the backlog is re-uploaded in the
  order it was made (a record whose send timed out keeps its place at the head, ahead of newer ones queued
  meanwhile), one item at a time (an inbound at one station must reach the MES after the outbound of the
  station before it), and new records queue behind it until it is empty. An item leaves the outbox only
  once the MES answered it, so nothing is lost. A refused connection never makes a duplicate; a request
  that timed out (or was cut after it was sent) may have been processed, so it is resent and counted as a
  *possible duplicate* (the spec has no idempotency key that would let a host know).
* An HTTP 401 (token refused) makes the host log in again (2.1) and resend once with the new token.

Re-uploaded items keep the time they were made as their intended time (DESIGN decision 2: what the line
felt), so their latency includes the offline wait and the log shows the backlog and its drain; they count as
late starts. Their age (made -> acknowledged) is also reported per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twin.aio import loop_time
from twin.metrics.exchange import NO_ANSWER
from twin.profile import Operation, Profile
from twin.profile.calls import Answer, Call
from twin.profile.casing import lower_keys
from twin.transport.http import MesClient, Reply
from twin.transport.lanes import Lanes
from twin.transport.outbox import Outbox, Owed

QUEUED_MSG = "accepted offline: queued for re-upload (spec 1.5.8)"
HELD_MSG = "kept for upload once the equipment is logged in (2.1)"
NOT_HISTORY = frozenset({"Heartbeat", "OperatorLogin", "TimeSynch"})
STATUS_REPORTS = frozenset({"State", "Alarm"})  # one lane per equipment: the MES reads them as one story
MAYBE_PROCESSED = frozenset({"timeout", "reset"})  # the request may have reached the MES before it failed


def lane_of(equipment: str, operation_id: str) -> tuple[str, str]:
    """The lane a record keeps its order in."""
    return equipment, "status" if operation_id in STATUS_REPORTS else operation_id


def is_record(op: Operation) -> bool:
    """A call the host may queue while offline: its answer has no ``data`` the host needs."""
    if op.operation_id in NOT_HISTORY or op.direction != "client-to-server":
        return False
    schema = op.response_schemas.get("200") or {}
    props = lower_keys(schema.get("properties") or {})
    data = props.get("data")
    return data is None or (data.get("type") in (None, "null") and not data.get("anyOf"))


@dataclass
class Outage:
    """One period without the MES, as the hosts lived it."""

    started: float  # epoch seconds of the first unanswered call
    reason: str
    ended: float | None = None  # first answer again
    drained: float | None = None  # backlog empty again
    queued: int = 0
    resent: int = 0
    max_backlog: int = 0
    oldest_age_s: float = 0.0  # longest made -> acknowledged of a queued record
    waiting_calls: int = 0  # calls that had to wait for the MES (answers the hosts needed)

    def to_dict(self) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None

        return {
            "started": iso(self.started),
            "ended": iso(self.ended),
            "drained": iso(self.drained),
            "offline_s": round((self.ended or time.time()) - self.started, 3),
            "drain_s": round(self.drained - self.ended, 3) if self.drained and self.ended else None,
            "reason": self.reason,
            "queued": self.queued,
            "resent": self.resent,
            "max_backlog": self.max_backlog,
            "oldest_age_s": round(self.oldest_age_s, 3),
            "waiting_calls": self.waiting_calls,
        }


@dataclass
class LinkStats:
    """What the link did beyond plain calls; ``queued == resent + backlog_now`` always holds."""

    relogins: int = 0
    outages: list[Outage] = field(default_factory=list)
    queued: int = 0  # records kept in the outbox (offline, behind a drain, or before a login)
    resent: int = 0  # of those, re-uploaded and answered
    held_for_login: int = 0  # records kept because their equipment had no token yet
    possible_duplicates: int = 0  # resent records whose first send may have been processed (timeout, reset)
    unsent_no_token: int = 0  # heartbeats not sent because their equipment had no token yet

    def to_dict(self, backlog: int) -> dict[str, Any]:
        return {
            "relogins": self.relogins,
            "backlog_now": backlog,
            "queued": self.queued,
            "resent": self.resent,
            "held_for_login": self.held_for_login,
            "possible_duplicates": self.possible_duplicates,
            "unsent_no_token": self.unsent_no_token,
            "outages": [o.to_dict() for o in self.outages],
        }


class HostLink:
    """The transport of a networked run (``twin.profile.calls.Transport``), with the hosts' link rules."""

    def __init__(
        self,
        client: MesClient,
        profile: Profile,
        outbox: Outbox,
        *,
        credentials: dict[str, str],
        retry_s: float = 1.0,
    ) -> None:
        self.client = client
        self.profile = profile
        self.outbox = outbox
        self.credentials = credentials
        self.retry_s = retry_s
        self.tokens: dict[str, str] = {}  # equipment code -> the newest token it got from 2.1
        self.static_token: str | None = None  # a fixed Authorization value (spec 1.5.3), if the MES wants one
        self.stats = LinkStats()
        self.online = True
        self.lanes = Lanes()
        self._back = asyncio.Event()
        self._back.set()
        self._logged_in: dict[str, asyncio.Event] = {}
        self._drain: asyncio.Task[None] | None = None
        self._records = {op.operation_id: is_record(op) for op in profile}
        self._login = profile.operation("OperatorLogin") if "OperatorLogin" in self._records else None
        self._seq = outbox.last_seq()
        self._owed_in: dict[int, Outage | None] = {}  # outbox id -> the outage it was kept in
        self._maybe_sent: set[int] = set()  # outbox ids whose first send may have been processed
        self._last_answer = 0.0  # wall time of the latest answer: a call sent before it failing is no outage
        # Sees every exchange with its body and token (the run's self-check of its own traffic): op, body,
        # equipment, token, reply.
        self.observe: Callable[[Operation, dict[str, Any], str, str | None, Reply], None] | None = None

    @property
    def draining(self) -> bool:
        return self._drain is not None and not self._drain.done()

    @property
    def outage(self) -> Outage | None:
        return self.stats.outages[-1] if self.stats.outages else None

    # -- the Transport seam -------------------------------------------------------------------------
    async def exchange(self, call: Call) -> Answer:
        op_id = call.op.operation_id
        if not self._records.get(op_id, False):
            return await self._ask(call)
        self._seq += 1
        seq = self._seq  # its place in the order the host made its records, taken before any wait
        key = lane_of(call.equipment_code, op_id)
        await self.lanes.enter(key)
        try:
            return await self._report(call, seq)
        finally:
            self.lanes.leave(key)

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)

    # -- records and questions ----------------------------------------------------------------------
    async def _report(self, call: Call, seq: int) -> Answer:
        """A record, in its turn: sent, or kept in the outbox when it cannot be sent now."""
        if not self.online or self.draining:
            return self._queue(call, seq)
        token = self._token(call.equipment_code, call.token)
        if token is None and self._needs_token(call.op):
            self.stats.held_for_login += 1
            answer = self._queue(call, seq, HELD_MSG)
            self._start_drain()
            return answer
        deadline = asyncio.get_running_loop().time() + self.client.timeout_s
        intended = _intended_epoch(call)
        reply = await self._send(call.op, call.body, call.equipment_code, token, call.virtual_s, intended, deadline)
        if reply.status != NO_ANSWER:
            self._answered()
            return _answer(reply)
        self._unreachable(reply.error, reply.exchange.sent_wall)
        answer = self._queue(call, seq, maybe_sent=reply.error in MAYBE_PROCESSED, sent=reply.exchange.sent_wall)
        if self.online:
            self._start_drain()  # a straggler kept while the link is up: re-uploaded now, in its turn
        return answer

    async def _ask(self, call: Call) -> Answer:
        """A call whose answer the host needs (or a heartbeat): sent when it can be, never queued."""
        op = call.op
        intended = _intended_epoch(call)
        while True:
            token = self._token(call.equipment_code, call.token)
            if token is None and self._needs_token(op):
                if op.operation_id == "Heartbeat":
                    self.stats.unsent_no_token += 1
                    return Answer(0, None, "not sent: not logged in", error="no-token")
                await self._wait_login(call.equipment_code)
                continue
            deadline = asyncio.get_running_loop().time() + self.client.timeout_s
            reply = await self._send(op, call.body, call.equipment_code, token, call.virtual_s, intended, deadline)
            if reply.status != NO_ANSWER:
                self._answered()
                return _answer(reply)
            self._unreachable(reply.error, reply.exchange.sent_wall)
            if op.operation_id == "Heartbeat":
                return _answer(reply)
            outage = self.outage
            if outage is not None and not self.online:
                outage.waiting_calls += 1
            await self._wait_online()
            intended = None  # the retry leaves when the MES is back: its wait is in the outage figures

    # -- tokens ---------------------------------------------------------------------------------------
    def _token(self, equipment: str, model_token: str | None) -> str | None:
        return self.tokens.get(equipment) or model_token or self.static_token

    def _needs_token(self, op: Operation) -> bool:
        """Whether ``op`` may not leave without a token: the profile says so and the MES issues them (2.1)."""
        return op.needs_auth and self._login is not None and self.static_token is None and op is not self._login

    async def _wait_login(self, equipment: str) -> None:
        event = self._logged_in.setdefault(equipment, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.retry_s)
        _raise_if_cancelled()

    # -- sending, with a new login on 401 -----------------------------------------------------------
    async def _send(
        self,
        op: Operation,
        body: dict[str, Any],
        equipment: str,
        token: str | None,
        virtual_s: float,
        intended: float | None,
        deadline: float | None = None,
    ) -> Reply:
        reply = await self.client.call(
            op,
            body,
            equipment=equipment,
            token=token,
            intended_virtual_s=virtual_s,
            intended_wall=intended,
            deadline=deadline,
        )
        if self.observe is not None:
            self.observe(op, body, equipment, token, reply)
        if op.operation_id == "OperatorLogin":
            self._remember(equipment, reply)
        elif reply.status == 401 and self._login is not None:
            new = await self._relogin(equipment, virtual_s)
            if new is not None:
                reply = await self.client.call(op, body, equipment=equipment, token=new, intended_virtual_s=virtual_s)
                if self.observe is not None:
                    self.observe(op, body, equipment, new, reply)
        return reply

    async def _relogin(self, equipment: str, virtual_s: float) -> str | None:
        assert self._login is not None
        self.stats.relogins += 1
        values = {"OperatorUserID": self.credentials["user"], "OperatorPassword": self.credentials["password"]}
        context = {"now": datetime.now(UTC), "equipment_code": equipment, "resource_code": f"R-{equipment}"}
        body = self.profile.build_request(self._login, values, context=context)
        reply = await self.client.call(self._login, body, equipment=equipment, intended_virtual_s=virtual_s)
        if self.observe is not None:
            self.observe(self._login, body, equipment, None, reply)
        return self._remember(equipment, reply)

    def _remember(self, equipment: str, reply: Reply) -> str | None:
        data = reply.data if reply.ok else None
        if isinstance(data, dict):
            token = lower_keys(data).get("authorization")
            if token:
                self.tokens[equipment] = str(token)
                self._logged_in.setdefault(equipment, asyncio.Event()).set()
                return str(token)
        return None

    # -- offline and back -----------------------------------------------------------------------------
    def _unreachable(self, reason: str, sent: float | None = None) -> None:
        """A call sent at ``sent`` got no answer: the link is offline, from that send on, unless the MES has
        answered since the call left. Such a straggler (a hang's held requests cut as it ends, a slow call timing
        out while others are answered) says nothing of the link now: counting it made 0 s outages."""
        if sent is not None and sent < self._last_answer:
            return
        if self.online:
            self.online = False
            self._back.clear()
            started = min(sent, time.time()) if sent is not None else time.time()
            self.stats.outages.append(Outage(started=started, reason=reason or "no answer"))

    def _answered(self) -> None:
        self._last_answer = time.time()
        if not self.online:
            self.online = True
            outage = self.outage
            if outage is not None:
                outage.ended = time.time()
            self._back.set()
            self._start_drain()

    def _start_drain(self) -> None:
        if not self.draining:
            self._drain = asyncio.get_running_loop().create_task(self._drain_backlog())

    async def _wait_online(self) -> None:
        """Wait for the MES; every ``retry_s`` the caller tries again itself (a probe of its own)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._back.wait(), self.retry_s)
        _raise_if_cancelled()

    def _queue(
        self, call: Call, seq: int, msg: str = QUEUED_MSG, *, maybe_sent: bool = False, sent: float | None = None
    ) -> Answer:
        made = _intended_epoch(call) or time.time()
        item = self.outbox.append(
            call.equipment_code, call.op.operation_id, call.body, virtual_s=call.virtual_s, wall=made, seq=seq
        )
        self.stats.queued += 1
        outage = self.outage if not self.online or self.draining else None
        last = self.outage
        if outage is None and sent is not None and last is not None and last.started <= sent < (last.ended or 0):
            outage = last  # sent during that outage, cut after it ended: its record counts there
        self._owed_in[item] = outage
        if maybe_sent:
            self._maybe_sent.add(item)
        if outage is not None:
            outage.queued += 1
            outage.max_backlog = max(outage.max_backlog, self.outbox.appended - self.outbox.acked)
        now = time.time()
        return Answer(200, 0, msg, None, sent_wall=now, answered_wall=now)

    async def _drain_backlog(self) -> None:
        """Re-upload what the hosts owe, in the order it was made, one at a time; stop if the MES goes away."""
        outage = self.outage
        while self.online:
            item = self.outbox.oldest()
            if item is None:
                if outage is not None and outage.drained is None:
                    outage.drained = time.time()
                return
            token = self._token(item.equipment, None)
            op = self.profile.operation(item.operation)
            if token is None and self._needs_token(op):
                await self._wait_login(item.equipment)  # its login comes from its host, with back-off
                continue
            if not await self._resend(item, op, token) and not self.online:
                return  # (a straggler left the link up: the item is tried again)

    async def _resend(self, item: Owed, op: Operation, token: str | None) -> bool:
        """One owed record, in its lane's turn; False if the MES went away again."""
        key = lane_of(item.equipment, item.operation)
        await self.lanes.enter(key)
        try:
            deadline = asyncio.get_running_loop().time() + self.client.timeout_s
            reply = await self._send(op, item.body, item.equipment, token, item.virtual_s, item.queued_wall, deadline)
        finally:
            self.lanes.leave(key)
        if reply.status == NO_ANSWER:
            if reply.error in MAYBE_PROCESSED:
                self._maybe_sent.add(item.id)
            self._unreachable(reply.error, reply.exchange.sent_wall)
            return False
        self.outbox.ack(item)
        self.stats.resent += 1
        if item.id in self._maybe_sent:
            self._maybe_sent.discard(item.id)
            self.stats.possible_duplicates += 1
        kept_in = self._owed_in.pop(item.id, None)
        if kept_in is not None:
            kept_in.resent += 1
            kept_in.oldest_age_s = max(kept_in.oldest_age_s, time.time() - item.queued_wall)
        return True


def _raise_if_cancelled() -> None:
    """``asyncio.wait_for`` (Python 3.11) can swallow a cancel that comes with its timeout: a call waiting for an
    MES that never answers would then retry for ever, and the run could never end (its calls are cancelled)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _intended_epoch(call: Call) -> float | None:
    """The model's intended wall time (the bridge's clock) as epoch seconds, as the exchange log keeps it."""
    if call.wall_s is None:
        return None
    return time.time() - (loop_time() - call.wall_s)


def _answer(reply: Reply) -> Answer:
    ex = reply.exchange
    return Answer(
        reply.status,
        reply.code if isinstance(reply.code, int) else None,
        reply.msg,
        reply.data,
        sent_wall=ex.sent_wall,
        answered_wall=ex.answered_wall,
        error=reply.error or None,
    )
