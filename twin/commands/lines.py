"""``twin lines``: the line files and what their equipment will say to the MES."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from twin.line.linefile import available_lines, load_line
from twin.line.model import Line
from twin.line.roles import role_for
from twin.profile import Profile
from twin.sim.takt import CallEstimate, estimate_calls, takt_per_min


@click.group()
def lines() -> None:
    """Line files: stations, counts, takt, and the MES interfaces each station calls."""


@lines.command("list")
def list_() -> None:
    """List the known line files."""
    for name, path in available_lines().items():
        line, _ = load_line(path)
        click.echo(f"{name:16} {line.equipment_count():4} equipment  {line.title}  ({path})")


def station_table(line: Line, profile: Profile, calls: CallEstimate | None = None) -> Table:
    title = f"{line.name}: {line.title} — profile {profile.name}"
    table = Table(title=title)
    cols = ["station", "archetype", "count", "equipment codes", "cycle", "takt", "interfaces (besides common)"]
    if calls is not None:
        cols.insert(6, "calls/h")
    for col in cols:
        table.add_column(col, overflow="fold")
    for st in line.stations:
        codes = st.equipment_codes()
        shown = codes[0] if len(codes) == 1 else f"{codes[0]}..{codes[-1][-2:]}"
        role = role_for(st.process, st.archetype or None)
        cycle = st.ideal_cycle_s()
        cycle_text = f"{cycle:.2f} s" if cycle < 600 else f"{cycle / 3600:.2f} h"
        takt = f"{takt_per_min(st):.1f} {st.unit or 'unit'}/min"
        ifaces = ", ".join(f"{profile.operation(n).section} {n}" for n in st.interfaces)
        row = [f"{st.id} {st.name_cn}", role.name if role else "?", str(st.count), shown, cycle_text, takt, ifaces]
        if calls is not None:
            row.insert(6, f"{calls.per_station.get(st.id, 0.0):,.0f}")
        table.add_row(*row)
    return table


def print_line(line: Line, profile: Profile, calls: CallEstimate | None = None) -> None:
    console = Console(highlight=False, markup=False, width=None if Console().is_terminal else 180)
    console.print(station_table(line, profile, calls))
    if calls is not None:
        total = sum(calls.per_station.values())
        console.print(
            f"expected MES calls: {total:,.0f} per hour at nominal takt (measured over {calls.window_s / 60:g} "
            f"virtual minutes of an offline run after the first 10; `twin run {line.name}` for a full day)"
        )
    common = ", ".join(f"{profile.operation(n).section} {n}" for n in line.common_interfaces)
    console.print(f"every equipment: {common}")
    used = {n for st in line.stations for n in line.station_interfaces(st)}
    ops = {op.operation_id for op in profile if op.direction != "mes-to-equipment"}
    console.print(
        f"{line.equipment_count()} equipment in {len(line.stations)} stations; "
        f"{len(used & ops)} of the profile's {len(ops)} MES interfaces are called."
    )
    if missing := sorted(ops - used, key=lambda n: profile.operation(n).section or ""):
        console.print("not called by this line: " + ", ".join(f"{profile.operation(n).section} {n}" for n in missing))
    if line.figures_note:
        console.print(f"figures: {line.figures_note}")


@lines.command("show")
@click.argument("line_ref")
@click.option("--no-estimate", is_flag=True, help="Skip the short offline run that measures calls per hour.")
def show(line_ref: str, no_estimate: bool) -> None:
    """Show a line: stations, archetypes, counts, codes, cycle and takt, calls per hour, interfaces."""
    line, profile = load_line(line_ref)
    print_line(line, profile, None if no_estimate else estimate_calls(line, profile))


@lines.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def validate(file: Path) -> None:
    """Check a line file; a mistake is printed as FILE:LINE: key.path: what was expected (exit 2)."""
    line, profile = load_line(file)
    click.echo(
        f"valid: {file} ({line.name}, {len(line.stations)} stations, {line.equipment_count()} equipment, "
        f"profile {profile.name})"
    )
