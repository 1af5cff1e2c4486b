"""One request through the embedded MES: faults, token, schema, station, rule, commit, answer.

Order, as an ASP.NET MES with [Authorize] and model validation would do it: the token first, then the
body against the profile (both casings; a shared path is matched to its operation), then where the
equipment stands, then the business rule. Every exchange is logged in the same commit as the state it
changed, and the answer leaves only after that commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from twin.errors import Issue
from twin.mes.callouts import Callouts
from twin.mes.config import MesConfig
from twin.mes.faults import Faults
from twin.mes.forms import read_form
from twin.mes.guard import ClientGone, Interface, Rejected, client_gone, read_body, refusal
from twin.mes.metrics import Metrics
from twin.mes.route import Plant
from twin.mes.rules import ANYWHERE, CODES, RULES, Answer, Call, Refused
from twin.mes.seed import MesData
from twin.mes.state import MesState
from twin.mes.store import LOG_EXCHANGE, Store, Tx
from twin.profile import Operation, Profile

log = logging.getLogger(__name__)
JSON = "application/json"


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type=JSON)


class Mes:
    """The service: everything a request needs, and the pipeline that answers it."""

    def __init__(self, config: MesConfig, profile: Profile, plant: Plant, data: MesData, store: Store) -> None:
        self.config = config
        self.profile = profile
        self.plant = plant
        self.data = data
        self.store = store
        self.faults: Faults = config.faults
        self.metrics = Metrics()
        self.state = MesState()
        self.callouts: Callouts | None = None
        self.admin_token = ""  # set by create_app
        self.exchanges_stored = 0  # in the database, those of earlier runs of this file included (a restart)
        self.paths: dict[str, list[Operation]] = {}
        media: dict[str, list[str]] = {}
        for op in profile:
            if op.direction == "client-to-server" and op.path.startswith("/EquipmentService"):
                self.paths.setdefault(op.path.lower(), []).append(op)
                body = ((profile.document.get("paths") or {}).get(op.path) or {}).get(op.method.lower()) or {}
                content = (body.get("requestBody") or {}).get("content") or {"application/json": {}}
                media.setdefault(op.path.lower(), []).extend(
                    t for t in content if t not in media.get(op.path.lower(), [])
                )
        self.interfaces = {key: Interface.of(ops, media[key]) for key, ops in self.paths.items()}

    def interface_at(self, path: str) -> Interface | None:
        """The section-2 interface served at ``path`` (case and trailing slash as ASP.NET ignores them)."""
        return self.interfaces.get(path.replace(" ", "").rstrip("/").lower())

    # -- the request pipeline ------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        interface = self.interface_at(request.path)
        if interface is None:
            return _json({"code": 404, "msg": f"no interface at {request.method} {request.path}"}, 404)
        ops = list(interface.ops)
        if request.method != "POST":
            return _json({"code": 405, "msg": f"{ops[0].operation_id} ({ops[0].section}) is POST only"}, 405)
        if ops[0].needs_auth:  # before the body: a stranger's body is never stored (a large one never even read)
            denied = self._check_token(request.headers.get("Authorization"))
            if denied is not None:
                note, unread = await self._skip_body(request, denied.reason)
                response = await self._answer(ops[0], denied, note, Tx(), started, status=401)
                if unread:
                    response.force_close()
                return response
        first = ops[0].operation_id if len(ops) == 1 else self._fault_key(ops)
        payload: Any = None
        what, limit, timeout_s = interface.what, interface.limit, self.config.body_timeout_s
        try:
            if request.content_type == "multipart/form-data":
                payload, raw = await read_form(request, ops[0], limit=limit, timeout_s=timeout_s, what=what)
            else:
                raw = await read_body(request, limit, timeout_s, what)
        except Rejected as rejected:
            return refusal(request, rejected, self.metrics.refusals)
        except ClientGone as gone:
            return client_gone(request, what, gone, self.metrics.refusals)
        delay = self.faults.delay_s(first)
        if delay > 0:
            await asyncio.sleep(delay)
        if self.faults.fails(first):
            self.metrics.injected["error"] += 1
            status = 500 if self.faults.error_kind == "http500" else 200
            answer = Answer(None, f"fault injected on purpose: error rate for {first}", CODES["fault"], "fault")
            return await self._answer(ops[0], answer, raw, Tx(), started, status=status)
        if payload is None:
            payload = _parse_json(raw)
        op, answer, call, status = self._run(request, ops, raw, payload)
        if status >= 400:
            raw = _kept(raw, answer.reason)
        return await self._answer(op, answer, raw, call.tx if call else Tx(), started, status=status, call=call)

    async def _skip_body(self, request: web.Request, reason: str) -> tuple[bytes, bool]:
        """A refused request's body: a small one is read and dropped (the connection stays usable), a large
        or chunked one is left unread and the connection closed. What is stored is its size and why."""
        length = request.content_length
        unread = request.body_exists
        if unread and length is not None and length <= SMALL_BODY:
            try:
                async with asyncio.timeout(self.config.body_timeout_s):
                    await request.content.read()
                unread = False
            except (TimeoutError, ConnectionError):
                pass
        return _note(reason, length), unread

    def operation_ids(self) -> set[str]:
        """The interfaces this MES serves (operation ids of section 2)."""
        return {op.operation_id for ops in self.paths.values() for op in ops}

    def _fault_key(self, ops: list[Operation]) -> str:
        """Faults act before a shared path is matched to its operation: either name selects the path."""
        faults = self.faults
        for op in ops:
            if op.operation_id in faults.latency_for or op.operation_id in faults.error_rate_for:
                return op.operation_id
        return ops[0].operation_id

    def _run(
        self, request: web.Request, ops: list[Operation], raw: bytes, payload: Any
    ) -> tuple[Operation, Answer, Call | None, int]:
        """Everything synchronous: no await from the first check to the last change."""
        op = ops[0]
        if isinstance(payload, NotJson):
            return op, Answer(None, f"the body is not JSON: {payload.error}", CODES["not-json"], "not-json"), None, 400
        if not isinstance(payload, dict):
            return op, Answer(None, "the body must be a JSON object", CODES["invalid"], "invalid"), None, 200
        if len(ops) > 1:
            op, body, issues = self._match(request.path, ops, payload)
        else:
            body, issues = op.check_request(payload)
        if issues:
            return op, self._invalid(op, issues), None, 200
        call = self._call(op, body)
        try:
            self._where(call)
            answer = RULES[op.operation_id](call)
        except Refused as refused:
            answer = Answer(refused.data, refused.msg, refused.code, refused.reason)
            if not refused.keep:
                call.tx, call.fired = Tx(), []
        return op, answer, call, 200

    def _match(self, path: str, ops: list[Operation], payload: dict[str, Any]) -> tuple[Operation, Any, list[Issue]]:
        """A shared path (/Outbound: 2.28 or 2.50). The operation G-4 names (2.50 when the body has
        OperationType) is tried first, which is what ``Profile.match`` settles on whenever it validates;
        only an invalid body goes through ``Profile.match`` itself (which tries every variant, and costs)."""
        keys = {k.lower() for k in payload}
        for op in sorted(ops, key=lambda o: -len((o.request_schema or {}).get("required") or ())):
            required = {str(r).lower() for r in (op.request_schema or {}).get("required") or ()}
            if required <= keys:
                body, issues = op.check_request(payload)
                if not issues:
                    return op, body, issues
                break
        return self.profile.match(path, payload)

    def _check_token(self, header: str | None) -> Answer | None:
        if not header:
            return Answer(
                None,
                "Authorization header is missing: send 'Bearer <token>' as 2.1 OperatorLogin returned it",
                CODES["unauthorised"],
                "unauthorised",
            )
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Answer(
                None,
                "Authorization must be 'Bearer <token>' (with the space) as 2.1 returned it",
                CODES["unauthorised"],
                "unauthorised",
            )
        if token.strip() not in self.state.tokens:
            return Answer(
                None,
                "Authorization token is unknown to this MES: log in again (2.1 OperatorLogin)",
                CODES["unauthorised"],
                "unauthorised",
            )
        return None

    def _invalid(self, op: Operation, issues: list[Issue]) -> Answer:
        for issue in issues:
            self.metrics.invalid(op.operation_id, issue.path)
        return Answer(None, "; ".join(str(i) for i in issues), CODES["invalid"], "invalid")

    def _call(self, op: Operation, body: dict[str, Any]) -> Call:
        now = datetime.now(UTC)
        equipment = str(body.get("EquipmentCode", ""))
        at_text = str(body.get("LocalTime") or "")
        try:
            at = datetime.fromisoformat(at_text)
            if at.tzinfo is None:
                at = at.replace(tzinfo=self.data.timezone)
        except ValueError:
            at, at_text = now, now.isoformat(timespec="milliseconds")
        route = self.plant.route_of(equipment)
        return Call(op, body, equipment, route.place(equipment), at, at_text, now, self.state, self.data, route, Tx())

    def _where(self, call: Call) -> None:
        """Station interfaces need a station of the line that uses them (its list, or the spec's processes)."""
        op_id = call.op.operation_id
        if op_id in ANYWHERE:
            return
        place = call.need_place()
        if op_id not in place.interfaces and place.process not in call.op.processes and "all" not in call.op.processes:
            raise Refused(
                "equipment",
                f"{op_id} ({call.op.section}) is not an interface of station "
                f"{place.station.id} (process {place.process}) on line {call.route.line.name}",
            )

    async def _answer(
        self,
        op: Operation,
        answer: Answer,
        raw: bytes,
        tx: Tx,
        started: float,
        *,
        status: int = 200,
        call: Call | None = None,
    ) -> web.Response:
        envelope: dict[str, Any] = {"code": answer.code, "msg": answer.msg}
        if answer.data is not None:
            envelope["data"] = answer.data
            envelope = op.encode(envelope, "200")
        body = orjson.dumps(envelope)
        fired = []
        if call is not None and call.fired and self.callouts is not None:
            fired = self.callouts.record(call.fired, tx)
        equipment = call.equipment if call is not None else None
        sfc = call.sfc if call is not None else None
        tx.add(
            LOG_EXCHANGE,
            (
                datetime.now(UTC).isoformat(timespec="milliseconds"),
                op.operation_id,
                equipment,
                sfc,
                answer.code,
                answer.reason or None,
                answer.msg,
                raw,
                body,
            ),
        )
        try:
            await self.store.commit(tx)
            self.exchanges_stored += 1
        except Exception as exc:  # the database refused the write: the exchange is not durable, say so
            log.error("MES commit failed for %s: %s", op.operation_id, exc)
            answer = Answer(None, f"the MES could not store this exchange: {exc}", CODES["storage"], "storage")
            body, status, fired = orjson.dumps({"code": answer.code, "msg": answer.msg}), 500, []
        if fired and self.callouts is not None:
            self.callouts.send(fired)
        self.metrics.observe(op.operation_id, answer.code, answer.reason, time.perf_counter() - started)
        return web.Response(body=body, status=status, content_type=JSON)


MES = web.AppKey("mes", Mes)


SMALL_BODY = 64 * 1024  # a refused body up to this size is read and dropped; a larger one closes the connection
KEPT_OF_REFUSED = 4096  # a request refused at HTTP level (4xx) is stored in full only up to this size


def _note(reason: str, length: int | None) -> bytes:
    """What the exchange log keeps of a refused request's body: its size and why, never the body."""
    return orjson.dumps({"notKept": reason, "bytes": length})


def _kept(raw: bytes, reason: str) -> bytes:
    return raw if len(raw) <= KEPT_OF_REFUSED else _note(reason, len(raw))


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        return NotJson(str(exc))


class NotJson:
    """A body that did not parse, with orjson's message (it names the position)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error
