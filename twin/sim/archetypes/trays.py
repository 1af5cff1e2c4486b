"""Processes that hold many cells for hours, and sorting.

* ``Chamber``: trays in single-tray chambers (vacuum ovens, pre-formation and formation cabinets, OCV).
  With ``tray.group`` it groups loose cells into a tray: empty-tray check (2.35), per-cell check (2.36),
  binding (2.37); then tray in (2.40), the process, tray out with its parameters (2.41), NG cells picked
  and reported one by one (2.39), cell parameters (2.43, 2.46), and with ``tray.unbind`` the unbinding
  (2.38) that releases the cells; otherwise the tray goes on to the next station.
* ``Rack``: cells in racks for hours (high-temperature aging): several barcodes in and out at once (2.29,
  2.30).
* ``Sorting``: sorting rules (2.45), downgrade records (2.51), tray unbinding (2.52), and grading into
  grade trays reported with 2.53.
"""

from __future__ import annotations

from typing import Any

import simpy

from twin.profile.casing import lower_keys
from twin.sim.equipment import Equipment, Proc
from twin.sim.material import Tray, Unit


class Slots(Equipment):
    """Equipment that processes up to ``slots`` loads at once; tracks occupancy for utilisation."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.slots = max(1, self.station.slots)
        self.occupied = 0
        self._occ_area = 0.0
        self._occ_since = 0.0
        self._slot_freed: simpy.Event | None = None

    def _occupy(self, delta: int) -> None:
        now = self.env.now
        self._occ_area += self.occupied * (now - self._occ_since)
        self._occ_since = now
        self.occupied += delta
        if delta < 0 and self._slot_freed is not None and not self._slot_freed.triggered:
            self._slot_freed.succeed()

    def occupancy(self) -> float:
        """Mean fraction of slots in use since the start."""
        now = self.env.now
        area = self._occ_area + self.occupied * (now - self._occ_since)
        return area / (self.slots * now) if now > 0 else 0.0

    def free_slot(self) -> Proc:
        while self.occupied >= self.slots:
            self._slot_freed = simpy.Event(self.env)
            yield self._slot_freed

    def collect(self, size: int, check: str | None) -> Proc:
        """Take ``size`` cells from the input, each checked with ``check`` (2.36) when given.

        A load leaves full: the grouping robot waits for the next cell as long as it takes (a part-filled
        tray stays at the loading station as work in progress, as it does on a line that has stopped).
        """
        cells: list[Unit] = []
        assert self.input is not None
        while len(cells) < size:
            cell = self.input.try_get()
            if cell is None:
                if not cells and self.occupied == 0:
                    self.still("starved")
                cell = yield self.input.get()
            self.n_in += 1
            self.inside.add(cell)
            if check is not None:
                answer = yield self.ask(check, {"Sfc": cell.code})
                if not self.accepted(check, answer):
                    self.hold_back(cell)
                    yield from self.refused(check, answer)
                    continue
            cells.append(cell)
        return cells

    def prefill_cells(self, n: int) -> list[Unit]:
        """Cells present at the start of a warm run (initial WIP), bound to no history."""
        cells = [Unit(self.rt.code("W"), "cell", origin="initial") for _ in range(n)]
        self.rt.add_initial(cells)
        return cells


class Chamber(Slots):
    """Tray processes: baking, pre-formation, formation, OCV."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        tray = self.station.tray
        self.size = int(tray["size"])
        self.group = bool(tray.get("group"))
        self.unbind = bool(tray.get("unbind"))
        self.pool = self.rt.pools[tray["pool"]]
        self.lock = self.rt.lock(self.station.id)  # one grouping robot per station
        self.measure = str(self.options.get("measure") or "")
        self.loading = False

    def run(self) -> Proc:
        self._prefill()
        while True:
            yield from self.free_slot()
            if self.until_up() is not None or self.changeover_due or (self.needs_verify and not self.moving):
                yield from self.resume()
            tray = yield from (self._group() if self.group else self._take_tray())
            if tray is None:
                continue
            answer = yield self.ask("InboundInContainer", {"ContainerCode": tray.code})
            if not self.accepted("InboundInContainer", answer):
                self._drop_tray(tray)
                yield from self.refused("InboundInContainer", answer)
                continue
            if not self.moving:
                self.go()
            self._occupy(+1)
            self.env.process(self._cure(tray, self.cycle.draw(self.rng)))

    def _prefill(self) -> None:
        if self.rt.cold or self.station.prefill <= 0:
            return
        for _ in range(round(self.station.prefill * self.slots)):
            if not self.pool.items:
                break
            tray = self.pool.items.popleft()
            tray.cells = self.prefill_cells(self.size)
            self.rt.sim.opening(self.code, tray.cells, tray.code)
            self.inside.update(tray.cells)
            self._occupy(+1)
            self.env.process(self._cure(tray, self.rng.uniform(0.0, self.cycle.mean)))
        if self.occupied:
            self.go()

    def _group(self) -> Proc:
        request = self.lock.request()
        yield request
        self.loading = True
        try:
            tray = yield from self._empty_tray()
            cells = yield from self.collect(self.size, "ContainerSfcCheck")
        finally:
            self.lock.release(request)
            self.loading = False
        tray.cells = cells
        if not cells:
            self.pool.try_put(tray)
            return None
        rows = [{"Sfc": c.code, "Location": str(n)} for n, c in enumerate(cells, 1)]
        answer = yield self.ask(
            "BindContainer", {"ContainerCode": tray.code, "ContainerSfcList": rows, "OperationType": "0"}
        )
        if not self.accepted("BindContainer", answer):
            self._drop_tray(tray)
            yield from self.refused("BindContainer", answer)
            return None
        if not self.moving:
            self.go()
        return tray

    def _empty_tray(self) -> Proc:
        while True:
            tray = self.pool.try_get()
            if tray is None:
                tray = yield self.pool.get()
            answer = yield self.ask("EmptyContainerCheck", {"ContainerCode": tray.code})
            if self.accepted("EmptyContainerCheck", answer):
                return tray
            yield from self.refused("EmptyContainerCheck", answer)
            self.pool.try_put(tray)  # the tray is cleared by hand and goes round again

    def _take_tray(self) -> Proc:
        assert self.input is not None
        tray = self.input.try_get()
        if tray is None:
            if self.occupied == 0:
                self.still("starved")
            tray = yield self.input.get()
        self.n_in += len(tray.cells)
        self.inside.update(tray.cells)
        return tray

    def _drop_tray(self, tray: Tray) -> None:
        for cell in tray.cells:
            self.hold_back(cell)
        tray.cells = []
        self.pool.try_put(tray)

    def _cure(self, tray: Tray, duration_s: float) -> Proc:
        yield self.env.timeout(duration_s)
        self.made += 1
        values = {"ContainerCode": tray.code, "ParamList": self.product_values(True)}
        while True:
            answer = yield self.ask("OutboundInContainer", values)
            if self.accepted("OutboundInContainer", answer):
                break
            yield from self.refused("OutboundInContainer", answer)
        yield from self._pick_ng(tray)
        self._measure(tray)
        self._parameters(tray)
        if self.unbind:
            answer = yield self.ask(
                "UnBindContainer", {"ContainCode": tray.code, "SfcList": [c.code for c in tray.cells]}
            )
            if not self.accepted("UnBindContainer", answer):
                yield from self.refused("UnBindContainer", answer)
            cells, tray.cells = tray.cells, []
            self.pool.try_put(tray)
            for cell in cells:
                self.n_good += 1
                yield from self.give(cell)
        else:
            self.n_good += len(tray.cells)
            yield from self.give(tray)
        self._occupy(-1)
        if self.occupied == 0 and not self.loading:
            self.still("starved")

    def _pick_ng(self, tray: Tray) -> Proc:
        """NG cells are picked out of the tray and reported one by one (2.39)."""
        rate = self.ng_rate
        if not rate:
            return
        keep = []
        for cell in tray.cells:
            if self.rng.random() >= rate:
                keep.append(cell)
                continue
            if self.calls("ContainerNgReport"):
                row = {
                    "Sfc": cell.code,
                    "NgCode": self.ng_code(),
                    "NgEquipmentCode": self.code,
                    "NgResourceCode": self.resource,
                }
                yield self.ask("ContainerNgReport", {"ContainerCode": tray.code, "NgSfcList": [row]})
            self.scrap(cell)
        tray.cells = keep

    def _measure(self, tray: Tray) -> None:
        """Per-cell results of the process (capacity at formation, OCV and IR at the OCV test) kept on the cell."""
        if not self.measure:
            return
        gauss = self.rng.gauss
        for cell in tray.cells:
            for p in self.product_params:
                cell.put(p.code, round(p.nominal + gauss(0, 1) * p.spread, p.digits))  # as reported and graded

    def _parameters(self, tray: Tray) -> None:
        if not tray.cells:
            return
        when = self.stamp()
        if self.calls("ProductParam"):
            gauss = self.rng.gauss
            rows = []
            for cell in tray.cells:
                params = [
                    {"ParamCode": p.code, "ParamValue": _text(cell.get(p.code), p, gauss), "CollectionTime": when}
                    for p in self.product_params
                ]
                rows.append({"Sfc": cell.code, "ParamList": params})
            self.tell("ProductParam", {"ContainerCode": tray.code, "SfcList": rows})
        if self.calls("ProductParamSameMultSfc"):
            shared = [
                {"ParamCode": p.code, "ParamValue": p.text(self.rng.gauss(0, 1)), "CollectionTime": when}
                for p in self.params
            ]
            self.tell("ProductParamSameMultSfc", {"SfcList": [c.code for c in tray.cells], "ParamList": shared})


