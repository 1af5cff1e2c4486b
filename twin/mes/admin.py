"""HTTP routes besides section 2: the status page, ``/metrics``, ``/swagger.json`` and the admin API
(faults, electrolyte batch push, interlocks, traceability, registry, stats). Every ``/admin/*`` request
needs the admin token (``Authorization: Bearer <token>``; ``twin.mes.guard`` answers 401 without it):
whoever reaches the port could otherwise inject faults, push batches or log every host out. Bad input is a
400 naming what is wrong, never a 500.

    GET    /admin/faults                 the faults now set
    POST   /admin/faults                 change some: {"latency": "lognormal:20:200", "latency_for":
                                         {"Inbound": "fixed:500"}, "error_rate": 0.1, "error_rate_for": {...},
                                         "error_kind": "code"|"http500", "outage": {"after_s": 0, "for_s": 5,
                                         "mode": "refuse"|"hang"}, "slow_db_ms": 50}
    DELETE /admin/faults                 clear every fault
    POST   /admin/electrolyte-batch      push a batch now (3.2): {"batchSfc"?: "...", "equipment"?: [...]}
    GET    /admin/interlocks?limit=N     the last interlocks with their outcome
    GET    /admin/trace/{code}           a product, lot or code: state, genealogy, exchanges
    GET    /admin/registry               equipment -> address used for section-3 calls
    GET    /admin/stats                  counters as JSON
    POST   /admin/opening-wip            products already in the line at go-live (twin.mes.opening)
    DELETE /admin/tokens                 forget every login: hosts must log in again (2.1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from twin.errors import ConfigError
from twin.mes.guard import ClientGone, Rejected, client_gone, read_admin_json, refusal
from twin.mes.metrics import prometheus
from twin.mes.opening import opening_wip
from twin.mes.rules import Call
from twin.mes.rules.codes import issue_code
from twin.mes.service import MES, Mes
from twin.mes.status import render
from twin.mes.store import Tx

FILLING = ("injection_1", "injection_2")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format's media type


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS), status=status, content_type="application/json"
    )


async def api(request: web.Request) -> web.Response:
    """Section 2, behind the outage gate: refused (dropped) or hanging connections while it lasts."""
    mes = request.app[MES]
    loop = asyncio.get_running_loop()
    mode = mes.faults.outage_mode(loop.time())
    if mode is None:
        return await mes.handle(request)
    mes.metrics.injected[f"outage-{mode}"] += 1
    if mode == "hang":
        while mes.faults.outage_mode(loop.time()) == "hang":  # bounded by the window's end
            await asyncio.sleep(0.05)
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)


async def status_page(request: web.Request) -> web.Response:
    mes = request.app[MES]
    interlocks = await mes.callouts.interlocks(50, newest_first=True) if mes.callouts is not None else []
    line = mes.plant.routes[0].line
    summary = f"{mes.plant.describe()}; database {mes.config.db}"
    html = render(
        title=f"twin embedded MES - {line.title}",
        summary=summary,
        metrics=mes.metrics,
        wip=mes.state.wip(),
        interlocks=interlocks,
        faults=mes.faults.to_json(asyncio.get_running_loop().time()),
    )
    return web.Response(text=html, content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    mes = request.app[MES]
    stats = mes.store.stats
    db = {
        "commits": stats.commits,
        "jobs": stats.jobs,
        "queued": mes.store.queued(),
        "largest_group": stats.largest_group,
        "last_commit_ms": round(stats.last_commit_ms, 3),
        "failures": stats.failures,
    }
    text = prometheus(mes.metrics, wip=mes.state.wip(), db=db, faults_active=mes.faults.active())
    return web.Response(
        body=text.encode(), headers={"Content-Type": PROMETHEUS_TYPE, "X-Content-Type-Options": "nosniff"}
    )


async def swagger(request: web.Request) -> web.Response:
    return _json(request.app[MES].profile.document)


async def get_faults(request: web.Request) -> web.Response:
    return _json(request.app[MES].faults.to_json(asyncio.get_running_loop().time()))


async def read_json(request: web.Request, *, empty: Any = None) -> Any:
    """An admin body as JSON (``empty`` when there is none), bounded in size and time."""
    return await read_admin_json(request, request.app[MES].config.body_timeout_s, empty=empty)


def admin_errors(handler: Callable[[web.Request], Awaitable[web.Response]]) -> Callable[..., Any]:
    """Bad input to an admin endpoint is a 4xx naming what is wrong, never a 500."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
        except Rejected as rejected:
            return refusal(request, rejected, request.app[MES].metrics.refusals)
        except ClientGone as gone:
            return client_gone(request, "the admin API", gone, request.app[MES].metrics.refusals)

    return guarded


