"""Stations that handle one unit (or one pair) at a time: the assembly line, filling, finishing.

* ``UnitStation``: inbound (2.27, or 2.49 for a bound pair), process, outbound with parameters, bound
  material and NG (2.28, 2.50 at core taping, 2.58 at edge rolling); CCD files (2.6) and equipment files
  (2.54) where the line file lists them.
* ``Pairing``: two jelly rolls in (2.29), welded to the adapter and bound together out (2.31).
* ``CellCode``: the cell code comes from the MES (2.33) and is bound to the jelly rolls at outbound (2.32).
* ``CoverBind``: the welder engraves its own 24-digit cell code (2.55) and binds the top cover (2.56).
* ``Filling``: electrolyte injection, with top-up data (2.34) or the first volume (2.57), switching the
  electrolyte batch when the MES sends a new one (3.2) and the buffer tank of the old one is empty.
"""

from __future__ import annotations

from typing import Any

import simpy

from twin.sim.equipment import Equipment, Proc
from twin.sim.material import Unit

OUTBOUNDS = ("Outbound", "BoundOutbound", "OutboundForCellBindTopCover")


def inbound_code(unit: Unit, binds_cover: bool) -> str:
    """A station that binds the cell code to the top cover at outbound (2.58) scans the top cover at inbound:
    until then the MES knows the product by its top-cover code (2.56), not by the cell code it will get."""
    return unit.get("top_cover") or unit.code if binds_cover else unit.code


def jelly_code(unit: Unit) -> str:
    """The barcode a bound pair is scanned by (2.49/2.50: one jelly-roll code stands for the pair)."""
    if unit.kind == "cell" and unit.parents:
        return unit.parents[0].code
    return unit.code


