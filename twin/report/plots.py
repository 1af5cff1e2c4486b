"""The report's plots, each a PNG: throughput and p99 over time, percentile spectra, errors, the line's
output against MES latency, interlock reaction times, the offline backlog. A plot with nothing to show is
not drawn (the report says why). Time runs along the line's virtual time, the run's wall time on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram
from matplotlib.ticker import MaxNLocator

from twin.metrics.hdrarrays import HdrArrays
from twin.report.groups import ALL
from twin.report.image import Plot
from twin.report.plotbase import (
    colours,
    figure,
    legend_outside,
    log_scale,
    mark_controls,
    masked,
    png,
    shade,
    time_axis,
    wall_axis,
)
from twin.report.timeline import Timeline, percentile_ms

TOP_OUTCOMES = 6


def _virtual_x(t: Timeline, wall_s: np.ndarray) -> tuple[np.ndarray, float, str]:
    """Wall seconds since the first exchange as x values on a virtual-time axis, its divisor and label."""
    span = float(t.clock.virtual(t.n_buckets * t.bucket_s)) - float(t.clock.virtual(0.0))
    scale, label = time_axis(span)
    return t.clock.virtual(wall_s) / scale, scale, label


def _virtual_windows(t: Timeline, windows: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(float(t.clock.virtual(a)), float(t.clock.virtual(b))) for a, b in windows]


def _virtual_marks(t: Timeline, marks: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    return [(float(t.clock.virtual(at)), label) for at, label in marks]


def throughput_latency(
    t: Timeline,
    groups: Mapping[str, Sequence[str]],
    outages: Sequence[tuple[float, float]],
    marks: Sequence[tuple[float, str]] = (),
) -> Plot:
    x, scale, xlabel = _virtual_x(t, t.bucket_start_s() + t.bucket_s / 2)
    fig, (top, bottom) = figure(2, 5.6)
    col = colours(list(groups))
    for name, members in [*groups.items(), (ALL, t.interfaces)]:
        rows = t.members(members)
        if not len(rows):
            continue
        count = t.count[rows].sum(axis=0)
        width = 2.0 if name == ALL else 1.2
        top.plot(x, count / t.bucket_s, color=col[name], lw=width, label=name)
        p99 = percentile_ms(t.latency[rows].sum(axis=0, dtype=np.int64), 99.0)
        bottom.plot(
            x, masked(p99, count > 0), color=col[name], lw=width, label=name, marker="." if len(x) < 40 else None
        )
    for ax in (top, bottom):
        shade(ax, _virtual_windows(t, outages), scale)
        mark_controls(ax, _virtual_marks(t, marks), scale)
    wall_axis(top, t.clock, scale)
    top.set_ylabel("answers per wall second")
    top.set_title(f"Throughput per group (buckets of {t.bucket_s:g} wall s, by answer time)")
    legend_outside(top)
    log_scale(bottom.yaxis)
    bottom.set_ylabel("p99 latency (ms, log)")
    bottom.set_title("p99 latency from the intended send time, per group")
    bottom.set_xlabel(xlabel)
    caption = (
        "Answers per wall second and the 99th percentile of latency per time bucket, along the line's virtual time "
        "(the run's wall time on top); grey: MES outages."
    )
    return Plot("throughput_p99", "Throughput and p99 latency over time", caption, png(fig))


def _spectrum_points(hist: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """(1/(1-q), ms) along the HDR percentile spectrum, up to the maximum."""
    a = HdrArrays(hist)
    top = max(math.log10(a.total), 1.0) if a.total else 1.0
    qs = 1 - 10 ** -np.linspace(0, top, 120)
    values = np.append(a.values_at(qs[:-1] * 100), a.max()) / 1000
    return 1 / (1 - qs), values


def spectrum_axes(ax: Any, series: Sequence[tuple[str, HdrHistogram, str, str, float]]) -> None:
    """Draw percentile spectra (label, histogram, colour, line style, width) on one axes, HDR style."""
    top = 1.0
    for label, hist, colour, style, width in series:
        if not hist.get_total_count():
            continue
        x, y = _spectrum_points(hist)
        top = max(top, x[-1])
        ax.plot(x, y, color=colour, ls=style, lw=width, label=label)
    log_scale(ax.xaxis)
    log_scale(ax.yaxis)
    ticks = [10.0**k for k in range(math.ceil(math.log10(top)) + 1)]
    ax.set_xticks(ticks, [f"{100 * (1 - 1 / v):.{max(0, k - 2)}f}%" for k, v in enumerate(ticks)])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms, log)")
    legend_outside(ax)


def spectrum(hists: Mapping[str, HdrHistogram], service_all: HdrHistogram) -> Plot:
    fig, (ax,) = figure(1, 4.2)
    col = colours(list(hists))
    series = [(name, h, col[name], "-", 2.0 if name == ALL else 1.2) for name, h in hists.items()]
    series.append(("all: service time", service_all, "#777777", "--", 1.2))
    spectrum_axes(ax, series)
    ax.set_title("Latency percentile spectrum per group (from the intended send time)")
    caption = "Each line is a group's whole latency distribution: read the 99.9th percentile off the x axis."
    return Plot("spectrum", "Latency percentile spectrum", caption, png(fig))


def outcome_label(outcome: str) -> str:
    """A business code reads as ``code 1``; HTTP statuses and transport errors as they are."""
    return f"code {outcome}" if outcome.lstrip("-").isdigit() else outcome


def errors(
    t: Timeline, outages: Sequence[tuple[float, float]], marks: Sequence[tuple[float, str]] = ()
) -> Plot | None:
    """Failures per second over time, stacked by outcome; None when nothing failed (nothing to draw)."""
    totals = t.failures_by_outcome.sum(axis=1)
    if not totals.sum():
        return None
    edges, scale, xlabel = _virtual_x(t, np.arange(t.n_buckets + 1) * t.bucket_s)
    fig, (ax,) = figure(1, 3.4)
    order = [int(i) for i in np.argsort(-totals) if totals[i] > 0]
    shown, rest = order[:TOP_OUTCOMES], order[TOP_OUTCOMES:]
    bottom = np.zeros(t.n_buckets)
    stacks = [(outcome_label(t.outcomes[i]), t.failures_by_outcome[i]) for i in shown]
    if rest:
        stacks.append((f"{len(rest)} other outcomes", t.failures_by_outcome[rest].sum(axis=0)))
    for label, values in stacks:  # one filled step artist per outcome: fast at any bucket count
        top = bottom + values / t.bucket_s
        ax.stairs(top, edges, baseline=bottom, fill=True, label=label[:40])
        bottom = top
    shade(ax, _virtual_windows(t, outages), scale)
    mark_controls(ax, _virtual_marks(t, marks), scale)
    wall_axis(ax, t.clock, scale)
    legend_outside(ax)
    ax.set_ylabel("failures per wall second")
    ax.set_xlabel(xlabel)
    ax.set_title("Failed exchanges over time, by outcome (business code, HTTP status, or no answer)")
    caption = "Failures per wall second per time bucket, stacked by outcome, along the line's virtual time."
    return Plot("errors", "Errors over time", caption, png(fig))


def backlog(
    t: Timeline,
    outages: Sequence[Mapping[str, Any]],
    windows: Sequence[tuple[float, float]],
    marks: Sequence[tuple[float, str]] = (),
) -> Plot:
    x, scale, xlabel = _virtual_x(t, t.bucket_start_s() + t.bucket_s)
    fig, (ax,) = figure(1, 3.4)
    owed = t.backlog()
    ax.step(x, owed, where="post", color="#d62728", lw=1.5, label="owed to the MES\n(intended, not yet sent)")
    virtual_windows = _virtual_windows(t, windows)
    shade(ax, virtual_windows, scale)
    mark_controls(ax, _virtual_marks(t, marks), scale)
    ax.set_ylim(0, max(float(owed.max()), 1.0) * 1.3)
    for o, (_, end) in zip(outages, virtual_windows, strict=False):
        bits = [
            f"{k.replace('_', ' ')}: {o[k]:g}" for k in ("backlog_max", "drain_s") if isinstance(o.get(k), int | float)
        ]
        if bits:
            ax.annotate(
                "run recorded " + ", ".join(bits),
                xy=(end / scale, ax.get_ylim()[1] * 0.92),
                xytext=(6, 0),
                textcoords="offset points",
                fontsize=8,
                color="#333333",
                va="top",
            )
    wall_axis(ax, t.clock, scale)
    legend_outside(ax)
    ax.set_ylabel("exchanges owed")
    ax.set_xlabel(xlabel)
    ax.set_title("Offline backlog: what equipment owed the MES, and how fast it drained")
    caption = (
        "Exchanges intended but not yet sent at each moment, along the line's virtual time; grey: MES outages "
        "(drain s: wall seconds, as the run recorded)."
    )
    return Plot("backlog", "Offline backlog and drain", caption, png(fig))


#: Fewer virtual hours than this and the output per hour is not plotted (one bar says nothing a card does not).
MIN_HOURS = 2


def output_vs_latency(hourly: Sequence[float], virtual_hours: np.ndarray, virtual_s: float) -> Plot | None:
    """Good cells out per virtual hour (the last one partial) against that hour's MES p99; None under 2 hours."""
    n = min(len(hourly), math.ceil(virtual_s / 3600 - 1e-9)) if virtual_s > 0 else len(hourly)
    if n < MIN_HOURS:
        return None
    fig, (ax,) = figure(1, 3.6)
    starts = np.arange(n, dtype=np.float64)
    widths = np.minimum(starts + 1, max(virtual_s / 3600, n - 1 + 1e-9)) - starts
    ax.bar(starts, hourly[:n], width=widths * 0.9, align="edge", color="#2ca02c", alpha=0.7,
           label="good cells out in the virtual hour")  # fmt: skip
    ax.set_xlabel("virtual time of the line (h)")
    ax.set_ylabel("good cells out")
    right = ax.twinx()
    m = min(n, len(virtual_hours))
    if m:
        p99 = percentile_ms(virtual_hours[:m], 99.0)
        right.plot(starts[:m] + widths[:m] / 2, p99, color="#d62728", marker="o", lw=1.5, label="MES p99 latency")
        log_scale(right.yaxis)
    right.set_ylabel("p99 latency (ms, log)", color="#d62728")
    right.grid(False)
    ax.set_xlim(0, starts[-1] + widths[-1])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(max(hourly[:n]), 1.0) * 1.15)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), borderaxespad=0.0)
    ax.set_title("The line's output per virtual hour against MES latency")
    partial = widths[-1] < 0.999
    caption = "Bars: good cells out in each virtual hour; dots: p99 latency of the MES calls intended in that hour." + (
        f" The last hour is partial ({widths[-1] * 60:.0f} virtual min)." if partial else ""
    )
    return Plot("output_vs_latency", "Line output against MES latency", caption, png(fig))


