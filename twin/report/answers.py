"""The page's first answer: is the MES fast enough for this line?

Three figures an MES team acts on, before any full table: the output the line lost to MES latency (against
the offline model of the same seed), the slowest interfaces by p99 as the spec names them (section,
operation, Chinese title), and the failures by code with what each code means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from twin.report.kpis import fmt
from twin.report.spec import SpecNames, meaning
from twin.report.tables import InterfaceRow

SLOWEST = 10
#: An interface this slow at p99 (ms) is marked on the page: a host waiting this long misses takt.
SLOW_P99_MS = 100.0


def _ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f} ms" if x >= 1000 else f"{x:.3g} ms"


def _pct(x: float) -> str:
    return "0 %" if x == 0 else f"{x * 100:.3g} %"


def slowest(rows: Sequence[InterfaceRow], spec: SpecNames, n: int = SLOWEST) -> list[dict[str, Any]]:
    """The ``n`` interfaces with the highest p99 latency from the intended send time, slowest first."""
    ranked = sorted((r for r in rows if r.count), key=lambda r: (-(r.latency.get(99.0) or 0.0), r.name))
    out = []
    for r in ranked[:n]:
        name = spec.of(r.name)
        p99 = r.latency.get(99.0) or 0.0
        out.append(
            {
                "section": name.section or "—",
                "name": r.name,
                "name_cn": name.name_cn or "—",
                "count": fmt(r.count),
                "p50": _ms(r.latency.get(50.0)),
                "p99": _ms(p99),
                "service_p99": _ms(r.service.get(99.0)),
                "max": _ms(r.latency.max),
                "error_rate": _pct(r.error_rate),
                "slow": p99 >= SLOW_P99_MS,
                "failed": r.failures > 0,
            }
        )
    return out


def errors_by_code(rows: Sequence[InterfaceRow], spec: SpecNames, *, embedded: bool) -> list[dict[str, Any]]:
    """Every failing outcome: how often, share of all exchanges, where, and what it means."""
    total = sum(r.count for r in rows)
    counts: Counter[str] = Counter()
    where: dict[str, Counter[str]] = {}
    for r in rows:
        for outcome, n in r.errors:
            counts[outcome] += n
            where.setdefault(outcome, Counter())[r.name] += n
    out = []
    for outcome, n in counts.most_common():
        places = where[outcome].most_common()
        shown = [f"{spec.of(op).section or ''} {op} ({fmt(k)})".strip() for op, k in places[:4]]
        out.append(
            {
                "code": outcome,
                "count": fmt(n),
                "share": _pct(n / total if total else 0.0),
                "interfaces": ", ".join(shown) + (f" and {len(places) - 4} more" if len(places) > 4 else ""),
                "meaning": meaning(outcome, embedded=embedded),
            }
        )
    return out


def output_cost(cost: Any) -> dict[str, str] | None:
    """Output lost to MES latency, from either spelling a run writes (see ``twin.report.extras``)."""
    if not isinstance(cost, Mapping):
        return None if cost is None else {"lost": fmt(cost), "of": "", "share": ""}
    if "cost_cells" in cost or "good_cells_offline" in cost:  # twin run: offline_compare
        lost, ideal, pct = cost.get("cost_cells"), cost.get("good_cells_offline"), cost.get("cost_pct")
        share = f"{pct:.3g} %" if isinstance(pct, int | float) else ("—" if not ideal else "0 %")
    else:  # output_cost_of_mes_latency
        lost, ideal = cost.get("cells_lost"), cost.get("offline_model_cells_out")
        share = _pct(float(cost["share"])) if isinstance(cost.get("share"), int | float) else "—"
    return {"lost": fmt(lost), "of": fmt(ideal), "share": share}


def headline(
    cost: dict[str, str] | None, top: Sequence[dict[str, Any]], total: InterfaceRow, wall_s: float
) -> list[str]:
    """Two or three sentences: what the line lost, how the MES answered, and its slowest interface."""
    out = []
    if cost is not None and cost["of"] in ("0", "—"):
        out.append(
            "Neither the line nor the offline model of the same seed made a good cell in this run: it is too short "
            "to tell what MES latency costs in output."
        )
    elif cost is not None and cost["of"]:
        if cost["lost"] in ("0", "—") or cost["lost"].startswith("-"):
            out.append(f"The line lost no output to MES latency: {cost['of']} good cells, as the offline model made.")
        else:
            out.append(
                f"The line lost {cost['lost']} good cells ({cost['share']}) to MES latency against the offline "
                f"model of the same seed ({cost['of']})."
            )
    p50, p99 = total.latency.get(50.0), total.latency.get(99.0)
    out.append(
        f"The MES answered {fmt(total.count)} exchanges ({total.rate_per_s:.3g} per wall second): p50 {_ms(p50)}, "
        f"p99 {_ms(p99)}, {_pct(total.error_rate)} failed."
    )
    if top:
        s = top[0]
        out.append(f"Slowest at p99: {s['section']} {s['name']} {s['name_cn']} at {s['p99']}.")
    return out
