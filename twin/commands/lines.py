"""``twin lines``: the line files and what their equipment will say to the MES."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from twin.profile import Profile
from twin.sim.linefile import Line, available_lines, load_line


@click.group()
def lines() -> None:
    """Line files: stations, counts, takt, and the MES interfaces each station calls."""


@lines.command("list")
def list_() -> None:
    """List the known line files."""
    for name, path in available_lines().items():
        line, _ = load_line(path)
        click.echo(f"{name:16} {line.equipment_count():4} equipment  {line.title}  ({path})")


def station_table(line: Line, profile: Profile) -> Table:
    table = Table(title=f"{line.name}: {line.title} — profile {profile.name}")
    for col in ("station", "process", "count", "equipment codes", "rate", "interfaces (besides common)"):
        table.add_column(col, overflow="fold")
    for st in line.stations:
        codes = st.equipment_codes()
        shown = codes[0] if len(codes) == 1 else f"{codes[0]}..{codes[-1][-2:]}"
        rate = f"{st.rate_ppm:g}/min" if st.rate_ppm else ""
        if not rate and st.cycle_s:
            rate = f"{st.cycle_s:g} s/{st.unit or 'cycle'}"
        ifaces = ", ".join(f"{profile.operation(n).section} {n}" for n in st.interfaces)
        table.add_row(f"{st.id} {st.name_cn}", st.process, str(st.count), shown, rate, ifaces)
    return table


def print_line(line: Line, profile: Profile) -> None:
    console = Console(highlight=False, markup=False)
    console.print(station_table(line, profile))
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
def show(line_ref: str) -> None:
    """Show a line: stations, counts, equipment codes, rates and interfaces per station."""
    line, profile = load_line(line_ref)
    print_line(line, profile)


@lines.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def validate(file: Path) -> None:
    """Check a line file; a mistake is printed as FILE:LINE: key.path: what was expected (exit 2)."""
    line, profile = load_line(file)
    click.echo(
        f"valid: {file} ({line.name}, {len(line.stations)} stations, {line.equipment_count()} equipment, "
        f"profile {profile.name})"
    )
