"""The behaviour every virtual equipment shares: how a host must talk to the MES (spec 1.5, 1.7, 2).

At start-up an equipment logs in (2.1) and keeps the token for every later call, synchronises its clock
(2.5, then daily), downloads and verifies its startup parameters (2.7-2.9; the verification gates the
start and runs again after a changeover or a stop of ``long_stop_s`` or more), and starts its periodic
reports: heartbeat every 10 s (2.2), process parameters every minute (2.26), tool life every 12 h (2.42).
Raw material is loaded lot by lot with 2.10 and semi-finished units with 2.11, each gating the start; the
roll-to-roll stations call AGVs (2.12, 2.13). Breakdowns (MTBF/MTTR) raise H alarms from the catalogue.
An MES refusal stops what it must and raises an alarm whose message is the MES's (1.5.10).

Archetypes (``twin.sim.archetypes``) subclass ``Equipment`` and implement ``run()``, the production loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import simpy

from twin.line.catalogue import Alarm
from twin.line.dist import Dist, make_dist
from twin.profile import format_time
from twin.profile.calls import Answer, Call
from twin.profile.recipes import first_recipe, recipe_detail, recipe_report, recipe_version
from twin.sim.material import Buffer, Tray, Unit
from twin.sim.status import Reporting, Ticket

if TYPE_CHECKING:
    from twin.line.model import Station
    from twin.sim.runtime import Runtime

Proc = Generator[simpy.Event, Any, Any]


class Equipment(Reporting):
    """One virtual host + machine. ``run()`` is the production loop of the archetype."""

    takes_lanes = False  # winding takes one roll of every lane of its input buffer

    def __init__(self, rt: Runtime, station: Station, index: int, code: str, rng: random.Random) -> None:
        self.rt = rt
        self.env = rt.env
        self.station = station
        self.index = index
        self.code = code
        self.resource = f"R-{code}"
        self.rng = rng
        self.periods = rt.line.periods
        self.process = station.process
        self.lane = station.lanes[index % len(station.lanes)] if station.lanes else None
        self.ops = {name: rt.profile.operation(name) for name in rt.line.station_interfaces(station)}
        self.catalogue = rt.catalogue
        self.down_reasons = rt.catalogue.down_reasons
        self.cycle = rt.cycle_for(station)
        self.ng_rate = station.ng_rate
        self.ng_codes = rt.catalogue.ng_codes(station.process)
        self.product_params = rt.catalogue.product_params(station.process)
        self.params = rt.catalogue.params(station.process)
        self._values_ok = [(p.code, rt.param_texts(p, 0.0)) for p in self.product_params]
        self._values_ng = [(p.code, rt.param_texts(p, 3.5)) for p in self.product_params]
        self.options = {**rt.roles[station.id].options, **station.options}
        # Raw material per unit; a key MATERIAL@lane applies to the equipment of that lane only.
        self.consumes = [
            (key.split("@")[0], qty)
            for key, qty in station.consumes.items()
            if "@" not in key or key.split("@")[1] == self.lane
        ]
        self.input = rt.buffer_for(station.input, self.lane) if station.input else None
        self.output = rt.buffer_for(station.output, self.lane) if station.output else None
        self.token: str | None = None
        self.verified = False
        self.needs_verify = True
        self.changeover_due = False
        self.loaded: dict[str, Unit] = {}  # raw-material lot loaded per material
        self.inside: set[Unit] = set()  # units inside the equipment now (WIP)
        self.n_in = self.n_good = self.n_ng = self.n_held = 0
        self.made = 0  # cycles done (tool life)
        self.interlocks: list[tuple[float, str]] = []  # (virtual time, code) of every 3.1 interlock received
        drift = self.periods.get("clock_drift_ppm", 0.0) * 1e-6
        self.drift = rng.uniform(-drift, drift)
        self.synced_at = 0.0
        self.epoch0 = rt.clock.start_epoch
        self.profile = rt.profile
        self.traffic = rt.traffic
        self._init_reporting()

    # -- talking to the MES ---------------------------------------------------------------------
    def local_s(self) -> float:
        """The host's own clock (epoch seconds): it drifts until the next time sync (2.5)."""
        now = self.env.now
        return self.epoch0 + now + self.drift * (now - self.synced_at)

    def _call(self, op: Any, values: dict[str, Any]) -> Call:
        """The call as made now, stamped with the host's own clock (its LocalTime), counted in the traffic."""
        call = Call(self.profile, op, values, self.code, self.resource, self.env.now, None, self.local_s(), self.token)
        self.traffic.record(call)
        return call

    def ask(self, name: str, values: dict[str, Any] | None = None, then_s: float = 0.0) -> simpy.Event:
        """Send a call; the event's value is the Answer (the equipment waits for it, as a real host does).

        ``then_s``: if the MES accepts, the equipment works that long after the answer before the event
        fires (inbound then cycle); if it refuses, the event fires on the answer.
        """
        return self.rt.gateway.request(self._call(self.ops[name], values or {}), then_s)

    def tell(self, name: str, values: dict[str, Any] | None = None) -> None:
        """Send a report without waiting (heartbeat, state, alarm...); a refusal becomes an L alarm."""
        op = self.ops.get(name)
        if op is not None:
            self.rt.gateway.tell(self._call(op, values or {}), self._refused_report)

    def calls(self, name: str) -> bool:
        return name in self.ops

    def accepted(self, name: str, answer: Answer) -> bool:
        return answer.status == 200 and answer.code in self.ops[name].success_codes

    def stamp(self) -> str:
        return stamp(self.local_s())

    # -- MES refusals (spec 1.5.10: show the MES's message; stop what must stop) --------------------
    def host_alarm(self, key: str, **fields: Any) -> Alarm:
        base = self.catalogue.host_alarms[key]
        return Alarm(base.code, base.level, base.msg.format(**fields))

    def _refused_report(self, call: Call) -> None:
        answer = call.answer
        msg = answer.msg if answer is not None else ""
        ticket = self.raise_alarm(self.host_alarm("mes_refused_prompt", msg=f"{call.op.operation_id}: {msg}"))
        self.env.timeout(self.periods["operator_s"]).callbacks.append(lambda _e: self.clear_alarm(ticket))

    def refused(self, name: str, answer: Answer) -> Proc:
        """A gating call was refused: alarm (M, stop), wait for the operator, clear."""
        msg = f"{name}: {answer.msg or answer.error or answer.code}"
        ticket = self.raise_alarm(self.host_alarm("mes_refused_stop", msg=msg), cause="refused")
        yield self.env.timeout(self.periods["operator_s"])
        self.clear_alarm(ticket)

    def settled(self, name: str, answer: Answer, unit: Unit) -> Proc:
        """True if the MES accepted; else ``unit`` is set aside and the equipment waits out the refusal."""
        if self.accepted(name, answer):
            return True
        self.hold_back(unit)
        yield from self.refused(name, answer)
        return False

    def exchange(self, name: str, values: dict[str, Any] | None = None) -> Proc:
        """Ask and wait; on refusal stop with an alarm until the operator has seen it. Returns the answer or None."""
        answer = yield self.ask(name, values)
        if answer.status == 200 and answer.code in self.ops[name].success_codes:
            return answer
        yield from self.refused(name, answer)
        return None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, after_s: float = 0.0) -> None:
        """Power the host on now, or ``after_s`` virtual seconds from now (a plant's hosts do not start in step);
        until then it is off and says nothing, not even its state."""
        self.power_on_s = self.env.now + after_s
        self.env.process(self._power_on(after_s) if after_s > 0 else self.main())

    def _power_on(self, after_s: float) -> Proc:
        yield self.env.timeout(after_s)
        yield from self.main()

    def main(self) -> Proc:
        asked = self.env.now
        yield from self.login()
        # heartbeats spread over one period, counted from the login's request: the first comes within one
        # period of logging in (the MES may judge a host that logged in and stays silent offline)
        phase = max(0.0, self.rng.uniform(0.0, self.periods["heartbeat_s"]) - (self.env.now - asked))
        self.env.process(self._heartbeats(phase))
        self._every(self.periods["process_params_s"], phase + 1.0, self.process_parameters)
        self._every(self.periods["tool_life_s"], phase + 2.0, self.tool_life)
        yield from self.time_sync()
        self.env.process(self._daily_sync())
        self._start_upkeep()
        yield from self.verify()
        yield from self.run()

    def run(self) -> Proc:  # the archetype's production loop
        raise NotImplementedError
        yield

    def login(self) -> Proc:
        """2.1 until it gives a token; nothing else of this host leaves before (``HostLink`` keeps it).

        An MES that does not answer, or answers without a token, is asked again after a growing, jittered
        back-off (``login_retry_s``, doubling up to 5 min, +-50 %): a plant's hosts must not storm a struggling
        MES in step. A refusal with the MES's message is also shown to the operator (1.5.10).
        """
        if not self.calls("OperatorLogin"):
            return
        credentials = self.rt.line.operator
        values = {"OperatorUserID": credentials["user"], "OperatorPassword": credentials["password"]}
        wait = self.periods["login_retry_s"]
        while True:
            answer = yield self.ask("OperatorLogin", values)
            data = answer.data if self.accepted("OperatorLogin", answer) else None
            if isinstance(data, dict):
                token = next((v for k, v in data.items() if str(k).lower() == "authorization" and v), None)
                if token:
                    self.token = str(token)
                    return
            elif answer.status == 200:
                yield from self.refused("OperatorLogin", answer)
            yield self.env.timeout(wait * self.rng.uniform(0.5, 1.5))
            wait = min(wait * 2.0, 300.0)

    def time_sync(self) -> Proc:
        if not self.calls("TimeSynch"):
            return
        answer = yield self.ask("TimeSynch")
        if self.accepted("TimeSynch", answer):
            self.synced_at = self.env.now  # the host clock now reads the MES time: drift starts again

    def _daily_sync(self) -> Proc:
        while True:
            yield self.env.timeout(self.periods["time_sync_s"])
            yield from self.time_sync()

    def _every(self, period_s: float, phase_s: float, report: Any) -> None:
        def loop() -> Proc:
            yield self.env.timeout(phase_s)
            while True:
                report()
                yield self.env.timeout(period_s)

        self.env.process(loop())

    def _heartbeats(self, phase_s: float) -> Proc:
        """2.2 every ``heartbeat_s``: IsOnline is true while the host talks to its PLC (always, here)."""
        if "Heartbeat" not in self.ops:
            return
        env = self.env
        period = self.periods["heartbeat_s"]
        online = {"IsOnline": True}  # shared: bodies are built from it, never changed
        yield env.timeout(phase_s)
        while True:
            self.tell("Heartbeat", online)
            yield env.timeout(period)

    def process_parameters(self) -> None:
        params = self.params
        if not params or not self.calls("EquipmentProcessParam"):
            return
        when = self.stamp()
        gauss = self.rng.gauss
        values: dict[str, Any] = {
            "ParamList": [
                {"ParamCode": p.code, "ParamValue": p.text(gauss(0, 1)), "CollectionTime": when} for p in params
            ]
        }
        if self.process == "baking":
            values["Location"] = f"{self.code}-L{self.rng.randint(1, max(1, self.station.slots)):02d}"
        self.tell("EquipmentProcessParam", values)

    def tool_life(self) -> None:
        tools = self.catalogue.tools(self.process)
        if not tools:
            return
        rows = [{"ToolCode": t["code"], "UsedLife": float(self.made * t.get("life_per_unit", 1))} for t in tools]
        self.tell("ToolLife", {"ToolCode": rows[0]["ToolCode"], "UsedLife": rows[0]["UsedLife"], "ToolLifes": rows})

    # -- startup parameters (2.7-2.9) --------------------------------------------------------------
    def verify(self) -> Proc:
        """Download the startup-parameter set and verify it; repeat until the MES accepts (gates the start)."""
        if not self.calls("Recipe"):
            self.needs_verify = False
            return
        while True:
            product = self.rt.line.product
            listing = yield from self.exchange("GetRecipeList", {"ProductCode": product})
            if listing is None:
                continue
            row = first_recipe(listing.data)
            if row is None:  # the MES has no startup-parameter set for this process: nothing to verify
                self.verified = True
                self.needs_verify = False
                return
            recipe_code = str(row.get("recipecode") or f"KJ-{self.process}")
            detail = yield from self.exchange("GetRecipeDetail", {"RecipeCode": recipe_code})
            if detail is None:
                continue
            data, params = recipe_detail(detail.data)
            version = recipe_version(data, row, "V1.0")
            values = recipe_report(product, recipe_code, version, [self._set_value(p) for p in params])
            if (yield from self.exchange("Recipe", values)) is not None:
                self.verified = True
                self.needs_verify = False
                return

    def _set_value(self, p: dict[str, Any]) -> dict[str, str]:
        """A set value chosen by the process engineer within the MES limits (never the limits changed)."""
        try:
            lower, upper = float(p["paramlower"]), float(p["paramupper"])
            value = f"{self.rng.uniform(lower, upper):.3g}" if upper > lower else str(p.get("paramvalue", lower))
        except (KeyError, TypeError, ValueError):
            value = str(p.get("paramvalue", ""))
        return {
            "ParamCode": str(p.get("paramcode", "")),
            "ParamValue": value,
            "ParamUpper": str(p.get("paramupper", "")),
            "ParamLower": str(p.get("paramlower", "")),
        }

    def resume(self) -> Proc:
        """Before a cycle after a stop: wait out alarms, change over, verify again after a long stop, go."""
        while True:
            up = self.until_up()
            if up is not None:
                yield up
                continue
            if self.changeover_due:
                yield from self._changeover()
            if self.needs_verify or self.stopped_for() >= self.periods["long_stop_s"]:
                yield from self.verify()
                if self.until_up() is not None:
                    continue
            break
        self.go()

    # -- upkeep: breakdowns, warnings, changeovers ------------------------------------------------
    def _start_upkeep(self) -> None:
        rel = self.station.reliability
        if rel.get("mtbf_s"):
            self.env.process(self._breakdowns(float(rel["mtbf_s"]), make_dist(rel["mttr"])))
        if rel.get("warnings_per_h"):
            self.env.process(self._warnings(float(rel["warnings_per_h"]), make_dist(rel.get("warning_s", 60.0))))
        if self.station.changeover:
            self.env.process(self._changeovers(float(self.station.changeover["every_s"])))

    def _breakdowns(self, mtbf_s: float, mttr: Dist) -> Proc:
        faults = self.catalogue.alarms(self.process, "H") or [Alarm("100", "H", "设备故障")]
        while True:
            yield self.env.timeout(self.rng.expovariate(1.0 / mtbf_s))
            ticket = self.raise_alarm(self.rng.choice(faults), cause="repair")
            yield self.env.timeout(mttr(self.rng))
            self.clear_alarm(ticket)

    def _warnings(self, per_h: float, duration: Dist) -> Proc:
        prompts = self.catalogue.alarms(self.process, "L") or [Alarm("200", "L", "提示")]
        while True:
            yield self.env.timeout(self.rng.expovariate(per_h / 3600.0))
            ticket: Ticket = self.raise_alarm(self.rng.choice(prompts))
            yield self.env.timeout(duration(self.rng))
            self.clear_alarm(ticket)

    def _changeovers(self, every_s: float) -> Proc:
        while True:
            yield self.env.timeout(every_s)
            self.changeover_due = True

    def _changeover(self) -> Proc:
        self.changeover_due = False
        self.still("changeover", "setup")
        yield self.env.timeout(make_dist(self.station.changeover["duration"])(self.rng))
        self.needs_verify = True  # a product change re-runs the startup-parameter verification (2.9)

    # -- material ---------------------------------------------------------------------------------
    def take(self, buffer: Buffer) -> Proc:
        """The next unit from a buffer, waiting (starved) if it is empty."""
        unit = buffer.try_get()
        if unit is None:
            self.still("starved")
            unit = yield buffer.get()
        self.n_in += 1
        return unit

    def give(self, unit: Any, buffer: Buffer | None = None) -> Proc:
        """Put a good unit (or a tray) into the output buffer, waiting (blocked) while it is full.

        It stays inside the equipment (its WIP) until the buffer has taken it.
        """
        target = buffer or self.output
        assert target is not None
        if not target.try_put(unit):
            self.still("blocked")
            yield target.put(unit)
        if isinstance(unit, Tray):
            self.inside.difference_update(unit.cells)
        else:
            self.inside.discard(unit)
        if target.sink:
            self.rt.ship(unit)

    def feed(self, material: str, qty: float) -> Proc:
        """Use ``qty`` of a raw material, loading a new lot (2.10 Feeding) when the loaded one runs out."""
        lot = self.loaded.get(material)
        while lot is None or lot.qty < qty - 1e-9:
            if lot is not None:
                self.rt.ledger.consumed["lot"] += 1  # the end of a lot is used up with it
                del self.loaded[material]
            lot = yield from self.load_lot(material, "Feeding", self._feeding_values)
        lot.qty -= qty
        return lot

    @staticmethod
    def _feeding_values(lot: Unit) -> dict[str, Any]:
        return {"Sfc": lot.code, "Qty": lot.qty, "IsFeedingPoint": False, "IsTooling": False}

    def load_lot(self, material: str, check: str, values: Callable[[Unit], dict[str, Any]]) -> Proc:
        """The next lot of ``material`` (starved, with an alarm, while there is none), loaded once the MES accepts
        it with ``check`` (2.10 feeding, 2.17 bag check); a refused lot is set aside and the next one taken."""
        store = self.rt.raw[material]
        while True:
            event = store.get()
            if event.triggered:
                lot = event.value
            else:
                self.still("starved")
                ticket = self.raise_alarm(self.host_alarm("load_material", material=material), cause="starved")
                lot = yield event
                self.clear_alarm(ticket)
            answer = yield self.ask(check, values(lot))
            if self.accepted(check, answer):
                self.loaded[material] = lot
                return lot
            self.rt.ledger.held["lot"] += 1  # the refused lot is set aside
            yield from self.refused(check, answer)

    def half_feed(self, unit: Unit) -> Proc:
        """Load a semi-finished unit (roll, batch) with 2.11; False if the MES refused it (it is set aside)."""
        if not self.calls("HalfFeeding"):
            return True
        answer = yield self.ask("HalfFeeding", {"Sfc": unit.code})
        if self.accepted("HalfFeeding", answer):
            return True
        self.hold_back(unit)
        yield from self.refused("HalfFeeding", answer)
        return False

    def agv(self, name: str) -> Proc:
        """Call an AGV (2.12 up / 2.13 down) and wait for the transport."""
        if self.calls(name):
            self.tell(name, {"TaskType": "1" if name == "AgvUpMaterial" else "2"})
            yield self.env.timeout(self.periods["agv_s"])

    # -- outcomes ---------------------------------------------------------------------------------
    def scrap(self, unit: Unit) -> None:
        """An NG unit leaves the flow here (into the station's NG bin)."""
        self.inside.discard(unit)
        self.n_ng += 1
        self.rt.ledger.ng[unit.kind] += 1
        self.rt.keep_ng(unit)

    def hold_back(self, unit: Unit) -> None:
        """A unit the MES refused is taken out of the flow and held for disposition."""
        self.inside.discard(unit)
        self.n_held += 1
        self.rt.ledger.held[unit.kind] += 1

    def consume(self, unit: Unit) -> None:
        """A unit becomes part of another (jelly rolls into a pair, a pair into a cell)."""
        self.inside.discard(unit)
        self.rt.ledger.consumed[unit.kind] += 1

    def product_values(self, passed: bool) -> list[dict[str, str]]:
        """Result parameters of one product (NG ones 3.5 sigma off nominal), from pre-drawn value pools."""
        when = self.stamp()
        bits = self.rng.getrandbits
        return [
            {"ParamCode": code, "ParamValue": texts[bits(10)], "CollectionTime": when}
            for code, texts in (self._values_ok if passed else self._values_ng)
        ]

    def ng_code(self) -> str:
        return self.rng.choice(self.ng_codes)

    def on_batch_sfc(self, batch: str) -> None:
        """3.2 SendBatchSfc from the MES; only filling equipment act on it."""

    def on_interlock(self, code: str, message: str) -> Ticket:
        """3.1 SendInterLock: an H alarm with the MES's text, state 2, stopped until an engineer clears it."""
        ticket = self.raise_alarm(self.host_alarm("interlock", code=code, msg=message), cause="system")
        self.interlocks.append((self.env.now, code))
        clear_s = self.periods["interlock_clear_s"]
        self.env.timeout(clear_s).callbacks.append(lambda _e: self.clear_alarm(ticket))
        return ticket


_second: list[Any] = [-1, "", -1, ""]  # cached second and its text, cached day and its date text


def stamp(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds and Z, as ``format_time`` writes it, cached up to the second.

    Called for every collection time of every parameter list (about a million times a simulated day).
    """
    micros = round(epoch_s * 1_000_000)  # rounded as datetime.fromtimestamp rounds
    whole, frac = divmod(micros, 1_000_000)
    if _second[0] != whole:
        day, rest = divmod(whole, 86400)
        if _second[2] != day:
            _second[2] = day
            _second[3] = format_time(datetime.fromtimestamp(day * 86400, UTC))[:11]
        _second[0] = whole
        _second[1] = f"{_second[3]}{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}."
    return f"{_second[1]}{frac // 1000:03d}Z"
