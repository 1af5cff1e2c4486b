"""The in-process MES of offline runs: answers after a latency model, hands out barcodes, accepts the rest.

It is deliberately smaller than the embedded MES service (``twin.mes``): no route or rule enforcement, only
the business a line cannot run without, answered in the shapes the profile says the twin sends as MES —
operator tokens (2.1), the server time (2.5), startup parameters and formulas from the catalogue (2.7, 2.8,
2.14, 2.15), roll codes (2.23, 2.25), slurry and glue batch codes (2.20), cell codes (2.33), roll labels
(2.24), per-item results (2.29-2.31), the first injection volume of a cell (2.57), sorting rules and
downgrades (2.45, 2.51) — and the one MES-initiated call the line needs to run, the electrolyte batch push
(3.2). Refusals can be injected at a rate or scripted (tests), to exercise how equipment react.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import simpy

from twin.line.catalogue import Catalogue
from twin.line.dist import Dist, make_dist, pooled
from twin.profile.calls import OK, Answer, Call
from twin.sim.clock import Clock

CHINA = timezone(timedelta(hours=8))
EXEMPT = frozenset({"OperatorLogin", "Heartbeat"})  # never refused by the random fault rate


@dataclass
class Refusal:
    """A scripted refusal: the next ``count`` calls of an operation (optionally of one equipment) from a time."""

    operation_id: str
    equipment_code: str | None = None
    after_s: float = 0.0
    count: int = 1
    code: int = 1
    msg: str = "refused (scripted)"


class OfflineMes:
    """Answers calls in process; one instance serves every equipment of every copy of a line."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        product: str,
        clock: Clock,
        seed: int,
        latency: Dist | Any = None,
        refusal_rate: float = 0.0,
        downgrade_rate: float = 0.0,
        tag: str = "A02",
    ) -> None:
        self.catalogue = catalogue
        self.product = product
        self.clock = clock
        self.rng = random.Random(seed)
        dist = latency if isinstance(latency, Dist) else make_dist(latency if latency is not None else 0.004)
        self.latency = pooled(dist, seed + 1)
        self.refusal_rate = refusal_rate
        self.downgrade_rate = downgrade_rate
        self.tag = tag
        self.scripted: list[Refusal] = []
        self.refused = 0
        self.now: Callable[[], float] = lambda: 0.0
        self._equipment: dict[str, tuple[str, str | None]] = {}
        self._seq: dict[str, int] = {}
        self._last_roll: dict[str, str] = {}
        self._volumes: dict[str, str] = {}
        self._days: dict[int, tuple[str, str]] = {}
        self._handlers: dict[str, Callable[[Call], Answer]] = {
            "OperatorLogin": self._login,
            "TimeSynch": self._time,
            "GetRecipeList": self._recipe_list,
            "GetRecipeDetail": self._recipe_detail,
            "FormulaListGet": self._formula_list,
            "FormulaDetailGet": self._formula_detail,
            "OutputEqu": self._batch_code,
            "GenerateSfc": self._roll_codes,
            "CcdGetBarcode": self._ccd_barcode,
            "OutboundMetersReport": self._roll_label,
            "GenerateCellSfc": self._cell_code,
            "InboundMore": self._per_item,
            "OutboundMore": self._per_item,
            "OutboundMultPolar": self._per_item,
            "FillingData": self._filling,
            "Outbound": self._outbound,
            "GetInjectionVolume": self._injection_volume,
            "SortingRule": self._sorting_rules,
            "GetSfcInfo": self._downgrades,
        }

    # -- set-up ------------------------------------------------------------------------------------
    def register(self, equipment_code: str, process: str, lane: str | None) -> None:
        self._equipment[equipment_code] = (process, lane)

    def refuse(self, operation_id: str, **kwargs: Any) -> Refusal:
        """Script a refusal (tests): ``refuse("Inbound", equipment_code="X-01", after_s=600, count=1)``."""
        rule = Refusal(operation_id, **kwargs)
        self.scripted.append(rule)
        return rule

    # -- answering ---------------------------------------------------------------------------------
    def answer(self, call: Call) -> Answer:
        op_id = call.op.operation_id
        if self.scripted:
            refusal = self._scripted(call)
            if refusal is not None:
                return refusal
        if self.refusal_rate and op_id not in EXEMPT and self.rng.random() < self.refusal_rate:
            self.refused += 1
            # 1 is a refusal except where a section says 1 = success (2.20, 2.34, 2.57): then 2
            code = 1 if 1 not in call.op.success_codes else 2
            return Answer(200, code, f"{op_id} refused by fault injection")
        handler = self._handlers.get(op_id)
        return OK if handler is None else handler(call)

    def delay(self) -> float:
        return self.latency.draw(self.rng)

    def _scripted(self, call: Call) -> Answer | None:
        for rule in self.scripted:
            if (
                rule.count > 0
                and rule.operation_id == call.op.operation_id
                and call.virtual_s >= rule.after_s
                and rule.equipment_code in (None, call.equipment_code)
            ):
                rule.count -= 1
                self.refused += 1
                return Answer(200, rule.code, rule.msg)
        return None

    def _next(self, kind: str) -> int:
        n = self._seq.get(kind, 0) + 1
        self._seq[kind] = n
        return n

    def _day(self, virtual_s: float) -> tuple[str, str]:
        """(yymmdd, yyyymmdd) of the virtual day in China time, cached per day."""
        epoch = self.clock.epoch(virtual_s)
        key = int((epoch + 8 * 3600) // 86400)
        day = self._days.get(key)
        if day is None:
            local = datetime.fromtimestamp(epoch, CHINA)
            day = self._days[key] = (local.strftime("%y%m%d"), local.strftime("%Y%m%d"))
        return day

    def _time_text(self, virtual_s: float) -> str:
        return datetime.fromtimestamp(self.clock.epoch(virtual_s), CHINA).isoformat(timespec="milliseconds")

    # -- business -----------------------------------------------------------------------------------
    def _login(self, call: Call) -> Answer:
        token = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        return Answer(200, 0, "Success", {"accountType": "2", "authorization": f"Bearer {token}"})

    def _time(self, call: Call) -> Answer:
        return Answer(200, 0, "Success", self._time_text(call.virtual_s))

    def _process(self, call: Call) -> tuple[str, str | None]:
        return self._equipment.get(call.equipment_code, ("default", None))

    def _recipe_list(self, call: Call) -> Answer:
        process, _ = self._process(call)
        recipe = self.catalogue.recipe(process)
        row = {
            "recipeCode": f"KJ-{process.upper().replace('_', '-')}-{self.product}",
            "version": recipe["version"],
            "productCode": self.product,
            "lastUpdateOnTime": "2026-11-20T09:15:30.000Z",
        }
        return Answer(200, 0, "Success", [row])

    def _recipe_detail(self, call: Call) -> Answer:
        process, _ = self._process(call)
        recipe = self.catalogue.recipe(process)
        params = [
            {
                "paramCode": p["code"],
                "paramName": p.get("name", p["code"]),
                "paramValue": str(p["value"]),
                "paramUpper": str(p["upper"]),
                "paramLower": str(p["lower"]),
            }
            for p in recipe["params"]
        ]
        data = {"version": recipe["version"], "lastUpdateOnTime": "2026-11-20T09:15:30.000Z", "paramList": params}
        return Answer(200, 0, "Success", data)

    def _formula(self, call: Call) -> dict[str, Any]:
        _, lane = self._process(call)
        return self.catalogue.formula(lane or "glue")

    def _formula_list(self, call: Call) -> Answer:
        f = self._formula(call)
        row = {
            "formulaCode": f["code"],
            "version": f["version"],
            "productCode": self.product,
            "lastUpdateOnTime": "2026-11-20T09:15:00.000Z",
        }
        return Answer(200, 0, "Success", [row])

    def _formula_detail(self, call: Call) -> Answer:
        f = self._formula(call)
        steps = [
            {
                "sepOrder": n,
                "category": "A",
                "marterialCode": material,
                "marterialGroupCode": f"MG-{material}",
                "paramCode": None,
                "paramValue": None,
                "functionCode": None,
                "unit": "kg",
            }
            for n, material in enumerate(f["ingredients"], 1)
        ]
        steps.append(
            {
                "sepOrder": len(steps) + 1,
                "category": "B",
                "marterialCode": None,
                "marterialGroupCode": None,
                "paramCode": "MIX_TIME_MIN",
                "paramValue": "360",
                "functionCode": None,
                "unit": "min",
            }
        )
        return Answer(200, 0, "Success", [{"version": f["version"], "paramList": steps}])

    def _batch_code(self, call: Call) -> Answer:
        _, lane = self._process(call)
        kind = "GL" if lane in (None, "glue") else ("SLC" if lane == "cathode" else "SLA")
        code = f"{kind}-{self._day(call.virtual_s)[1]}-{self._next(kind):04d}"
        return Answer(200, 0, "Success", {"sfc": code})

    def _roll_codes(self, call: Call) -> Answer:
        qty = int(call.values.get("Qty") or 1)
        if qty < 1:
            return Answer(200, 1, f"Qty must be at least 1, got {qty}")
        yymmdd = self._day(call.virtual_s)[0]
        codes = [f"ER{self.tag}{yymmdd}{self._next('roll'):06d}" for _ in range(qty)]
        self._last_roll[call.equipment_code] = codes[-1]
        return Answer(200, 0, "Success", {"sfcList": codes})

    def _ccd_barcode(self, call: Call) -> Answer:
        sfc = self._last_roll.get(call.equipment_code)
        if sfc is None:
            return Answer(200, 1, f"no output roll generated yet for {call.equipment_code}")
        data = {
            "productCode": f"MAT-ROLL-{self.product}",
            "sfc": sfc,
            "qty": 4800.0,
            "id": str(uuid.UUID(int=zlib.crc32(sfc.encode()) << 96 | self._next("ccd"), version=4)),
        }
        return Answer(200, 0, "Success", data)

    def _roll_label(self, call: Call) -> Answer:
        yymmdd, yyyymmdd = self._day(call.virtual_s)
        data = {
            "sfc": call.values.get("Sfc", ""),
            "orderCode": f"WO-{self.tag}-{yyyymmdd}-01",
            "equipmentCode": call.equipment_code,
            "materialName": "极片卷料",
            "materialBatch": yyyymmdd,
            "manuDate": f"20{yymmdd}0600",
            "effectiveDate": f"20{yymmdd}0600",
        }
        return Answer(200, 0, "Success", data)

    def _cell_code(self, call: Call) -> Answer:
        code = f"QK{self.tag}C{self._day(call.virtual_s)[0]}{self._next('cell'):07d}"
        return Answer(200, 0, "Success", code)

    def _per_item(self, call: Call) -> Answer:
        items: Iterable[Any] = call.values.get("SfcList") or ()
        sfcs = [i if isinstance(i, str) else i.get("Sfc", "") for i in items]
        return Answer(200, 0, "Success", [{"sfc": s, "code": 0, "msg": "Success"} for s in sfcs])

    def _filling(self, call: Call) -> Answer:
        self._volumes[call.values["Sfc"]] = f"{call.values['FinalEl']:.2f}"
        return OK

    def _outbound(self, call: Call) -> Answer:
        process, _ = self._process(call)
        if process == "injection_1":
            for p in call.values.get("ParamList") or ():
                if p.get("ParamCode") == "INJ_VOLUME_G":
                    self._volumes[call.values["Sfc"]] = p["ParamValue"]
        return OK

    def _injection_volume(self, call: Call) -> Answer:
        # A cell injected before the run (warm start) has no record here: the nominal first dose stands in.
        volume = self._volumes.pop(call.values["Sfc"], None) or "380.00"
        return Answer(200, 0, "Success", volume)

    def _sorting_rules(self, call: Call) -> Answer:
        sorting = self.catalogue.sorting
        rows = [
            {
                "sortRuleCode": sorting["rule_code"],
                "sortRuleName": sorting["rule_name"],
                "parameterCode": r["parameter"],
                "parameterName": r["name"],
                "minValue": r["min"],
                "minContainingType": 2,
                "maxValue": r["max"],
                "maxContainingType": 1,
                "parameterValue": None,
                "rating": r["rating"],
                "serial": n,
                "procedureCode": "SORTING",
                "grade": r["grade"],
            }
            for n, r in enumerate(sorting.get("rules") or (), 1)
        ]
        return Answer(200, 0, "Success", rows)

    def _downgrades(self, call: Call) -> Answer:
        grade = self.catalogue.sorting.get("downgrade_grade", "B1")
        limit = int(self.downgrade_rate * 10_000)
        rows = [
            {"sfc": s, "grade": grade}
            for s in call.values.get("SfcList") or ()
            if zlib.crc32(s.encode()) % 10_000 < limit
        ]
        return Answer(200, 0, "Success", rows)

    # -- MES-initiated calls (section 3) ------------------------------------------------------------
    def push_electrolyte(self, env: simpy.Environment, equipment: list[Any], period_s: float) -> None:
        """Send a new electrolyte batch (3.2) to every filling equipment now and then every ``period_s``."""
        if not equipment:
            return

        def pushes() -> Any:
            while True:
                yymmdd = self._day(env.now)[0]
                for eq in equipment:
                    eq.on_batch_sfc(f"DJY-{self.tag}-{yymmdd}-{self._next('ely'):03d}")
                yield env.timeout(period_s)

        env.process(pushes())


class OfflineGateway:
    """Offline: the answer is known at once and arrives after the latency model's delay (virtual time)."""

    def __init__(self, env: simpy.Environment, mes: OfflineMes) -> None:
        self.env = env
        self.mes = mes

    def wall_now(self) -> float | None:
        return None

    def request(self, call: Call, then_s: float = 0.0) -> simpy.Event:
        """The answer event; with ``then_s``, an accepted answer fires that much later (see ``Bridge.request``)."""
        mes = self.mes
        answer = call.answer = mes.answer(call)
        delay = mes.latency.values[mes.rng.getrandbits(mes.latency.bits)]
        if then_s and answer.status == 200 and answer.code in call.op.success_codes:
            delay += then_s
        return self.env.timeout(delay, answer)

    def tell(self, call: Call, on_refused: Callable[[Call], None]) -> None:
        answer = call.answer = self.mes.answer(call)
        if answer.status != 200 or answer.code not in call.op.success_codes:
            self.env.timeout(self.mes.delay()).callbacks.append(lambda _e: on_refused(call))


class ModelTransport:
    """The offline MES model behind the ``Transport`` seam: answers after its latency in wall time.

    Lets ``--realtime`` and ``--speed N`` run through the real bridge without a network, e.g. to watch a
    line at takt or to drive hardware in the loop without an MES.
    """

    def __init__(self, mes: OfflineMes) -> None:
        self.mes = mes

    async def exchange(self, call: Call) -> Answer:
        sent = time.time()  # epoch seconds, as the host link's answers say them (the bridge's send-lag reads both)
        await asyncio.sleep(self.mes.delay())
        answer = self.mes.answer(call)
        return Answer(answer.status, answer.code, answer.msg, answer.data, sent_wall=sent, answered_wall=time.time())


def start_of(text: str) -> datetime:
    """The virtual start of an offline run from the line file's ``start`` (ISO 8601)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