class UnitStation(Equipment):
    """Inbound, process, outbound: hot press, X-Ray, Mylar, casing, welding, helium tests, OCV, wrapping."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.inbound = "Inbound" if self.calls("Inbound") else "InboundBindJzSingleAsync"
        self.outbound = next((n for n in OUTBOUNDS if self.calls(n)), "Outbound")
        self.ccd_every = int(self.options.get("ccd_every", 20))
        self._ccd: list[tuple[Unit, bool]] = []

    def run(self) -> Proc:
        # The hot loop of a day-long run (tens of thousands of units per station): the common path is
        # written out here; the helpers below handle refusals and the other archetypes.
        consumes = self.consumes
        buffer = self.input
        assert buffer is not None
        inside = self.inside
        rng = self.rng
        draw = self.cycle.draw
        plain_inbound = self.inbound == "Inbound"
        binds_cover = self.outbound == "OutboundForCellBindTopCover"
        inbound, outbound = self.inbound, self.outbound
        inbound_ok = self.ops[inbound].success_codes
        outbound_ok = self.ops[outbound].success_codes
        files = self.calls("EquFileUpload") or self.calls("CcdFileUploadComplete")
        while True:
            unit = buffer.try_get()
            if unit is None:
                self.still("starved")
                unit = yield buffer.get()
            self.n_in += 1
            inside.add(unit)
            if not self.moving or self.changeover_due:
                yield from self.resume()
            lots = []
            for material, qty in consumes:
                lot = yield from self.feed(material, qty)
                lots.append(lot.code)
            if plain_inbound:
                answer = yield self.ask(inbound, {"Sfc": inbound_code(unit, binds_cover)}, draw(rng))
            else:
                values = {"Sfc": jelly_code(unit), "OperationType": self.options.get("operation_type", "3")}
                answer = yield self.ask(inbound, values, draw(rng))
            if answer.status != 200 or answer.code not in inbound_ok:
                self.hold_back(unit)
                yield from self.refused(inbound, answer)
                continue
            self.made += 1
            passed = rng.random() >= self.ng_rate
            answer = yield self.ask(outbound, self.outbound_values(unit, passed, lots))
            if answer.status != 200 or answer.code not in outbound_ok:
                self.hold_back(unit)
                yield from self.refused(outbound, answer)
                continue
            if files:
                self.files(unit, passed)
            if passed:
                self.n_good += 1
                if not self.output.try_put(unit):  # type: ignore[union-attr]
                    self.still("blocked")
                    yield self.output.put(unit)  # type: ignore[union-attr]
                inside.discard(unit)
                if self.output.sink:  # type: ignore[union-attr]
                    self.rt.ship(unit)
            else:
                self.scrap(unit)

    def check_in(self, unit: Unit, cycle_s: float = 0.0) -> Proc:
        """Inbound (2.27 or 2.49); when the MES accepts, the process cycle of ``cycle_s`` follows."""
        if self.inbound == "Inbound":
            values: dict[str, Any] = {"Sfc": inbound_code(unit, self.outbound == "OutboundForCellBindTopCover")}
        else:
            values = {"Sfc": jelly_code(unit), "OperationType": self.options.get("operation_type", "3")}
        answer = yield self.ask(self.inbound, values, cycle_s)
        if self.accepted(self.inbound, answer):
            return True
        self.hold_back(unit)
        yield from self.refused(self.inbound, answer)
        return False

    def outbound_values(self, unit: Unit, passed: bool, lots: list[str]) -> dict[str, Any]:
        ng = [] if passed else [self.ng_code()]
        params = self.product_values(passed)
        name = self.outbound
        if name == "OutboundForCellBindTopCover":
            return {
                "Sfc": unit.code,
                "TopCoverSfc": unit.get("top_cover", ""),
                "Passed": int(passed),
                "ParamList": params,
                "BindFeedingCodes": lots,
                "NgList": ng,
            }
        values = {
            "Sfc": unit.code,
            "Passed": int(passed),
            "ParamList": params,
            "BindFeedingCodeList": lots,
            "NgList": ng,
        }
        if name == "BoundOutbound":
            values["Sfc"] = jelly_code(unit)
            values["OperationType"] = self.options.get("operation_type", "3")
        return values

    def check_out(self, unit: Unit, passed: bool, lots: list[str]) -> Proc:
        answer = yield self.ask(self.outbound, self.outbound_values(unit, passed, lots))
        if self.accepted(self.outbound, answer):
            return True
        self.hold_back(unit)
        yield from self.refused(self.outbound, answer)
        return False

    def finish(self, unit: Unit, passed: bool) -> Proc:
        self.files(unit, passed)
        if passed:
            self.n_good += 1
            yield from self.give(unit)
        else:
            self.scrap(unit)

    def files(self, unit: Unit, passed: bool) -> None:
        """CCD / inspection files: 2.6 after every ``ccd_every`` products, 2.54 per product."""
        if self.calls("EquFileUpload"):
            self.tell(
                "EquFileUpload",
                {
                    "Type": int(self.options.get("file_type", 1)),
                    "Sfc": unit.code,
                    "Passed": int(passed),
                    "CollectionTime": self.stamp(),
                    "FormCollection": None,
                },
            )
        if not self.calls("CcdFileUploadComplete"):
            return
        self._ccd.append((unit, passed))
        if len(self._ccd) >= self.ccd_every:
            self.upload_ccd([(u.code, p) for u, p in self._ccd])
            self._ccd.clear()

    def upload_ccd(self, products: list[tuple[str, bool]]) -> None:
        when = self.stamp()
        day = when[:10].replace("-", "")
        rows = [
            {
                "Sfc": sfc,
                "Passed": int(ok),
                "CollectionTime": when,
                "UriList": [{"Uri": f"ftp://10.20.1.15/ccd/{self.code}/{day}/{sfc}_CCD.csv", "Passed": int(ok)}],
            }
            for sfc, ok in products
        ]
        self.tell("CcdFileUploadComplete", {"SfcList": rows})


class Pairing(UnitStation):
    """Tab-to-adapter ultrasonic welding of two jelly rolls, bound together at outbound (2.31)."""

    def run(self) -> Proc:
        consumes = self.consumes
        while True:
            first = yield from self.take(self.input)  # type: ignore[arg-type]
            self.inside.add(first)
            second = yield from self.take(self.input)  # type: ignore[arg-type]
            self.inside.add(second)
            if not self.moving or self.changeover_due:
                yield from self.resume()
            lots = []
            for material, qty in consumes:
                lot = yield from self.feed(material, qty)
                lots.append(lot.code)
            if not (yield from self._pair_in(first, second, self.cycle.draw(self.rng))):
                continue
            self.made += 1
            passed = [self.rng.random() >= self.ng_rate / 2 for _ in range(2)]
            rows = []
            for jr, ok in zip((first, second), passed, strict=True):
                rows.append(
                    {
                        "Sfc": jr.code,
                        "Passed": int(ok),
                        "ParamList": self.product_values(ok),
                        "BindFeedingCodeList": lots,
                        "NgList": [] if ok else [self.ng_code()],
                    }
                )
            answer = yield self.ask("OutboundMultPolar", {"SfcList": rows})
            if not self.accepted("OutboundMultPolar", answer):
                self.hold_back(first)
                self.hold_back(second)
                yield from self.refused("OutboundMultPolar", answer)
                continue
            if all(passed):
                pair = Unit(first.code, "pair", (first, second))
                self.consume(first)
                self.consume(second)
                self.rt.ledger.created["pair"] += 1
                self.inside.add(pair)
                self.n_good += 1
                self.files(pair, True)
                yield from self.give(pair)
            else:  # a pair with an NG jelly roll is taken out whole
                self.scrap(first)
                self.scrap(second)

    def _pair_in(self, first: Unit, second: Unit, cycle_s: float) -> Proc:
        """Both jelly rolls in (2.29, or 2.27 twice); the welding cycle follows an accepted inbound."""
        if self.calls("InboundMore"):
            answer = yield self.ask("InboundMore", {"SfcList": [first.code, second.code]})
            items = answer.data if isinstance(answer.data, list) else []
            ok = self.accepted("InboundMore", answer) and all(
                (i.get("code", i.get("Code", 0)) if isinstance(i, dict) else 0) == 0 for i in items
            )
            name = "InboundMore"
        else:
            answer = yield self.ask("Inbound", {"Sfc": first.code})
            ok = self.accepted("Inbound", answer)
            if ok:
                answer = yield self.ask("Inbound", {"Sfc": second.code})
                ok = self.accepted("Inbound", answer)
            name = "Inbound"
        if ok:
            yield self.env.timeout(cycle_s)
        if ok:
            return True
        self.hold_back(first)
        self.hold_back(second)
        yield from self.refused(name, answer)
        return False


class CellCode(UnitStation):
    """Adapter-to-cover welding: the MES issues the cell code (2.33), bound to the jelly roll at outbound (2.32)."""

    def run(self) -> Proc:
        while True:
            pair, lots = yield from self._next_pair()
            jr = pair.code
            if not (yield from self._bound_in(pair)):
                continue
            # The welding (and engraving the code) follows the MES's answer.
            answer = yield self.ask("GenerateCellSfc", {"Sfc": jr}, self.cycle.draw(self.rng))
            code = answer.data.get("sfc") if isinstance(answer.data, dict) else answer.data
            if not (yield from self.settled("GenerateCellSfc", answer, pair)):
                continue
            if not code:  # accepted without a code: nothing to engrave
                self.hold_back(pair)
                yield from self.refused("GenerateCellSfc", answer)
                continue
            self.made += 1
            passed = self.rng.random() >= self.ng_rate
            values = {"Sfc": str(code), "JzSfc": jr, **self._results(passed, lots)}
            answer = yield self.ask("OutboundSfcPolar", values)
            cell = self._make_cell(pair, str(code))
            if (yield from self.settled("OutboundSfcPolar", answer, cell)):
                yield from self.finish(cell, passed)

    def _next_pair(self) -> Proc:
        """The next welded pair, with the equipment running and its materials fed: (pair, lot codes)."""
        pair = yield from self.take(self.input)  # type: ignore[arg-type]
        self.inside.add(pair)
        if not self.moving or self.changeover_due:
            yield from self.resume()
        lots = []
        for material, qty in self.consumes:
            lot = yield from self.feed(material, qty)
            lots.append(lot.code)
        return pair, lots

    def _bound_in(self, pair: Unit) -> Proc:
        """2.49 inbound of the pair where the station calls it; False if refused (the pair is set aside)."""
        if not self.calls("InboundBindJzSingleAsync"):
            return True
        answer = yield self.ask("InboundBindJzSingleAsync", {"Sfc": pair.code, "OperationType": "1"})
        return (yield from self.settled("InboundBindJzSingleAsync", answer, pair))

    def _results(self, passed: bool, lots: list[str]) -> dict[str, Any]:
        return {
            "Passed": int(passed),
            "ParamList": self.product_values(passed),
            "BindFeedingCodes": lots,
            "NgList": [] if passed else [self.ng_code()],
        }

    def _make_cell(self, pair: Unit, code: str) -> Unit:
        cell = Unit(code, "cell", pair.parents)
        self.consume(pair)
        self.rt.ledger.created["cell"] += 1
        self.inside.add(cell)
        return cell


class CoverBind(CellCode):
    """A welder that engraves its own 24-digit cell code (2.55) and binds top cover and jelly rolls (2.56)."""

    def run(self) -> Proc:
        while True:
            pair, lots = yield from self._next_pair()
            code = self.rt.cell_code_24()
            answer = yield self.ask("Receive24DxCode", {"SfcList": [code]})
            if not (yield from self.settled("Receive24DxCode", answer, pair)):
                continue
            if not (yield from self._bound_in(pair)):
                continue
            yield self.env.timeout(self.cycle.draw(self.rng))
            self.made += 1
            passed = self.rng.random() >= self.ng_rate
            cover = self.rt.code("TC")
            values = {"Sfc": cover, "JzSfcs": [jr.code for jr in pair.parents], **self._results(passed, lots)}
            answer = yield self.ask("OutboundForCoverplateBind", values)
            cell = self._make_cell(pair, code)
            cell.put("top_cover", cover)
            if (yield from self.settled("OutboundForCoverplateBind", answer, cell)):
                yield from self.finish(cell, passed)


class Filling(UnitStation):
    """Electrolyte injection with batch switching on 3.2 (first injection: 2.34 for top-ups)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batch: str | None = None
        self.pending: str | None = None
        self.tank_kg = float(self.options["tank_kg"])
        self.left_kg = self.tank_kg
        self.dose_g = float(self.options["dose_g"])
        self.batches_used: list[str] = []
        self._batch_arrived: simpy.Event | None = None
        # The buffer tank holds the batch the MES sent before the run (3.2), part used on a warm line. Without
        # it every filler would wait for the MES's next push, which a foreign MES may make hours later or never
        # (its schedule is its own), and filling and all after it would be missing from a run. A cold start
        # empties the line of products, not the electrolyte room.
        self.batch = f"DJY-{self.rt.line.tag}{self.rt.suffix}-OPEN-{self.index + 1:02d}"
        self.batches_used.append(self.batch)
        self.left_kg = self.tank_kg * (1.0 if self.rt.cold else self.rng.uniform(0.2, 1.0))
        self.opening_kg = self.left_kg

    def on_batch_sfc(self, batch: str) -> None:
        """3.2: the MES sends the new electrolyte batch; it is used once the old one in the tank runs out."""
        self.pending = batch
        if self._batch_arrived is not None and not self._batch_arrived.triggered:
            self._batch_arrived.succeed()

    def _electrolyte(self) -> Proc:
        if self.batch is None or self.left_kg <= 0:
            while self.pending is None and self.batch is None:
                self.still("starved")
                ticket = self.raise_alarm(self.host_alarm("electrolyte_empty"), cause="starved")
                self._batch_arrived = simpy.Event(self.env)
                yield self._batch_arrived
                self.clear_alarm(ticket)
            if self.pending is not None:
                self.batch, self.pending = self.pending, None
                self.batches_used.append(self.batch)
            self.left_kg = self.tank_kg  # the room refills the buffer tank with the current batch
        self.left_kg -= self.dose_g / 1000.0
        return self.batch

    def run(self) -> Proc:
        consumes = self.consumes
        if self.batch is not None:
            self.rt.sim.opening_electrolyte(self.code, self.batch)
        while True:
            unit = yield from self.take(self.input)  # type: ignore[arg-type]
            self.inside.add(unit)
            if not self.moving or self.changeover_due:
                yield from self.resume()
            lots = []
            for material, qty in consumes:
                lot = yield from self.feed(material, qty)
                lots.append(lot.code)
            batch = yield from self._electrolyte()
            cycle_s = self.cycle.draw(self.rng)
            volume = self.calls("GetInjectionVolume")
            if not (yield from self.check_in(unit, 0.0 if volume else cycle_s)):
                continue
            in_time = self.stamp()
            if volume:
                answer = yield self.ask("GetInjectionVolume", {"Sfc": unit.code}, cycle_s)
                if not self.accepted("GetInjectionVolume", answer):
                    self.hold_back(unit)
                    yield from self.refused("GetInjectionVolume", answer)
                    continue
                unit.put("first_volume", answer.data)
            self.made += 1
            passed = self.rng.random() >= self.ng_rate
            topup = self.calls("FillingData") and self.rng.random() < float(self.options["topup_rate"])
            if topup:
                ok = yield from self._filling_data(unit, passed, in_time)
            else:
                ok = yield from self.check_out(unit, passed, [*lots, batch])
            if ok:
                yield from self.finish(unit, passed)

    def _filling_data(self, unit: Unit, passed: bool, in_time: str) -> Proc:
        gauss = self.rng.gauss
        el = round(self.dose_g + gauss(0, 1.5), 1)
        add = round(abs(gauss(5.0, 1.0)), 1)
        manual = round(abs(gauss(1.0, 0.5)), 1)
        before = round(2815.0 + gauss(0, 4), 1)
        values = {
            "InTime": in_time,
            "OutTime": self.stamp(),
            "BeforeWeight": before,
            "AfterWeight": round(before + el + add + manual, 1),
            "ElWeight": el,
            "AddEl": add,
            "TotalEl": round(el + add, 1),
            "ManualEl": manual,
            "FinalEl": round(el + add + manual, 1),
            "IsOk": passed,
            "Sfc": unit.code,
        }
        answer = yield self.ask("FillingData", values)
        if self.accepted("FillingData", answer):
            return True
        self.hold_back(unit)
        yield from self.refused("FillingData", answer)
        return False
