"""What the MES knows at a moment: products in WIP, inventory, codes handed out, trays, equipment, tokens.

It is held in memory (one event loop, so a rule checks and changes it without locks or awaits between
the two) and every change is written through ``Tx`` to the store in the same commit as the exchange
that caused it; a restart reads it back from the store's documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from twin.mes.store import Snapshot, Tx


class Doc:
    """A state object stored as one JSON document (kind + key)."""

    KIND: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    _names: ClassVar[tuple[str, ...]] = ()

    def doc(self) -> dict[str, Any]:
        names = type(self)._names or tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        type(self)._names = names
        return {name: getattr(self, name) for name in names}

    def key(self) -> str:
        return str(getattr(self, self.KEY))

    def save(self, tx: Tx) -> None:
        tx.put(self.KIND, self.key(), self.doc())


@dataclass(slots=True, eq=False)
class UnitRecord(Doc):
    """A product the route tracks: a jelly roll, then the cell its jelly rolls become."""

    KIND: ClassVar[str] = "unit"
    KEY: ClassVar[str] = "sfc"
    sfc: str
    kind: str  # jelly_roll | cell
    product: str
    origins: list[str]  # the machines that made its jelly rolls (winders)
    step: int  # index of the route step of its last move
    phase: str  # "in": visiting that step's station; "out": left it
    equipment: str
    at: str  # LocalTime of the last move
    codes: list[str] = field(default_factory=list)  # every code it answers to
    ng: bool = False
    ng_codes: list[str] = field(default_factory=list)
    ng_equipment: str = ""
    merged_into: str = ""  # a jelly roll bound into a cell
    partner: str = ""  # the jelly roll bound with it by 2.31
    top_cover: str = ""  # top-cover code bound by 2.56
    cell_code: str = ""  # cell code bound by 2.32 / 2.58
    container: str = ""  # tray it is bound to
    tray_checked: bool = False  # passed 2.36 since its last tray
    params: dict[str, str] = field(default_factory=dict)  # values the sorting and downgrade rules read
    downgrade: str = ""
    grade: str = ""
    filling: dict[str, Any] = field(default_factory=dict)  # 2.34 record
    done: bool = False  # left the last step of the route


@dataclass(slots=True, eq=False)
class Lot(Doc):
    """A material lot in inventory: received (2.47) or made here (2.20 batch, 2.23 roll)."""

    KIND: ClassVar[str] = "lot"
    KEY: ClassVar[str] = "barcode"
    barcode: str
    material: str
    qty: float
    remaining: float
    raw: bool
    source: str  # the interface that brought it in
    equipment: str
    at: str
    location: str = ""  # the tank a batch was moved to (2.21)
    tool: str = ""  # the AGV tooling it is bound to (2.48)


@dataclass(slots=True, eq=False)
class Issued(Doc):
    """A code the MES handed out or accepted as an identity (2.20, 2.23, 2.25, 2.33, 2.55, 3.2)."""

    KIND: ClassVar[str] = "code"
    KEY: ClassVar[str] = "code"
    code: str
    kind: str  # roll | batch | cell | cell24 | electrolyte_batch
    equipment: str
    operation: str
    at: str
    parent: str = ""  # the jelly roll a cell code was issued for
    used: bool = False  # bound to a product / reported


@dataclass(slots=True, eq=False)
class Tray(Doc):
    """A tray (container): free -> checked (2.35) -> bound (2.37) -> in (2.40) -> out (2.41) -> free."""

    KIND: ClassVar[str] = "tray"
    KEY: ClassVar[str] = "code"
    code: str
    state: str = "free"
    equipment: str = ""
    step: int = -1
    cells: dict[str, str] = field(default_factory=dict)  # unit key -> location
    at: str = ""
    grade: str = ""  # the grade of a sorted tray (2.53)


@dataclass(slots=True, eq=False)
class Equip(Doc):
    """What the MES knows of one equipment: presence, state, verification, loaded lots."""

    KIND: ClassVar[str] = "equipment"
    KEY: ClassVar[str] = "code"
    code: str
    online: bool = False
    heartbeat_at: str = ""
    state: str = ""
    state_at: str = ""
    down_reason: str = ""
    recipe: str = ""
    recipe_version: str = ""
    verified_at: str = ""  # "" = startup parameters not verified (or a long stop since)
    formula: str = ""
    formula_version: str = ""
    formula_at: str = ""
    fed: dict[str, float] = field(default_factory=dict)  # lots loaded by 2.10/2.11
    alarm: str = ""
    electrolyte: str = ""  # current electrolyte batch (3.2)
    pending_roll: str = ""  # roll code handed out and not yet reported (2.23/2.25 -> 2.24)


@dataclass(slots=True)
class Token:
    token: str
    user: str
    account_type: str
    equipment: str
    at: str


class MesState:
    """Every state object, by key, plus the code -> product index."""

    def __init__(self) -> None:
        self.units: dict[str, UnitRecord] = {}
        self.alias: dict[str, str] = {}
        self.lots: dict[str, Lot] = {}
        self.issued: dict[str, Issued] = {}
        self.trays: dict[str, Tray] = {}
        self.equipment: dict[str, Equip] = {}
        self.tokens: dict[str, Token] = {}
        self.tools: dict[str, dict[str, Any]] = {}  # "equipment|tool" -> used, limit, alarmed
        self.agv_tools: dict[str, list[str]] = {}  # 2.48 tooling -> lot barcodes
        self.seq: dict[str, int] = {}
        self.interlock_memory: dict[str, dict[str, Any]] = {}
        self.interlock_id = 0
        self.push_id = 0

    @classmethod
    def load(cls, snap: Snapshot) -> MesState:
        state = cls()
        docs = snap.docs
        for key, d in docs.get("unit", {}).items():
            state.units[key] = UnitRecord(**d)
        for unit in state.units.values():
            if not unit.merged_into:
                for code in unit.codes:
                    state.alias[code] = unit.sfc
        state.lots = {k: Lot(**d) for k, d in docs.get("lot", {}).items()}
        state.issued = {k: Issued(**d) for k, d in docs.get("code", {}).items()}
        state.trays = {k: Tray(**d) for k, d in docs.get("tray", {}).items()}
        state.equipment = {k: Equip(**d) for k, d in docs.get("equipment", {}).items()}
        state.tokens = {k: Token(**d) for k, d in docs.get("token", {}).items()}
        state.tools = docs.get("tool", {})
        state.agv_tools = {k: d["lots"] for k, d in docs.get("agv_tool", {}).items()}
        state.seq = {k: int(d["n"]) for k, d in docs.get("seq", {}).items()}
        state.interlock_memory = docs.get("interlock_memory", {})
        state.interlock_id = snap.max_interlock_id
        state.push_id = snap.max_push_id
        return state

    # -- look-ups ------------------------------------------------------------------------------------
    def unit(self, code: str) -> UnitRecord | None:
        key = self.alias.get(code)
        return self.units.get(key) if key is not None else None

    def equip(self, code: str) -> Equip:
        found = self.equipment.get(code)
        if found is None:
            found = self.equipment[code] = Equip(code)
        return found

    def tray(self, code: str) -> Tray:
        found = self.trays.get(code)
        if found is None:
            found = self.trays[code] = Tray(code)
        return found

    # -- changes -------------------------------------------------------------------------------------
    def add_unit(self, unit: UnitRecord, tx: Tx) -> None:
        self.units[unit.sfc] = unit
        for code in unit.codes:
            self.alias[code] = unit.sfc
        unit.save(tx)

    def add_code(self, unit: UnitRecord, code: str, tx: Tx) -> None:
        if code not in unit.codes:
            unit.codes.append(code)
        self.alias[code] = unit.sfc

    def next_seq(self, kind: str, tx: Tx) -> int:
        n = self.seq.get(kind, 0) + 1
        self.seq[kind] = n
        tx.put("seq", kind, {"n": n})
        return n

    def save_token(self, token: Token, tx: Tx) -> None:
        self.tokens[token.token] = token
        tx.put("token", token.token, {f: getattr(token, f) for f in Token.__dataclass_fields__})

    def wip(self) -> dict[str, int]:
        """Products on the route now: open jelly rolls and cells, NG, finished."""
        counts = {"jelly_rolls": 0, "cells": 0, "ng": 0, "finished": 0}
        for unit in self.units.values():
            if unit.merged_into:
                continue
            if unit.done:
                counts["finished"] += 1
            elif unit.ng:
                counts["ng"] += 1
            elif unit.kind == "cell":
                counts["cells"] += 1
            else:
                counts["jelly_rolls"] += 1
        return counts