def _text(value: float | None, p: Any, gauss: Any) -> str:
    return p.text(gauss(0, 1)) if value is None else f"{value:.{p.digits}f}"


class Rack(Slots):
    """High-temperature aging: racks of cells in a room, several barcodes in and out at once."""

    def run(self) -> Proc:
        size = max(1, self.station.rack_size)
        if not self.rt.cold and self.station.prefill > 0:
            for _ in range(round(self.station.prefill * self.slots)):
                cells = self.prefill_cells(size)
                self.rt.sim.opening(self.code, cells, None)
                self.inside.update(cells)
                self._occupy(+1)
                self.env.process(self._age(cells, self.rng.uniform(0.0, self.cycle.mean)))
            self.go()
        while True:
            yield from self.free_slot()
            if self.until_up() is not None or self.changeover_due:
                yield from self.resume()
            cells = yield from self.collect(size, None)
            if not cells:
                continue
            answer = yield self.ask("InboundMore", {"SfcList": [c.code for c in cells]})
            refused = _refused_items(answer.data)
            if not self.accepted("InboundMore", answer) or refused:
                kept = [c for c in cells if c.code not in refused] if self.accepted("InboundMore", answer) else []
                for cell in cells:
                    if cell not in kept:
                        self.hold_back(cell)
                yield from self.refused("InboundMore", answer)
                cells = kept
                if not cells:
                    continue
            if not self.moving:
                yield from self.resume()  # after a long stop, the startup parameters are verified again first
            self._occupy(+1)
            self.env.process(self._age(cells, self.cycle.draw(self.rng)))

    def _age(self, cells: list[Unit], duration_s: float) -> Proc:
        yield self.env.timeout(duration_s)
        self.made += 1
        passed = [self.rng.random() >= self.ng_rate for _ in cells]
        rows = [
            {
                "Sfc": c.code,
                "Passed": int(ok),
                "ParamList": self.product_values(ok),
                "BindFeedingCodeList": [],
                "NgList": [] if ok else [self.ng_code()],
            }
            for c, ok in zip(cells, passed, strict=True)
        ]
        answer = yield self.ask("OutboundMore", {"SfcList": rows})
        if not self.accepted("OutboundMore", answer):
            yield from self.refused("OutboundMore", answer)
        for cell, ok in zip(cells, passed, strict=True):
            if ok:
                self.n_good += 1
                yield from self.give(cell)
            else:
                self.scrap(cell)
        self._occupy(-1)