def _set_faults(schedule_outage: Callable[[web.Application], None]) -> Callable[..., Any]:
    @admin_errors
    async def handler(request: web.Request) -> web.Response:
        mes = request.app[MES]
        doc = await read_json(request)
        mes.faults.update(doc, asyncio.get_running_loop().time(), operations=mes.operation_ids())
        mes.store.slow_commit_ms = mes.faults.slow_db_ms
        if "outage" in doc:
            schedule_outage(request.app)
        return _json(mes.faults.to_json(asyncio.get_running_loop().time()))

    return handler


def _clear_faults(schedule_outage: Callable[[web.Application], None]) -> Callable[..., Any]:
    async def handler(request: web.Request) -> web.Response:
        mes = request.app[MES]
        mes.faults.update(
            {
                "latency": None,
                "latency_for": {},
                "error_rate": 0,
                "error_rate_for": {},
                "outage": None,
                "slow_db_ms": 0,
            },
            0.0,
        )
        mes.store.slow_commit_ms = 0.0
        schedule_outage(request.app)
        return _json(mes.faults.to_json(asyncio.get_running_loop().time()))

    return handler


async def push_electrolyte(mes: Mes, batch: str | None, equipment: list[str] | None) -> list[dict[str, Any]]:
    """3.2: a new electrolyte batch (a code the MES hands out) to the filling machines."""
    targets = equipment or [code for p in FILLING for code in mes.plant.equipment_of(p)]
    unknown = [e for e in targets if mes.plant.place(e) is None]
    if unknown:
        raise ConfigError(f"not equipment of line {mes.plant.names}: {', '.join(unknown)}")
    if not targets:
        raise ConfigError(f"line {mes.plant.names} has no filling machines (injection_1, injection_2)")
    assert mes.callouts is not None
    if not batch:
        now = datetime.now(UTC)
        call = Call(
            mes.profile.operation("SendBatchSfc"),
            {},
            "MES",
            None,
            now,
            now.isoformat(timespec="milliseconds"),
            now,
            mes.state,
            mes.data,
            mes.plant.routes[0],  # the batch code names the first line (a plant's filling shares one batch)
            Tx(),
        )
        batch = issue_code(call, "electrolyte_batch")
        await mes.store.commit(call.tx)
    return await mes.callouts.push_batch(batch, targets)


BATCH_SHAPE = '{"batchSfc"?: "CODE", "equipment"?: ["CODE", ...]}'


