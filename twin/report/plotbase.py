"""What every plot of the report shares (the plots themselves are in ``plots``): an Agg figure, the same look,
one colour per group, PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` on an Agg canvas, never through ``pyplot``: no global
state, no GUI backend, safe to call from a run's process at its end.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from twin.report.groups import ALL

DPI = 100
WIDTH_IN = 10.0
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def figure(rows: int = 1, height_in: float = 3.6, *, sharex: bool = True) -> tuple[Figure, Any]:
    matplotlib.rcParams.update(STYLE)
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)[:, 0]
    return fig, axes


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 4})
    return buf.getvalue()


def colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per group; ``all`` is black."""
    palette = [to_hex(c) for c in matplotlib.colormaps["tab10"].colors]  # type: ignore[attr-defined]
    out = {n: palette[i % len(palette)] for i, n in enumerate(n for n in names if n != ALL)}
    out[ALL] = "#111111"
    return out


def time_axis(span_s: float) -> tuple[float, str]:
    """Divisor and label for an axis of the line's virtual time: seconds up to 3 min, minutes up to 3 h, hours."""
    if span_s <= 180:
        return 1.0, "virtual time of the line (s)"
    if span_s <= 3 * 3600:
        return 60.0, "virtual time of the line (min)"
    return 3600.0, "virtual time of the line (h)"


def wall_axis(ax: Any, clock: Any, scale: float) -> None:
    """Wall time of the run on the top edge of ``ax``, for an x axis in virtual time divided by ``scale``.

    ``clock`` maps wall seconds to virtual seconds and back (``twin.report.timeline.VirtualClock``).
    """
    span = float(clock.wall_s[-1]) if len(clock.wall_s) else 0.0
    unit, name = (60.0, "min") if span > 300 else (1.0, "s")
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda v: clock.wall(np.asarray(v) * scale) / unit,
            lambda w: clock.virtual(np.asarray(w) * unit) / scale,
        ),
    )
    speed = clock.speed
    pace = f", {speed:.3g} virtual s per wall s" if speed else ""
    top.set_xlabel(f"wall time of the run ({name}{pace})", fontsize=8, color="#555555")
    top.tick_params(labelsize=7, colors="#555555")


def legend_outside(ax: Any) -> None:
    """The legend to the right of the axes: it never covers data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def shade(ax: Any, windows: Sequence[tuple[float, float]], scale: float, label: str = "MES outage") -> None:
    """Grey spans for windows (seconds since the origin)."""
    for i, (start, end) in enumerate(windows):
        ax.axvspan(start / scale, end / scale, color="#999999", alpha=0.25, lw=0, label=label if i == 0 else None)


def mark_controls(ax: Any, marks: Sequence[tuple[float, str]], scale: float) -> None:
    """Dotted lines at the controls of the live web view (x in the axis's seconds), labelled at the top."""
    for i, (x, label) in enumerate(marks):
        ax.axvline(x / scale, color="#8e44ad", ls=":", lw=1.2, label="web view control" if i == 0 else None)
        ax.annotate(label[:24], xy=(x / scale, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -9 - 9 * (i % 3)),
                    textcoords="offset points", fontsize=7, color="#8e44ad")  # fmt: skip


def log_scale(axis: Any) -> None:
    """A log axis labelled with plain numbers (1, 10, 100, 1,000): readable, and no mathtext to render."""
    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    axis.set_minor_formatter(NullFormatter())


def legend(ax: Any, **kwargs: Any) -> None:
    """A legend when something is labelled (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)
