"""The MES's own page (``GET /`` and ``/status``): WIP, requests per interface, refusals by reason,
invalid fields, the interlocks sent. The HTML skeleton is a template file (``status.html``); every
value placed in it is escaped, since codes and messages come from the equipment."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from twin.mes.counters import Counters
from twin.mes.rules import CODES

_TEMPLATE = Template(files("twin.mes").joinpath("status.html").read_text(encoding="utf-8"))


def _row(*cells: Any, numeric: tuple[int, ...] = ()) -> str:
    tds = (
        f'<td class="n">{escape(str(c))}</td>' if i in numeric else f"<td>{escape(str(c))}</td>"
        for i, c in enumerate(cells)
    )
    return "<tr>" + "".join(tds) + "</tr>"


def render(
    *,
    title: str,
    summary: str,
    metrics: Counters,
    wip: dict[str, int],
    interlocks: list[dict[str, Any]],
    faults: dict[str, Any],
) -> str:
    ops = metrics.per_operation()
    op_rows = "".join(
        _row(
            op,
            r["requests"],
            r["ok"],
            r["refused"],
            f"{r.get('p50_ms', 0):.2f}",
            f"{r.get('p99_ms', 0):.2f}",
            numeric=(1, 2, 3, 4, 5),
        )
        for op, r in ops.items()
    )
    refusal_rows = "".join(
        _row(reason, CODES.get(reason, ""), n, numeric=(1, 2)) for reason, n in sorted(metrics.refusals.items())
    )
    field_rows = "".join(_row(op, path, n, numeric=(2,)) for (op, path), n in sorted(metrics.invalid_fields.items()))
    interlock_rows = "".join(
        _row(i["id"], i["at"], i["code"], i["equipment"], i["detector"], i["outcome"], i["message"]) for i in interlocks
    )
    wip_rows = "".join(_row(k, v, numeric=(1,)) for k, v in wip.items())
    active = {k: v for k, v in faults.items() if v not in (None, {}, 0, 0.0, "code")}
    return _TEMPLATE.substitute(
        title=escape(title),
        summary=escape(summary),
        wip_rows=wip_rows,
        op_rows=op_rows or _row("no requests yet", "", "", "", "", ""),
        refusal_rows=refusal_rows or _row("none", "", ""),
        field_rows=field_rows or _row("none", "", ""),
        interlock_rows=interlock_rows or _row("none", "", "", "", "", "", ""),
        faults=escape(", ".join(f"{k}={v}" for k, v in active.items()) or "none injected"),
    )