def interlocks(items: Sequence[Mapping[str, Any]], limits: Mapping[str, float]) -> Plot:
    """Reaction times by interlock code; ``limits``: the SLO's limit per code (a dashed red mark on its row)."""
    fig, (ax,) = figure(1, 3.0)
    codes = sorted({str(i.get("code", "?")) for i in items})
    reacted = [float(i["reaction_s"]) for i in items if isinstance(i.get("reaction_s"), int | float)]
    edge = max([*reacted, *limits.values(), 1e-3]) * 1.15
    outcome_col = colours(sorted({str(i.get("outcome", "")) for i in items}))
    rng = np.random.default_rng(0)
    for i in items:
        y = codes.index(str(i.get("code", "?"))) + rng.uniform(-0.15, 0.15)
        r = i.get("reaction_s")
        stopped = isinstance(r, int | float)
        ax.scatter(
            float(r) if stopped else edge,
            y,
            marker="o" if stopped else "x",
            s=30,
            color=outcome_col[str(i.get("outcome", ""))],
            label=str(i.get("outcome", "")),
        )
    for row, code in enumerate(codes):
        if code in limits:
            ax.vlines(limits[code], row - 0.4, row + 0.4, color="#d62728", ls="--", lw=1, label="SLO limit")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_yticks(range(len(codes)), codes)
    ax.set_ylim(-0.6, len(codes) - 0.4)
    ax.set_xlim(0, edge * 1.05)
    ax.set_xlabel("reaction time (wall s): MES decision (or receipt) to equipment stopped; x at the right: never")
    ax.set_ylabel("interlock code")
    ax.set_title("Interlock reaction times (spec 3.1)")
    caption = "One point per interlock the MES sent, by code; colour: outcome."
    return Plot("interlocks", "Interlock reaction times", caption, png(fig))
