"""The electrode segment and winding: batches and rolls, with their codes from the MES.

* ``Warehouse``: receives the raw-material lots the line is short of into MES inventory (2.47), binds them
  to AGV tooling (2.48) and calls the AGV (2.12); at the start it reports the initial WIP (2.47, not raw).
* ``Mixing``: glue making and slurry mixing (2.14-2.22): formula list, detail and version check, per-bag
  check before feeding, feeding, feeding complete, the batch code from the MES, the transfer to the tank,
  and the washing consumption every few batches.
* ``Coating``: a slurry batch (2.11) and a foil lot (2.10) make mother rolls; the code comes from the MES
  (2.23) and the meters are reported (2.24); CCD files (2.6), with 2.25 when the CCD misses the code.
* ``Converting``: rolling + slitting or die cutting: one roll in (2.11), ``split`` rolls out (2.23, 2.24).
* ``Winding``: cathode and anode rolls (2.11) and separator (2.10) make jelly rolls, reported with 2.44
  (or 2.28, as the line file chooses).
"""

from __future__ import annotations

from typing import Any

from twin.profile.casing import lower_keys
from twin.sim.equipment import Equipment, Proc
from twin.sim.material import Buffer, Unit


class Warehouse(Equipment):
    """Raw-material receiving: keeps every material the line uses in stock, lot by lot."""

    def run(self) -> Proc:
        self.go()
        yield from self._report_initial()
        period = self.cycle.mean
        while True:
            yield from self._deliver()
            yield self.env.timeout(period)

    def _report_initial(self) -> Proc:
        """At power-on, the work in progress taken over at go-live (2.47, not raw material), but for the cells
        the MES already had from its opening data (they may be announced first, hosts power on over a window)."""
        announced = self.rt.sim.announced
        units = [u for u in self.rt.initial_units if u.code not in announced]
        for start in range(0, len(units), 200):
            rows = [
                {
                    "BarCode": u.code,
                    "IsRawMaterial": False,
                    "MaterialCode": f"{u.kind.upper()}-{self.rt.line.product}",
                    "Qty": float(u.qty),
                }
                for u in units[start : start + 200]
            ]
            yield self.ask("MaterialInventory", {"BarCodeList": rows})

    def _deliver(self) -> Proc:
        lots: list[Unit] = []
        per = int(self.options["lots_per_delivery"])
        for material, need in self.rt.raw_demand.items():
            store = self.rt.raw[material]
            spec = self.catalogue.materials[material]
            target = max(per, need) + 1
            for _ in range(max(0, target - len(store.items))):
                code = self.rt.code(f"RM-{material}-")
                lots.append(Unit(code, "lot", material=material, qty=float(spec["lot_qty"])))
        if not lots:
            return
        self.made += 1
        rows = [{"BarCode": lot.code, "IsRawMaterial": True} for lot in lots]
        answer = yield self.ask("MaterialInventory", {"BarCodeList": rows})
        if not self.accepted("MaterialInventory", answer):
            self.rt.ledger.created["lot"] += len(lots)
            self.rt.ledger.held["lot"] += len(lots)
            yield from self.refused("MaterialInventory", answer)
            return
        slots = int(self.options["tooling_slots"])
        for start in range(0, len(lots), slots):
            group = lots[start : start + slots]
            if self.calls("ToolBindMaterialAsync"):
                rows = [{"Sfc": lot.code, "Location": str(n)} for n, lot in enumerate(group, 1)]
                self.tell("ToolBindMaterialAsync", {"ContainerCode": self.rt.code("AGV-TL-"), "ContainerSfcList": rows})
            if self.calls("AgvUpMaterial"):
                self.tell("AgvUpMaterial", {"TaskType": "1"})
        self.rt.ledger.created["lot"] += len(lots)
        for lot in lots:
            self.rt.raw[lot.material].put(lot)


