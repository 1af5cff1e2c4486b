"""The opening WIP: products already inside the line when the MES takes over (a go-live's data load).

A warm run of the twin starts with cells inside ovens, aging racks and formation chambers. A real MES is
told about such work in progress when it goes live; the embedded MES takes it on
``POST /admin/opening-wip`` ``{"equipment": "A02-BAKE-03", "cells": ["W...", ...], "tray": "TP-BK-000012"}``:
each cell becomes a product inside that equipment's route step (its inbound done, its outbound due),
bound to the tray if one is given, and the tray is "in" there. Everything afterwards (tray out, the next
inbound, binding, sorting) goes through the spec's interfaces and rules as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from twin.mes.guard import read_admin_json
from twin.mes.service import MES, Mes
from twin.mes.state import Unit
from twin.mes.store import Tx


class OpeningRefused(ValueError):
    """The opening WIP names an equipment or product the MES cannot place."""


async def load_opening(mes: Mes, doc: Any) -> int:
    """Register the cells of one equipment; returns how many were new."""
    if not isinstance(doc, dict) or not isinstance(doc.get("equipment"), str) or not isinstance(doc.get("cells"), list):
        raise OpeningRefused('expected {"equipment": CODE, "cells": [CODE, ...], "tray"?: CODE}')
    equipment, tray_code = doc["equipment"], doc.get("tray")
    if tray_code is not None and not isinstance(tray_code, str):
        raise OpeningRefused(f"tray must be a tray code, got {tray_code!r}")
    route = mes.plant.route_of(equipment)
    place = route.place(equipment)
    if place is None or place.step is None:
        raise OpeningRefused(f"equipment {equipment!r} is not a route station of line {mes.plant.names}")
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    tx, added = Tx(), 0
    tray = mes.state.tray(tray_code) if isinstance(tray_code, str) and tray_code else None
    electrolyte = doc.get("electrolyte")
    if electrolyte is not None:  # the batch already in a filler's tank (3.2 sent before the go-live)
        if not isinstance(electrolyte, str) or not electrolyte:
            raise OpeningRefused(f"electrolyte must be a batch code, got {electrolyte!r}")
        equip = mes.state.equip(equipment)
        equip.electrolyte = electrolyte
        equip.save(tx)
    first = mes.data.first_injection
    injected = [s.index for s in route.steps if s.process == first.get("process")]
    filled = (
        {"final_el": float(first.get("opening_final_el", 0.0)), "source": "opening WIP"}
        if injected and place.step.index > injected[0]
        else None
    )
    for n, code in enumerate(doc["cells"], start=1):
        if not isinstance(code, str) or not code or mes.state.unit(code) is not None:
            continue
        unit = Unit(
            sfc=code,
            kind="cell",
            product=mes.data.default_product,
            origins=[],
            step=place.step.index,
            phase="in",
            equipment=equipment,
            at=now,
            codes=[code],
            container=tray.code if tray is not None else "",
        )
        if filled is not None:
            unit.filling = dict(filled)
        mes.state.add_unit(unit, tx)
        if tray is not None:
            tray.cells[code] = f"{n:02d}"
        added += 1
    if tray is not None:
        tray.state, tray.equipment, tray.step, tray.at = "in", equipment, place.step.index, now
        tray.save(tx)
    await mes.store.commit(tx)
    return added


async def opening_wip(request: web.Request) -> web.Response:
    mes = request.app[MES]
    try:
        added = await load_opening(mes, await read_admin_json(request, mes.config.body_timeout_s))
    except OpeningRefused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"added": added})