def _refused_items(data: Any) -> set[str]:
    out = set()
    for item in data if isinstance(data, list) else ():
        if isinstance(item, dict):
            low = lower_keys(item)
            if low.get("code", 0) != 0:
                out.add(str(low.get("sfc", "")))
    return out


class Sorting(Equipment):
    """Takes formation trays, grades every cell by the MES's rules and fills grade trays."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.rules: list[dict[str, Any]] = []
        self.size = int(self.options["grade_tray_size"])
        self.grade_trays: dict[str, tuple[float, list[Unit]]] = {}  # open grade trays
        self.graded: dict[str, int] = {}

    def _load_rules(self, sfc: str | None) -> Proc:
        if not self.calls("SortingRule"):
            return
        values = (
            {"ProductCode": self.rt.line.product} if sfc is None else {"Sfc": sfc, "ProductCode": self.rt.line.product}
        )
        answer = yield from self.exchange("SortingRule", values)
        if answer is not None and isinstance(answer.data, list):
            self.rules = [lower_keys(r) for r in answer.data if isinstance(r, dict)]

    def grade(self, cell: Unit) -> str | None:
        """The worst rating over the rules' parameters; None when a value is outside every range (NG)."""
        if not self.rules:
            return "A1"
        worst: tuple[str, str] | None = None
        for code in {r["parametercode"] for r in self.rules}:
            value = cell.get(code)
            if value is None:
                continue
            rows = sorted((r for r in self.rules if r["parametercode"] == code), key=lambda r: r.get("serial", 0))
            hit = next((r for r in rows if _within(value, r)), None)
            if hit is None:
                return None
            rating = (str(hit["rating"]), str(hit.get("grade") or hit["rating"]))
            if worst is None or rating > worst:
                worst = rating
        return worst[1] if worst else "A1"

    def run(self) -> Proc:
        yield from self._load_rules(None)
        while True:
            assert self.input is not None
            tray = self.input.try_get()
            if tray is None:
                self.still("starved")
                tray = yield self.input.get()
            self.n_in += len(tray.cells)
            self.inside.update(tray.cells)
            if not self.moving or self.changeover_due:
                yield from self.resume()
            codes = [c.code for c in tray.cells]
            downgraded: dict[str, str] = {}
            if self.calls("GetSfcInfo") and codes:
                answer = yield self.ask("GetSfcInfo", {"SfcList": codes})
                for row in answer.data if isinstance(answer.data, list) else ():
                    low = lower_keys(row)
                    downgraded[str(low.get("sfc"))] = str(low.get("grade"))
            answer = yield self.ask("SortingUnBind", {"ContainCode": tray.code, "SfcList": codes})
            if not self.accepted("SortingUnBind", answer):
                yield from self.refused("SortingUnBind", answer)
            cells, tray.cells = tray.cells, []
            self.rt.pools[tray.pool].try_put(tray)
            for cell in cells:
                yield self.env.timeout(self.cycle.draw(self.rng))
                self.made += 1
                grade = downgraded.get(cell.code) or self.grade(cell)
                if grade is None:
                    self.scrap(cell)
                    continue
                cell.put("grade", grade)
                yield from self._place(cell, grade)
            yield from self._flush_old()

    def _place(self, cell: Unit, grade: str) -> Proc:
        _, cells = self.grade_trays.setdefault(grade, (self.env.now, []))
        cells.append(cell)
        if len(cells) >= self.size:
            yield from self._ship(grade)

    def _flush_old(self) -> Proc:
        limit = float(self.options["grade_timeout_s"])
        for grade in [g for g, (since, _) in self.grade_trays.items() if self.env.now - since >= limit]:
            yield from self._ship(grade)

    def _ship(self, grade: str) -> Proc:
        _, cells = self.grade_trays.pop(grade)
        code = self.rt.code("GT-")
        rows = [{"Sfc": c.code, "Location": str(n)} for n, c in enumerate(cells, 1)]
        avg = sum(float(c.get("OCV3", 3.29)) for c in cells) / len(cells)
        values = {
            "ContainerCode": code,
            "Passed": 1,
            "Grade": grade,
            "ContainerSfcList": rows,
            "ParamList": [{"ParamCode": "SORT_OCV_AVG", "ParamValue": f"{avg:.4f}", "CollectionTime": self.stamp()}],
        }
        answer = yield self.ask("SortingOutbound", values)
        if not self.accepted("SortingOutbound", answer):
            for cell in cells:
                self.hold_back(cell)
            yield from self.refused("SortingOutbound", answer)
            return
        self.graded[grade] = self.graded.get(grade, 0) + len(cells)
        for cell in cells:
            self.n_good += 1
            yield from self.give(cell)


def _within(value: float, rule: dict[str, Any]) -> bool:
    lo, hi = float(rule["minvalue"]), float(rule["maxvalue"])
    above = value >= lo if int(rule.get("mincontainingtype", 2)) == 2 else value > lo
    below = value <= hi if int(rule.get("maxcontainingtype", 1)) == 2 else value < hi
    return above and below
