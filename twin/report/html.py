"""The page: a view of the report's figures, rendered by the Jinja2 template into one self-contained file.

Everything a person reads is formatted here (thousands separators, 3 significant digits for ms, percent
for rates); the template only lays it out. Images are embedded as base64 and a Content-Security-Policy
forbids any other source, so the file opens the same from a mail attachment as from the run folder.
"""

from __future__ import annotations

import base64
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2

from twin import __version__
from twin.report.image import Plot
from twin.report.kpis import Table, fmt
from twin.report.slo import Check, Verdict
from twin.report.tables import InterfaceRow

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("twin.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fmt_ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def fmt_rate(x: float) -> str:
    return "0" if x == 0 else f"{x * 100:.3g} %"


def fmt_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{seconds:.3g} s"
    h, rest = divmod(s, 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


def row_view(r: InterfaceRow, section: str = "", name_cn: str = "") -> dict[str, Any]:
    pcts = (50.0, 90.0, 99.0, 99.9)
    shown = [f"{k}: {fmt(n)} ({fmt_rate(n / r.count)})" for k, n in r.errors[:4]]  # the error rate, by code
    errors = " · ".join(shown) + (" · …" if len(r.errors) > 4 else "")
    return {
        "name": r.name,
        "section": section,
        "name_cn": name_cn,
        "group": r.group,
        "count": fmt(r.count),
        "rate": fmt(r.rate_per_s),
        "failures": r.failures,
        "error_rate": fmt_rate(r.error_rate),
        "errors": errors,
        "latency": [fmt_ms(r.latency.get(p)) for p in pcts] + [fmt_ms(r.latency.max)],
        "service": [fmt_ms(r.service.get(p)) for p in pcts] + [fmt_ms(r.service.max)],
        "late_starts": fmt(r.late_starts),
    }


def _check_view(c: Check) -> dict[str, Any]:
    result, css = {True: ("met", "ok"), False: ("NOT MET", "bad"), None: ("not checked", "")}[c.passed]
    op = "≥" if c.metric == "min_rate_per_s" else "≤"
    return {
        "objective": c.objective,
        "target": c.target,
        "metric": c.what,
        "limit": f"{op} {c.show(c.limit)}",
        "actual": c.show(c.actual) if c.actual is not None else "—",
        "result": f"{result}: {c.note}" if c.note else result,
        "css": css,
    }


def verdict_view(v: Verdict, slo_title: str | None) -> dict[str, Any]:
    word, css = ("NO SLO", "none") if v.slo_file is None else (("PASS", "pass") if v.met else ("FAIL", "fail"))
    mark = {"pass": "✔ ", "fail": "✘ ", "none": ""}[css]
    return {
        "word": word,
        "css": css,
        "headline": mark + v.headline(),
        "slo_title": slo_title,
        "failed": [c.describe() for c in v.failed],
        "checks": [_check_view(c) for c in v.checks],
    }


def _with_ms(x: float | None) -> str:
    text = fmt_ms(x)
    return text if text == "—" else f"{text} ms"


def traffic_cards(total: InterfaceRow, wall_s: float, virtual_s: float | None) -> list[tuple[str, str, bool]]:
    """The run's traffic in a few cards, each value with its unit."""
    late = f"{fmt(total.late_starts)} ({fmt_rate(total.late_starts / total.count)})" if total.count else "0"
    cards = [
        ("exchanges", fmt(total.count), False),
        ("requests per wall second", f"{total.rate_per_s:,.3g} req/s", False),
        ("error rate", fmt_rate(total.error_rate), total.failures > 0),
        ("p50 latency", _with_ms(total.latency.get(50.0)), False),
        ("p99 latency", _with_ms(total.latency.get(99.0)), False),
        ("p99.9 latency", _with_ms(total.latency.get(99.9)), False),
        ("max latency", _with_ms(total.latency.max), False),
        ("p99 service time", _with_ms(total.service.get(99.0)), False),
        ("late starts (sent > 5 ms late)", late, False),
        ("wall time of the run", fmt_duration(wall_s), False),
    ]
    if virtual_s is not None:
        cards.append(("virtual time of the line", fmt_duration(virtual_s), False))
    return cards


def fmt_started(text: str) -> str:
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return str(text)


def interlock_table(items: Sequence[Mapping[str, Any]]) -> Table:
    by_code: dict[str, list[Mapping[str, Any]]] = {}
    for i in items:
        by_code.setdefault(str(i.get("code", "?")), []).append(i)
    rows = []
    for code, group in sorted(by_code.items()):
        times = [float(i["reaction_s"]) for i in group if isinstance(i.get("reaction_s"), int | float)]
        outcomes = Counter(str(i.get("outcome", "")) for i in group)
        rows.append(
            [
                code,
                fmt(len(group)),
                fmt(len({i.get("equipment") for i in group})),
                fmt(len(times)),
                fmt(statistics.median(times)) if times else "—",
                fmt(max(times)) if times else "—",
                ", ".join(f"{k}: {n}" for k, n in outcomes.most_common()),
            ]
        )
    cols = ["code", "sent", "equipment", "stopped", "median reaction (s)", "max reaction (s)", "outcomes"]
    return Table("", cols, rows)


def outage_table(items: Sequence[Mapping[str, Any]], origin: float | None, drained: Sequence[str] | None) -> Table:
    """One row per outage: when, how long, what the run recorded, and the drain measured from the log."""
    rows = []
    for i, o in enumerate(items):
        start, end = o.get("start_wall"), o.get("end_wall")
        at = fmt_duration(start - origin) if isinstance(start, int | float) and origin else "—"
        length = fmt_duration(end - start) if isinstance(start, int | float) and isinstance(end, int | float) else "—"
        log = drained[i] if drained is not None else "— (no exchange log)"
        reason, queued, most = fmt(o.get("reason")), fmt(o.get("queued")), fmt(o.get("backlog_max"))
        rows.append([str(i + 1), at, length, reason, queued, most, fmt(o.get("drain_s")), log])
    cols = ["#", "starts after (wall)", "lasted (wall)", "why", "queued", "backlog max"]
    cols.append("drain (s, as the run recorded)")
    return Table("", [*cols, "drain (s, from the exchange log)"], rows)


def plot_view(p: Plot) -> dict[str, str]:
    return {"name": p.name, "title": p.title, "caption": p.caption, "b64": base64.b64encode(p.png).decode("ascii")}


def render_template(name: str, **context: Any) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _ENV.get_template(name).render(**context, generated=generated, version=__version__)


def render(context: Mapping[str, Any], plots: Sequence[Plot]) -> str:
    return render_template("report.html.j2", **context, plots=[plot_view(p) for p in plots])
