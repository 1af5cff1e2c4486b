"""The ``twin`` command: a thin shell over the library with one error boundary.

Each command parses its options, calls a library function and prints. A ``TwinError`` is caught here
once and printed on one line; the exit code means something: 0 done/passed, 1 a failed check, 2 bad
input.

Command groups are imported when they are run, not when ``twin --help`` lists them: ``twin run`` pulls in
the line model, aiohttp and (for its report) matplotlib, about a second of imports that a user asking for
help should not wait for. ``COMMANDS`` holds each group's one-line help for the listing; a test checks it
against the group's own.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys

import click

from twin import __version__
from twin.errors import TwinError

#: name -> (module, one-line help), in the order ``twin --help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("twin.commands.run", "Run a line against the embedded MES or yours; write a run folder."),
    "report": ("twin.commands.report", "Report of a run folder (twin report RUN_DIR); compare two runs."),
    "lines": ("twin.commands.lines", "Line files: stations, takt, and the MES calls each station makes."),
    "profiles": ("twin.commands.profiles", "Protocol profiles: interfaces, fields, contradictions; validate."),
    "mes": ("twin.commands.mes", "The embedded reference MES that twin run uses by default."),
    "plc": ("twin.commands.plc", "PLCs in the loop: serve an I/O image, watch a PLC, be its host PC."),
    "proxy": ("twin.commands.proxy", "The validating proxy between real host PCs and the MES."),
    "ct": ("twin.commands.ct", "Inverter CT wiring check (seed 001): the cloud, and the check."),
    "ipc": ("twin.commands.ipc", "Industrial-PC WebSocket (seed 002): the virtual PC, and a driver."),
    "energy": ("twin.commands.energy", "Energy uplink (seed 003): platform peer and the plant's uplink."),
}


class LazyGroup(click.Group):
    """A group whose commands live in ``COMMANDS`` and are imported on first use (``add_command`` still works)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        command = getattr(importlib.import_module(COMMANDS[cmd_name][0]), cmd_name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1] if n in COMMANDS else self.commands[n].get_short_help_str(70))
                for n in self.list_commands(ctx)]  # fmt: skip
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    if verbose < 2:  # pymodbus warns of what the twin reports itself (a PLC that cannot be reached): -vv shows it
        logging.getLogger("pymodbus").setLevel(logging.ERROR)
        logging.getLogger("pymodbus.logging").setLevel(logging.ERROR)


def _terminated(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a command as Ctrl-C does, until the command sets its own handler


def main() -> None:
    """Console entry point: run the CLI with the one error boundary."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        code = cli.main(standalone_mode=False)  # a command's click.exceptions.Exit comes back as its code
        if isinstance(code, int) and code:
            sys.exit(code)
    except TwinError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: a Ctrl-C inside an extension module's import can leave CPython's "unhandled
        # KeyboardInterrupt" flag set, and the interpreter would then end itself by SIGINT (-2), not 130.
        os._exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
