"""The CT check workflow as a client runs it, against a real cloud or the twin's fleet.

Per inverter: action 1 and the spec's preconditions (read from the profile), action 2, then action 3 polled on a
fixed schedule until the check is done, with bit1/bit2/bit3 and the per-phase details decoded. Many inverters run
concurrently over one pooled aiohttp session, so the same code is a load test of the cloud API; every call's
service time and latency from its intended send time go to the HDR histograms of ``twin.metrics`` (the same
``Exchange`` records and ``LatencyBook`` as ``twin run``), and optionally to an exchange log.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson

from twin.ct.spec import RESULT_OP, START_OP, STATUS_OP, CtSpec, load_ct_spec
from twin.errors import TwinError
from twin.metrics import Exchange, ExchangeLog, LatencyBook
from twin.metrics.exchange import NO_ANSWER

OUTCOMES = ("normal", "wiring-error", "failed", "not-eligible", "refused", "error", "timeout")
MAX_POLL_ERRORS = 3
_PHASE_FIELDS = ("phaseFlag", "inverterSide", "smartSide", "sensorAns")


class CtCallFailed(TwinError):
    """One API call failed: no answer, an HTTP error, an answer that breaks the profile, or an error envelope."""

    def __init__(self, operation: str, reason: str, *, code: int | None = None) -> None:
        super().__init__(f"{operation}: errorCode {code}: {reason}" if code is not None else f"{operation}: {reason}")
        self.operation = operation
        self.code = code
        self.reason = reason


class CtCheckNotNormal(TwinError):
    """Some inverters did not come out normal (the CLI's failed-check exit, 1)."""


@dataclass(slots=True)
class InverterOutcome:
    """What the workflow found for one inverter."""

    sn: str
    outcome: str = "error"
    reason: str = ""
    joined: bool = False
    status: dict[str, Any] | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    undefined_polls: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class CheckReport:
    outcomes: list[InverterOutcome]
    latency: LatencyBook
    wall_s: float

    def counts(self) -> Counter[str]:
        return Counter(o.outcome for o in self.outcomes)

    def all_normal(self) -> bool:
        return all(o.outcome == "normal" for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "counts": dict(self.counts()),
            "latency": self.latency.summary(self.wall_s),
            "inverters": [o.to_dict() for o in self.outcomes],
        }


def phase_details(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-phase results, from meterCheckConfigVOS or, failing that, from the body itself (CT-7)."""
    vos = body.get("meterCheckConfigVOS")
    if isinstance(vos, list) and vos:
        return [dict(p) for p in vos if isinstance(p, dict)]
    if any(body.get(k) is not None for k in _PHASE_FIELDS):
        return [{k: body.get(k) for k in _PHASE_FIELDS}]
    return []


def describe_phases(phases: Sequence[dict[str, Any]], meanings: dict[str, str]) -> str:
    """One line naming each abnormal phase: ``A: CT measures B (CT on another phase (phase order))``."""
    parts = []
    for p in phases:
        if p.get("sensorAns") in (0, None) and str(p.get("phaseFlag")) in ("0", "None"):
            continue
        flag = str(p.get("phaseFlag"))
        side = p.get("smartSide")
        measured = f"CT measures {side}" if side not in (None, "") else "CT measures nothing"
        parts.append(
            f"{p.get('inverterSide', '?')}: {measured}, phaseFlag {flag} ({meanings.get(flag, 'unknown code')})"
        )
    return "; ".join(parts)


class CtClient:
    """One cloud endpoint, one token, one session; ``check(sn)`` runs the whole workflow for an inverter."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        spec: CtSpec | None = None,
        latency: LatencyBook | None = None,
        exchange_log: ExchangeLog | None = None,
        poll_s: float | None = None,
        timeout_s: float = 600.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.spec = spec or load_ct_spec()
        self.latency = latency or LatencyBook()
        self.exchange_log = exchange_log
        self.poll_s = self.spec.poll_s if poll_s is None else poll_s
        if self.poll_s <= 0 or timeout_s <= 0:
            raise ValueError(f"poll_s and timeout_s must be > 0, got {self.poll_s} and {timeout_s}")
        self.timeout_s = timeout_s
        self.request_timeout = aiohttp.ClientTimeout(total=request_timeout_s)

    async def call(self, op_id: str, *, sn: str, intended_s: float | None = None) -> Any:
        """One API call; returns the whole envelope (body, info) or raises ``CtCallFailed``."""
        op = self.spec.op(op_id)
        kwargs: dict[str, Any] = {"headers": {"Token": self.token}, "timeout": self.request_timeout}
        if op.method == "get":
            kwargs["params"] = {"sn": sn}
        else:
            kwargs["data"] = orjson.dumps({"deviceSn": sn})
            kwargs["headers"]["Content-Type"] = "application/json"
        sent = time.time()
        ex = Exchange(op_id, sn, 0.0, sent if intended_s is None else intended_s, sent, sent, NO_ANSWER, None, 0, 0)
        ok = False
        try:
            async with self.session.request(op.method.upper(), self.base_url + op.path, **kwargs) as resp:
                raw = await resp.read()
                ex.status, ex.bytes_in = resp.status, len(raw)
                if resp.status != 200:
                    raise CtCallFailed(op_id, f"HTTP {resp.status}")
            answer = _decode(op_id, raw)
            _, issues = op.check_response(answer)
            if issues:
                raise CtCallFailed(op_id, "answer breaks the profile: " + "; ".join(map(str, issues)))
            ex.code = answer["errorCode"]
            if answer["errorCode"] != 0 or not answer["successful"]:
                raise CtCallFailed(op_id, str(answer.get("info") or "refused"), code=answer["errorCode"])
            ok = True
            return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            ex.error = type(exc).__name__
            raise CtCallFailed(op_id, f"no answer: {type(exc).__name__} {exc}".rstrip()) from None
        finally:
            ex.answered_wall = time.time()
            ex.bytes_out = len(kwargs.get("data") or b"")  # the body; GET calls carry none
            self.latency.record(ex, success=ok)
            if self.exchange_log is not None:
                self.exchange_log.append(ex)

    async def check(self, sn: str) -> InverterOutcome:
        """The whole workflow for one inverter; never raises for a per-inverter problem."""
        out = InverterOutcome(sn)
        began = time.monotonic()
        try:
            await self._workflow(sn, out)
        except CtCallFailed as exc:
            out.outcome, out.reason = "error", str(exc)
        out.duration_s = round(time.monotonic() - began, 3)
        return out

    async def _workflow(self, sn: str, out: InverterOutcome) -> None:
        status = (await self.call(STATUS_OP, sn=sn))["body"]
        if not isinstance(status, dict):
            raise CtCallFailed(STATUS_OP, "the answer has no status body")
        out.status = status
        if status.get("checking") == 1:
            out.joined = True  # a check is already running: follow it instead of starting another (CT-12)
        else:
            failing = [
                p.describe(status.get(p.field)) for p in self.spec.preconditions if not p.passes(status.get(p.field))
            ]
            if failing:
                out.outcome, out.reason = "not-eligible", "; ".join(failing)
                return
            answer = await self.call(START_OP, sn=sn)
            if answer["body"] is not True:
                out.outcome, out.reason = "refused", f"not issued: {answer.get('info') or 'startCheck answered false'}"
                return
        await self._poll(sn, out)

    async def _poll(self, sn: str, out: InverterOutcome) -> None:
        start = time.time()
        seen_running = False
        errors = 0
        for k in range(1, math.ceil(self.timeout_s / self.poll_s) + 1):
            intended = start + k * self.poll_s
            await asyncio.sleep(max(0.0, intended - time.time()))
            try:
                body = (await self.call(RESULT_OP, sn=sn, intended_s=intended))["body"]
                errors = 0
            except CtCallFailed:
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise
                continue
            out.polls += 1
            if not isinstance(body, dict):
                raise CtCallFailed(RESULT_OP, "the answer has no result body")
            state = self.spec.progress_state(body.get("bit1"), body.get("bit2"))
            if state == "checking":
                seen_running = True
            elif state == "undefined":
                out.undefined_polls += 1  # bit1 = bit2 = 1 is not defined (CT-11): keep polling
            elif state == "failed" and (seen_running or intended - start > self.spec.start_grace_s):
                out.outcome, out.reason = "failed", "bit1 0, bit2 0 after the check started (检测失败)"
                return
            elif state == "complete":
                self._complete(body, out)
                return
        out.outcome, out.reason = "timeout", f"no result within {self.timeout_s:g} s"

    def _complete(self, body: dict[str, Any], out: InverterOutcome) -> None:
        outcome = self.spec.results.get(body.get("bit3"))  # type: ignore[arg-type]
        out.phases = phase_details(body)
        if outcome is None:
            out.outcome, out.reason = "error", f"check complete but bit3 is {body.get('bit3')!r}"
            return
        out.outcome = outcome
        if outcome != "normal":
            described = describe_phases(out.phases, self.spec.phase_flags)
            out.reason = described or "inverter-meter connection wrong; details not given (CT-7)"


def _decode(op_id: str, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CtCallFailed(op_id, f"answer is not JSON: {exc}") from None


async def check_fleet(
    sns: Iterable[str],
    *,
    url: str,
    token: str,
    poll_s: float | None = None,
    timeout_s: float = 600.0,
    concurrency: int = 200,
    spec: CtSpec | None = None,
    exchange_log: ExchangeLog | None = None,
) -> CheckReport:
    """Run the workflow for every serial number, at most ``concurrency`` at a time, over one session."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    wanted = list(dict.fromkeys(sns))
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        client = CtClient(session, url, token, spec=spec, poll_s=poll_s, timeout_s=timeout_s, exchange_log=exchange_log)

        async def one(sn: str) -> InverterOutcome:
            async with gate:
                return await client.check(sn)

        outcomes = await asyncio.gather(*(one(sn) for sn in wanted))
    return CheckReport(list(outcomes), client.latency, time.monotonic() - began)