class Mixing(Equipment):
    """Glue making or slurry mixing, one batch per cycle."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.recipe_lane = self.lane or "glue"
        self.formula = self.catalogue.formula(self.recipe_lane)
        self.glue: Unit | None = None
        self.batches = 0

    def verify(self) -> Proc:
        """Startup parameters (2.7-2.9), then the formula: list, detail, version check (2.14-2.16)."""
        yield from super().verify()
        while True:
            listing = yield from self.exchange("FormulaListGet", {"ProductCode": self.rt.line.product})
            if listing is None:
                continue
            rows = [
                lower_keys(r)
                for r in (listing.data if isinstance(listing.data, list) else [listing.data])
                if isinstance(r, dict)
            ]
            # A mixer of one polarity takes its own formula of the list (both polarities are slurry_mixing).
            row = next((r for r in rows if r.get("formulacode") == self.formula["code"]), rows[0] if rows else {})
            code = str(row.get("formulacode") or self.formula["code"])
            detail = yield from self.exchange("FormulaDetailGet", {"FormulaCode": code})
            if detail is None:
                continue
            versions = detail.data if isinstance(detail.data, list) else [detail.data]
            version = str((versions[0] or {}).get("version") or self.formula["version"]) if versions else "V1.0"
            if (yield from self.exchange("FormulaVersionExamine", {"FormulaCode": code, "Version": version})):
                return

    def run(self) -> Proc:
        batch_kg = float(self.options["batch_kg"])
        while True:
            if not self.moving or self.changeover_due:
                yield from self.resume()
            parents: list[Unit] = []
            glue_lanes = self.options["glue_lanes"]
            if self.input is not None and (not glue_lanes or self.lane in glue_lanes):
                glue = yield from self._glue(float(self.options["glue_kg"]))
                parents.append(glue)
            for material, kg in self.formula["ingredients"].items():
                lots = yield from self._charge(material, float(kg))
                parents.extend(lots)
            self.tell(
                "FeedingCompleted",
                {
                    "BeforeFeedingQty": round(self.rng.uniform(80, 160), 1),
                    "AfterFeedingQty": round(batch_kg + self.rng.uniform(80, 160), 1),
                },
            )
            yield self.env.timeout(self.cycle.draw(self.rng))
            self.made += 1
            yield from self._output(batch_kg, parents)
            self.batches += 1
            if self.batches % int(self.options["wash_every"]) == 0:
                yield from self._wash()

    def _glue(self, kg: float) -> Proc:
        """Draw glue from the loaded glue batch, taking the next one from the glue tanks when it runs out."""
        glue = self.glue
        if glue is None or glue.qty < kg:
            if glue is not None:
                self.consume(glue)
            glue = yield from self.take(self.input)  # type: ignore[arg-type]
            self.inside.add(glue)
            self.glue = glue
        glue.qty -= kg
        values = {
            "ConsumeEquipmentCode": self.code,
            "ConsumeResourceCode": self.resource,
            "ConsumeSfcList": [{"Sfc": glue.code, "Qty": kg, "Category": "GLUE"}],
        }
        self.tell("ConsumeEqu", values)
        return glue

    def _charge(self, material: str, kg: float) -> Proc:
        """Check the bags about to be fed (2.17), then feed them (2.18): lots are drawn until ``kg`` is reached."""
        used: list[tuple[Unit, float]] = []
        need = kg
        while need > 1e-9:
            lot = self.loaded.get(material)
            if lot is None:
                lot = yield from self._pick_lot(material)
            take = min(need, lot.qty)
            lot.qty -= take
            need -= take
            used.append((lot, take))
            if lot.qty <= 1e-9:
                del self.loaded[material]
                self.rt.ledger.consumed["lot"] += 1
        values = {
            "ConsumeEquipmentCode": self.code,
            "ConsumeResourceCode": self.resource,
            "ConsumeSfcList": [{"Sfc": lot.code, "Qty": round(q, 3), "Category": material} for lot, q in used],
        }
        self.tell("ConsumeEqu", values)
        return [lot for lot, _ in used]

    def _pick_lot(self, material: str) -> Proc:
        """The next bag of ``material``, checked against the formula before it is fed (2.17)."""

        def values(lot: Unit) -> dict[str, Any]:
            return {"ConsumeEquipmentCode": self.code, "ConsumeResourceCode": self.resource, "SfcList": [lot.code]}

        return (yield from self.load_lot(material, "ConsumeEquBeforeCheck", values))

    def _output(self, batch_kg: float, parents: list[Unit]) -> Proc:
        while True:
            answer = yield self.ask("OutputEqu")
            data = answer.data
            code = data.get("sfc") or data.get("Sfc") if isinstance(data, dict) else data
            if self.accepted("OutputEqu", answer) and code:
                break
            yield from self.refused("OutputEqu", answer)
        kind = "glue" if self.recipe_lane == "glue" else "slurry"
        batch = Unit(str(code), kind, tuple(parents), lane=self.lane, qty=batch_kg)
        self.rt.ledger.created[kind] += 1
        self.inside.add(batch)
        self.n_good += 1
        if self.calls("BatchMove"):
            tank = f"{self.rt.line.tag}-TANK-{self.recipe_lane.upper()}"
            self.tell(
                "BatchMove",
                {"Sfc": batch.code, "EquipmentCodeOut": self.code, "EquipmentCodeIn": tank, "Qty": batch_kg},
            )
        yield from self.give(batch)

    def _wash(self) -> Proc:
        material = self.catalogue.wash_material(self.recipe_lane)
        if not material or not self.calls("ConsumeInNonProductionEqu"):
            return
        kg = float(self.options["wash_kg"])
        lot = self.loaded.get(material)
        if lot is None or lot.qty < kg:
            lot = yield from self._pick_lot(material)
        lot.qty -= kg
        self.tell(
            "ConsumeInNonProductionEqu",
            {
                "ConsumeEquipmentCode": self.code,
                "ConsumeResourceCode": self.resource,
                "ConsumeSfcList": [{"Sfc": lot.code, "Qty": kg, "Category": material}],
            },
        )


class RollMaker(Equipment):
    """Shared by coating and converting: roll codes from the MES, meters report, files, AGV down."""

    def make_rolls(self, meters: float, split: int, parents: tuple[Unit, ...]) -> Proc:
        while True:
            answer = yield self.ask("GenerateSfc", {"Qty": split})
            codes = _codes(answer.data)
            if self.accepted("GenerateSfc", answer) and len(codes) >= split:
                break
            yield from self.refused("GenerateSfc", answer)
        rolls = []
        each = meters  # slitting cuts across the width: every daughter roll is as long as the mother roll
        for code in codes[:split]:
            ng_m = round(each * self.rng.uniform(0, 2 * float(self.options["meter_ng_rate"])), 1)
            ok_m = round(each - ng_m, 1)
            values: dict[str, Any] = {
                "Sfc": code,
                "TotalQty": round(each, 1),
                "OkQty": ok_m,
                "NgQty": ng_m,
                "SplitQty": split,
                "OutputType": str(self.options["output_type"]),
                "ParamList": self.product_values(True),
            }
            if ng_m > 0:
                values["NgList"] = [{"NgCode": self.ng_code(), "Qty": ng_m}]
            answer = yield self.ask("OutboundMetersReport", values)
            roll = Unit(code, "roll", parents, lane=self.lane, qty=ok_m)
            self.rt.ledger.created["roll"] += 1
            self.inside.add(roll)
            if not self.accepted("OutboundMetersReport", answer):
                self.hold_back(roll)
                yield from self.refused("OutboundMetersReport", answer)
                continue
            rolls.append(roll)
        self._files(rolls)
        for roll in rolls:
            self.n_good += 1
            yield from self.agv("AgvDownMaterial")
            yield from self.give(roll)

    def _files(self, rolls: list[Unit]) -> None:
        if not rolls:
            return
        if self.calls("CcdGetBarcode") and self.rng.random() < float(self.options.get("ccd_anomaly_rate", 0.0)):
            self.tell("CcdGetBarcode")  # the CCD could not read the roll code from the coater
        when = self.stamp()
        day = when[:10].replace("-", "")
        if self.calls("CcdFileUploadComplete"):
            rows = [
                {
                    "Sfc": r.code,
                    "Passed": 1,
                    "CollectionTime": when,
                    "UriList": [
                        {"Uri": f"ftp://10.20.1.15/ccd/{self.code}/{day}/{r.code}_CCD.csv", "Passed": 1},
                        {"Uri": f"ftp://10.20.1.15/density/{self.code}/{day}/{r.code}_MD.csv", "Passed": 1},
                    ],
                }
                for r in rolls
            ]
            self.tell("CcdFileUploadComplete", {"SfcList": rows})
        if self.calls("EquFileUpload"):
            for r in rolls:
                self.tell(
                    "EquFileUpload",
                    {"Type": 1, "Sfc": r.code, "Passed": 1, "CollectionTime": when, "FormCollection": None},
                )


def _codes(data: Any) -> list[str]:
    """Roll codes in either answer shape of 2.23 (``{sfcList: [...]}`` or a bare list)."""
    if isinstance(data, dict):
        data = lower_keys(data).get("sfclist")
    return [str(c) for c in data] if isinstance(data, list) else []


class Coating(RollMaker):
    """Coats slurry onto foil: one mother roll per cycle."""

    def run(self) -> Proc:
        per_roll = float(self.options["slurry_kg_per_roll"])
        roll_m = float(self.options["roll_m"])
        slurry: Unit | None = None
        while True:
            while slurry is None or slurry.qty < per_roll - 1e-9:
                if slurry is not None:
                    self.consume(slurry)
                slurry = yield from self.take(self.input)  # type: ignore[arg-type]
                self.inside.add(slurry)
                if not (yield from self.half_feed(slurry)):
                    slurry = None
            if not self.moving or self.changeover_due:
                yield from self.resume()
            yield from self.agv("AgvUpMaterial")
            lots = []
            for material, qty in self.consumes:
                lots.append((yield from self.feed(material, qty)))
            slurry.qty -= per_roll
            yield self.env.timeout(self.cycle.draw(self.rng))
            self.made += 1
            yield from self.make_rolls(roll_m, 1, (slurry, *lots))


class Converting(RollMaker):
    """Rolling + slitting or die cutting: one roll in, ``split`` rolls out."""

    def run(self) -> Proc:
        split = int(self.options["split"])
        while True:
            yield from self.agv("AgvUpMaterial")
            roll = yield from self.take(self.input)  # type: ignore[arg-type]
            self.inside.add(roll)
            if not (yield from self.half_feed(roll)):
                continue
            if not self.moving or self.changeover_due:
                yield from self.resume()
            yield self.env.timeout(self.cycle.draw(self.rng))
            self.made += 1
            self.consume(roll)
            yield from self.make_rolls(roll.qty, split, (roll,))


class Winding(Equipment):
    """Winds jelly rolls from one cathode and one anode roll and the separator."""

    takes_lanes = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        spec = self.rt.line.buffers[self.station.input or ""]
        self.inputs: dict[str, Buffer] = {lane: self.rt.buffer_for(spec.id, lane) for lane in spec.lanes}
        self.rolls: dict[str, Unit | None] = dict.fromkeys(self.inputs)
        self.report = "CollingPolar" if self.calls("CollingPolar") else "Outbound"

    def _load(self, lane: str, need_m: float) -> Proc:
        roll = self.rolls[lane]
        while roll is None or roll.qty < need_m - 1e-9:
            if roll is not None:
                self.consume(roll)
            yield from self.agv("AgvUpMaterial")
            roll = yield from self.take(self.inputs[lane])
            self.inside.add(roll)
            if not (yield from self.half_feed(roll)):
                roll = None
        self.rolls[lane] = roll
        roll.qty -= need_m
        return roll

    def run(self) -> Proc:
        m_per_unit = float(self.options["m_per_unit"])
        while True:
            parents = []
            for lane in self.inputs:
                parents.append((yield from self._load(lane, m_per_unit)))
            if not self.moving or self.changeover_due:
                yield from self.resume()
            for material, qty in self.consumes:
                yield from self.feed(material, qty)
            yield self.env.timeout(self.cycle.draw(self.rng))
            self.made += 1
            passed = self.rng.random() >= self.ng_rate
            jr = Unit(self.rt.code("JR"), "jelly_roll", tuple(parents))
            self.rt.ledger.created["jelly_roll"] += 1
            self.inside.add(jr)
            ng = [] if passed else [self.ng_code()]
            if self.report == "CollingPolar":
                values: dict[str, Any] = {"Sfc": jr.code, "Passed": int(passed), "NgList": ng}
            else:
                values = {
                    "Sfc": jr.code,
                    "Passed": int(passed),
                    "ParamList": self.product_values(passed),
                    "BindFeedingCodeList": [p.code for p in parents],
                    "NgList": ng,
                }
            answer = yield self.ask(self.report, values)
            if not self.accepted(self.report, answer):
                self.hold_back(jr)
                yield from self.refused(self.report, answer)
                continue
            if passed:
                self.n_good += 1
                yield from self.give(jr)
            else:
                self.scrap(jr)