def check_batch_request(doc: Any) -> tuple[str | None, list[str] | None]:
    """The body of ``POST /admin/electrolyte-batch``: both keys optional, each of its one type."""
    if not isinstance(doc, dict):
        raise ConfigError(f"expected {BATCH_SHAPE}, got {type(doc).__name__}")
    unknown = sorted(set(doc) - {"batchSfc", "equipment"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}: expected {BATCH_SHAPE}")
    batch, equipment = doc.get("batchSfc"), doc.get("equipment")
    if batch is not None and (not isinstance(batch, str) or not batch.strip() or len(batch) > 128):
        raise ConfigError(f"batchSfc must be a non-empty code of at most 128 characters, got {batch!r}")
    if equipment is not None and (
        not isinstance(equipment, list) or not all(isinstance(e, str) and e for e in equipment)
    ):
        raise ConfigError(f"equipment must be a list of equipment codes, got {equipment!r}")
    return batch or None, equipment or None


@admin_errors
async def push_batch(request: web.Request) -> web.Response:
    mes = request.app[MES]
    batch, equipment = check_batch_request(await read_json(request, empty={}))
    rows = await push_electrolyte(mes, batch, equipment)
    return _json({"pushes": rows})


async def interlocks(request: web.Request) -> web.Response:
    mes = request.app[MES]
    try:
        limit = max(1, min(10_000, int(request.query.get("limit", "100"))))
    except ValueError:
        return _json({"error": f"limit must be a whole number, got {request.query['limit']!r}"}, 400)
    rows = await mes.callouts.interlocks(limit, newest_first=True) if mes.callouts is not None else []
    return _json({"interlocks": rows})


async def trace(request: web.Request) -> web.Response:
    """Where a code comes from and where it went: the product, its genealogy, every exchange about it."""
    mes = request.app[MES]
    code = request.match_info["code"]
    unit = mes.state.unit(code)
    keys = list(unit.codes) if unit is not None else [code]
    marks = ", ".join("?" for _ in keys)
    genealogy = await mes.store.query(
        f"SELECT parent, child, relation, equipment, at FROM genealogy WHERE parent IN ({marks}) OR child IN ({marks})"
        " ORDER BY rowid",
        (*keys, *keys),
    )
    exchanges = await mes.store.query(
        f"SELECT at, operation, equipment, code, msg FROM exchanges WHERE sfc IN ({marks}) ORDER BY id", tuple(keys)
    )
    lot, issued = mes.state.lots.get(code), mes.state.issued.get(code)
    if unit is None and lot is None and issued is None and not genealogy:
        return _json({"error": f"{code} is unknown to the MES"}, 404)
    return _json(
        {
            "code": code,
            "product": unit.doc() if unit is not None else None,
            "lot": lot.doc() if lot is not None else None,
            "issued": issued.doc() if issued is not None else None,
            "genealogy": [
                dict(zip(("parent", "child", "relation", "equipment", "at"), r, strict=True)) for r in genealogy
            ],
            "exchanges": [
                dict(zip(("at", "operation", "equipment", "code", "msg"), r, strict=True)) for r in exchanges
            ],
        }
    )


async def registry(request: web.Request) -> web.Response:
    mes = request.app[MES]
    return _json(mes.callouts.client.addresses if mes.callouts is not None else {})


async def revoke_tokens(request: web.Request) -> web.Response:
    """Forget every login (as an MES restart that keeps no sessions would): hosts must log in again (2.1)."""
    mes = request.app[MES]
    revoked = len(mes.state.tokens)
    mes.state.tokens.clear()
    tx = Tx()
    tx.add("DELETE FROM docs WHERE kind = ?", ("token",))
    await mes.store.commit(tx)
    return _json({"revoked": revoked})


async def stats(request: web.Request) -> web.Response:
    mes = request.app[MES]
    doc = mes.metrics.to_json()
    doc["wip"] = mes.state.wip()
    doc["db"] = {
        "commits": mes.store.stats.commits,
        "jobs": mes.store.stats.jobs,
        "largest_group": mes.store.stats.largest_group,
        "queued": mes.store.queued(),
        "exchanges": mes.exchanges_stored,  # every exchange in the file: counts above restart with the process
    }
    return _json(doc)


def add_routes(app: web.Application, schedule_outage: Callable[[web.Application], None]) -> None:
    r = app.router
    r.add_get("/", status_page)
    r.add_get("/status", status_page)
    r.add_get("/metrics", metrics)
    r.add_get("/swagger.json", swagger)
    r.add_get("/admin/faults", get_faults)
    r.add_post("/admin/faults", _set_faults(schedule_outage))
    r.add_put("/admin/faults", _set_faults(schedule_outage))
    r.add_delete("/admin/faults", _clear_faults(schedule_outage))
    r.add_post("/admin/electrolyte-batch", push_batch)
    r.add_get("/admin/interlocks", interlocks)
    r.add_get("/admin/trace/{code}", trace)
    r.add_get("/admin/registry", registry)
    r.add_get("/admin/stats", stats)
    r.add_post("/admin/opening-wip", admin_errors(opening_wip))
    r.add_delete("/admin/tokens", revoke_tokens)
    r.add_route("*", "/{tail:.*}", api)
