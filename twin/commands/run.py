"""``twin run``: run a line against an MES.

Until the line model lands (issue 3) and the transport (issue 5), this is the real command with the
part that exists: it loads and checks the line and its profile and prints the stations and the MES
interfaces each will call.
"""

from __future__ import annotations

import click

from twin.commands.lines import print_line
from twin.sim.linefile import load_line


@click.command()
@click.argument("line_ref", metavar="LINE")
@click.option("--profile", "profile_ref", default=None, help="Another OpenAPI profile than the line file names.")
def run(line_ref: str, profile_ref: str | None) -> None:
    """Run LINE (a name from lines/ or a path to a line file).

    For now: load and check the line and its profile, and print the stations and the MES interfaces each
    one calls. Simulation and the embedded MES follow.
    """
    from twin.profile import load_profile

    profile = load_profile(profile_ref) if profile_ref else None
    line, prof = load_line(line_ref, profile=profile)
    print_line(line, prof)
