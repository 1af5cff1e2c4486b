"""``twin report``: make a run's report again (optionally against SLOs), and compare two runs.

``twin report RUN_DIR`` is short for ``twin report build RUN_DIR``. Exit codes are what a CI pipeline
gates on: 0 the SLOs are met (or none were given) / no regression, 1 not met / a regression, 2 bad input.

``twin run`` ends the same way: ``slo_option`` adds its ``--slo FILE``, ``load_slo_early`` checks the file
before the run starts, and ``report_run`` writes the run folder's report at the end and raises ``SloNotMet``
(exit 1) when an objective is not met.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from twin.report.slo import Verdict

_DEFAULT = "build"
_F = TypeVar("_F", bound=Callable[..., Any])
SLO_HELP = "SLO file (a path, or a name in lines/slo/ such as 'default'); kept in the run folder as slo.yaml."


def slo_option(f: _F) -> _F:
    """``--slo FILE`` for ``twin report`` and ``twin run``."""
    return click.option("--slo", "slo", default=None, metavar="FILE", help=SLO_HELP)(f)


def load_slo_early(ref: str | None) -> Path | None:
    """The SLO file's path, checked now: a malformed file is bad input (exit 2) before an hour of load, not after."""
    if ref is None:
        return None
    from twin.report.slo import load_slo

    return load_slo(ref).source


def report_run(run_dir: Path, slo: str | Path | None) -> Verdict:
    """Write the run folder's report, print where it is and the verdict; raise ``SloNotMet`` (exit 1) if not met."""
    from twin.report import write_report
    from twin.report.slo import SloNotMet

    verdict = write_report(run_dir, slo=slo)
    for check in verdict.failed:
        click.echo(f"  not met: {check.describe()}  [{check.objective}]")
    click.echo(f"report: {Path(run_dir) / 'report.html'}")
    if not verdict.met:
        raise SloNotMet(verdict.headline())
    click.echo(verdict.headline())
    return verdict


class _ReportGroup(click.Group):
    """A group whose first argument may be a run folder instead of a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [_DEFAULT, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ReportGroup, options_metavar="", subcommand_metavar="RUN_DIR [--slo FILE] | compare BASE NEW")
def report() -> None:
    """The report of a run folder, and the comparison of two runs.

    \b
      twin report RUN_DIR [--slo FILE]       the run's report again (short for: build)
      twin report compare BASE NEW           what got better or worse from BASE to NEW

    \b
    A run folder (reports/<line>/<timestamp>/) gets report.html (one self-contained page),
    plots/*.png, stats.csv and stats_history.csv (Locust's columns, then ours) and verdict.json,
    beside the run's summary.json (the same figures, for machines).
    Exit codes: 0 SLOs met (or none given) / no regression, 1 not met / a regression, 2 bad input.
    """


@report.command(_DEFAULT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@slo_option
def build(run_dir: Path, slo: str | None) -> None:
    """RUN_DIR's report again, as `twin report RUN_DIR`; SLOs given, or the folder's."""
    report_run(run_dir, slo)


@report.command("compare")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--threshold",
    "threshold_pct",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="PCT",
    help="Flag a figure that got worse by more than PCT percent.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    show_default="NEW/compare.html",
    help="Where to write the comparison page (compare.json is written beside it).",
)
def compare(base: Path, new: Path, threshold_pct: float, out: Path | None) -> None:
    """What got better or worse from run BASE to run NEW, per interface."""
    from twin.report import compare_runs
    from twin.report.compare import RegressionFound, summary_lines, write_comparison

    result = compare_runs(base, new, threshold_pct=threshold_pct)
    page = write_comparison(result, base, new, out or new / "compare.html")
    for line in summary_lines(result):
        click.echo(line)
    click.echo(f"comparison: {page}")
    if result.regressions:
        n = len(result.regressions)
        raise RegressionFound(f"the new run is worse: {n} regression(s) beyond {threshold_pct:g} %")
