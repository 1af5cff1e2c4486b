"""What ``twin run`` checks before a run and notes after it, beyond the run's own options (``prepare``).

* ``--mes-arg`` goes to the embedded MES's command line: it is checked by that command's own parser and
  checks (``twin mes serve``) before anything starts, so ``--mes-arg=--bogus`` is one line and exit 2,
  not a run folder whose MES never came up.
* A signal that came after the run ended (while its folder and report were written) is noted in
  ``summary.json``: state ``interrupted``, with the signal and when it came.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from twin.errors import ConfigError
from twin.metrics.runfolder import write_json


def check_mes_args(args: list[str]) -> None:
    """Parse ``args`` as ``twin mes serve`` would, and run its own checks of the values; ConfigError if not."""
    if not args:
        return
    from twin.commands import mes as mes_command  # the MES's command: imported only when it is needed

    if any(a in ("--help", "-h") for a in args):
        raise ConfigError("--mes-arg: --help is not an argument for a run (see `twin mes serve --help`)")
    serve = mes_command.serve
    try:
        ctx = serve.make_context("twin mes serve", list(args))
    except click.ClickException as exc:
        raise ConfigError(f"--mes-arg: {exc.format_message()}") from None
    build = getattr(mes_command, "build_config", None)
    if build is None:
        return
    try:
        build(**ctx.params)
    except TypeError:
        return  # the command's checks changed shape: the MES checks its arguments itself when it starts
    except ConfigError as exc:
        raise ConfigError(f"--mes-arg: {exc}") from None


def mark_interrupted(folder: Path, signum: int, phase: str | None) -> None:
    """summary.json says ``interrupted`` whenever the command exits 130, with which signal and when."""
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    during = {"stop": "the run", "defer": "writing the run folder and report"}.get(phase or "", "starting")
    if summary.get("state") == "finished":
        summary["finished_before_interrupt"] = True  # the model ran its whole length; the signal came after
        if phase == "stop":
            during = "the end of the run (after its last step)"
    summary["state"] = "interrupted"
    summary["interrupted"] = {"signal": signal.Signals(signum).name, "during": during}
    write_json(path, summary)
