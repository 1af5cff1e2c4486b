"""What every plot of the report shares: an Agg figure, the same look, one colour per group, PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` on an Agg canvas, never through ``pyplot``: no global
state, no GUI backend, safe to call from a run's process at its end.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Plot:
    """One PNG of the report: ``name`` is its file name stem under ``plots/``."""

    name: str
    title: str
    caption: str
    png: bytes


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
    """Divisor and label for a time axis: seconds up to three minutes, minutes up to three hours, then hours."""
    if span_s <= 180:
        return 1.0, "seconds since the first exchange"
    if span_s <= 3 * 3600:
        return 60.0, "minutes since the first exchange"
    return 3600.0, "hours since the first exchange"


def shade(ax: Any, windows: Sequence[tuple[float, float]], scale: float, label: str = "MES outage") -> None:
    """Grey spans for windows (seconds since the origin)."""
    for i, (start, end) in enumerate(windows):
        ax.axvspan(start / scale, end / scale, color="#999999", alpha=0.25, lw=0, label=label if i == 0 else None)


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


def empty_note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555", fontsize=11)
