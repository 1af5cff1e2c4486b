"""Reports of a run: one self-contained HTML page, PNG plots, Locust-layout CSV, SLO verdicts, comparisons.

Data flows one way: a run folder (``twin.metrics``) in, report files out; the run's own files are never
rewritten, so a report can be made again at any time, with other SLOs.

The names below are imported on first use (PEP 562): importing ``twin.report`` (the CLI does, for every
command) should not pay for matplotlib and Jinja2 until a report is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.report.build import write_report
    from twin.report.compare import Comparison, compare_runs
    from twin.report.slo import Check, Slo, Verdict, load_slo

__all__ = ["Check", "Comparison", "Slo", "Verdict", "compare_runs", "load_slo", "write_report"]
_HOME = {
    "write_report": "twin.report.build",
    "Comparison": "twin.report.compare",
    "compare_runs": "twin.report.compare",
    "Check": "twin.report.slo",
    "Slo": "twin.report.slo",
    "Verdict": "twin.report.slo",
    "load_slo": "twin.report.slo",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'twin.report' has no attribute {name!r}")
