"""Compare two runs: what got better or worse per interface, both percentile spectra on one plot.

A change counts as a regression when it is worse than ``threshold_pct`` percent and also larger than a
noise floor (1 ms for latency, 0.1 percentage point for the error rate), and only for interfaces with at
least ``MIN_COUNT`` exchanges in both runs: a p99 of twelve samples is not evidence. Throughput counts
as worse when it drops (the same load should get the same answers per second).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import TwinError
from twin.report.groups import ALL, busiest, merged, partition
from twin.report.html import fmt_ms, fmt_rate, plot_view, render_template
from twin.report.image import Plot
from twin.report.kpis import fmt
from twin.report.plotbase import DPI, colours, png
from twin.report.plots import spectrum_axes
from twin.report.rundata import RunData, load_run
from twin.report.slo import load_slo
from twin.report.tables import InterfaceRow, group_rows, interface_rows

MIN_COUNT = 100
FLOOR = {"latency": 1.0, "error_rate": 0.001, "rate": 0.0}
#: metric -> (kind, how to read it from a row, True when higher is worse)
METRICS: dict[str, tuple[str, Any, bool]] = {
    "rate_per_s": ("rate", lambda r: r.rate_per_s, False),
    "error_rate": ("error_rate", lambda r: r.error_rate, True),
    "p50_ms": ("latency", lambda r: r.latency.get(50.0), True),
    "p99_ms": ("latency", lambda r: r.latency.get(99.0), True),
    "p999_ms": ("latency", lambda r: r.latency.get(99.9), True),
    "service_p99_ms": ("latency", lambda r: r.service.get(99.0), True),
}


class RegressionFound(TwinError):
    """The new run is worse than the base beyond the threshold: a failed check, exit 1."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Delta:
    interface: str
    metric: str
    base: float | None
    new: float | None
    change_pct: float | None
    verdict: str  # "worse", "better", or "" (within threshold, or not comparable)


@dataclass(slots=True)
class Comparison:
    base: str
    new: str
    threshold_pct: float
    deltas: list[Delta] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    rows: dict[str, tuple[InterfaceRow | None, InterfaceRow | None]] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.verdict == "worse"]

    @property
    def improvements(self) -> list[Delta]:
        return [d for d in self.deltas if d.verdict == "better"]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "new": self.new,
            "threshold_pct": self.threshold_pct,
            "regressions": len(self.regressions),
            "improvements": len(self.improvements),
            "only_base": self.only_base,
            "only_new": self.only_new,
            "deltas": [asdict(d) for d in self.deltas],
        }


def judge(metric: str, base: float | None, new: float | None, threshold_pct: float, comparable: bool) -> Delta:
    kind, _, higher_is_worse = METRICS[metric]
    if base is None or new is None:
        return Delta("", metric, base, new, None, "")
    change = (new - base) / base * 100 if base else (0.0 if new == base else None)
    worse_by = (new - base) if higher_is_worse else (base - new)
    beyond = abs(worse_by) > FLOOR[kind] and (change is None or abs(change) > threshold_pct)
    verdict = ("worse" if worse_by > 0 else "better") if comparable and beyond else ""
    return Delta("", metric, base, new, change, verdict)


def _rows(run: RunData) -> dict[str, InterfaceRow]:
    stats = run.interfaces()
    rows = {r.name: r for r in interface_rows(stats, run.wall_s, {})}
    rows[ALL] = group_rows(stats, run.wall_s, {})[-1]
    return rows


def compare_runs(base_dir: str | Path, new_dir: str | Path, *, threshold_pct: float = 10.0) -> Comparison:
    base, new = load_run(base_dir), load_run(new_dir)
    b_rows, n_rows = _rows(base), _rows(new)
    out = Comparison(base.name, new.name, threshold_pct)
    out.only_base = sorted(set(b_rows) - set(n_rows))
    out.only_new = sorted(set(n_rows) - set(b_rows))
    names = [ALL, *sorted((set(b_rows) & set(n_rows)) - {ALL}, key=lambda n: -n_rows[n].count)]
    for name in names:
        b, n = b_rows[name], n_rows[name]
        out.rows[name] = (b, n)
        comparable = min(b.count, n.count) >= MIN_COUNT
        for metric, (_, read, _) in METRICS.items():
            d = judge(metric, read(b), read(n), threshold_pct, comparable)
            out.deltas.append(Delta(name, d.metric, d.base, d.new, d.change_pct, d.verdict))
    return out


