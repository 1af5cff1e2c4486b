"""The ``twin`` command: a thin shell over the library with one error boundary.

Each command parses its options, calls a library function and prints. A ``TwinError`` is caught here
once and printed on one line; the exit code means something: 0 done/passed, 1 a failed check, 2 bad
input.
"""

from __future__ import annotations

import logging
import sys

import click

from twin import __version__
from twin.commands.ct import ct
from twin.commands.energy import energy
from twin.commands.ipc import ipc
from twin.commands.lines import lines
from twin.commands.mes import mes
from twin.commands.plc import plc
from twin.commands.profiles import profiles
from twin.commands.proxy import proxy
from twin.commands.report import report
from twin.commands.run import run
from twin.errors import TwinError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="twin")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """A digital twin of a lithium-battery cell line that speaks the factory's MES protocols at takt.

    \b
    Start here:
      twin run line-A02            run the line (see `twin run --help`)
      twin lines show line-A02     stations, takt and the MES calls each makes
      twin profiles list           the 60 interfaces of the MES profile
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(profiles)
cli.add_command(lines)
cli.add_command(run)
cli.add_command(report)
cli.add_command(mes)
cli.add_command(ct)
cli.add_command(proxy)
cli.add_command(plc)
cli.add_command(ipc)
cli.add_command(energy)


def main() -> None:
    """Console entry point: run the CLI with the one error boundary."""
    try:
        code = cli.main(standalone_mode=False)  # a command's click.exceptions.Exit comes back as its code
        if isinstance(code, int) and code:
            sys.exit(code)
    except TwinError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