def spectra_plot(base: RunData, new: RunData) -> Plot:
    """Base (dashed) and new (solid) latency spectra, one panel for everything and one per group."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    copy = new.path / "slo.yaml"
    stats_b, stats_n = base.interfaces(), new.interfaces()
    slo_groups = load_slo(copy).groups if copy.is_file() else None
    groups = partition(stats_n, slo_groups) if slo_groups else busiest(stats_n)
    panels = [(ALL, list(stats_n) + list(stats_b)), *((g, m) for g, m in groups.items() if m)][:8]
    cols = 2
    nrows = int(np.ceil(len(panels) / cols))
    fig = Figure(figsize=(10, 3.0 * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    col = colours([g for g, _ in panels])
    for ax, (name, members) in zip(axes, panels, strict=False):
        series = [
            (f"base {base.name}", merged(stats_b, members).latency, col[name], "--", 1.2),
            (f"new {new.name}", merged(stats_n, members).latency, col[name], "-", 2.0),
        ]
        spectrum_axes(ax, series)
        ax.set_title(name)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("Latency percentile spectra: base (dashed) and new (solid)", fontweight="bold")
    return Plot("compare_spectra", "Percentile spectra of both runs", "Dashed: base run; solid: new run.", png(fig))


def table_view(c: Comparison) -> list[dict[str, Any]]:
    """Rows for the page: per interface, each metric as base, new, change and verdict."""
    show = {"rate_per_s": lambda v: fmt(v), "error_rate": fmt_rate}
    out = []
    for name, (b, n) in c.rows.items():
        cells = []
        for d in (d for d in c.deltas if d.interface == name):
            f = show.get(d.metric, fmt_ms)
            change = "" if d.change_pct is None else f"{d.change_pct:+.1f} %"
            cells.append(
                {
                    "base": "—" if d.base is None else f(d.base),
                    "new": "—" if d.new is None else f(d.new),
                    "change": change,
                    "verdict": d.verdict,
                }
            )
        out.append({"name": name, "count": f"{fmt(b.count if b else 0)} → {fmt(n.count if n else 0)}", "cells": cells})
    return out


def write_comparison(c: Comparison, base_dir: str | Path, new_dir: str | Path, out: Path) -> Path:
    """``compare.html`` (self-contained, with the spectra plot) and ``compare.json`` beside it."""
    plot = spectra_plot(load_run(base_dir), load_run(new_dir))
    html = render_template(
        "compare.html.j2",
        c=c,
        rows=table_view(c),
        metrics=list(METRICS),
        threshold=c.threshold_pct,
        min_count=MIN_COUNT,
        plot=plot_view(plot),
        regressions=[
            f"{d.interface} {d.metric}: {_v(d.metric, d.base)} → {_v(d.metric, d.new)}" for d in c.regressions
        ],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(c.as_dict(), indent=2, default=str), encoding="utf-8")
    return out


def _v(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric == "error_rate":
        return fmt_rate(value)
    return fmt(value) + "/s" if metric == "rate_per_s" else fmt_ms(value) + " ms"


def summary_lines(c: Comparison) -> list[str]:
    lines = [f"base {c.base}  →  new {c.new}  (threshold {c.threshold_pct:g} %)"]
    if c.only_base or c.only_new:
        lines.append(f"only in base: {', '.join(c.only_base) or '-'}; only in new: {', '.join(c.only_new) or '-'}")
    if c.regressions:
        lines.append(f"WORSE: {len(c.regressions)} regression(s) beyond {c.threshold_pct:g} %:")
        lines += [
            f"  {d.interface} {d.metric}: {_v(d.metric, d.base)} → {_v(d.metric, d.new)}"
            + (f" ({d.change_pct:+.1f} %)" if d.change_pct is not None else "")
            for d in c.regressions
        ]
    else:
        lines.append(f"NO REGRESSION beyond {c.threshold_pct:g} %")
    if c.improvements:
        lines.append(
            f"better: {', '.join(f'{d.interface} {d.metric}' for d in c.improvements[:10])}"
            + (" …" if len(c.improvements) > 10 else "")
        )
    return lines
