"""How a serving command waits: until Ctrl-C, SIGTERM or its ``--duration-s``, then ends normally.

A server started from a shell (Ctrl-C) or by a supervisor (``kill``, ``docker stop``: SIGTERM) should stop the
same way: cleanly, printing what it served, exit 0. Without handlers, Ctrl-C surfaces as click's "aborted"
(exit 130) and SIGTERM kills the process before its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from twin import aio


async def until_stopped(duration_s: float | None) -> str:
    """Wait for SIGINT, SIGTERM or ``duration_s``; return which. Without a duration, says how to stop (stderr)."""
    stop = asyncio.Event()
    why = "duration"
    loop = asyncio.get_running_loop()

    def on(sig: signal.Signals) -> None:
        nonlocal why
        why = "Ctrl-C" if sig == signal.SIGINT else sig.name
        stop.set()

    handled = aio.handle_signals(loop, on, with_signal=True)
    if duration_s is None:  # said once the signals are handled: from here Ctrl-C stops cleanly
        click.echo("Ctrl-C to stop", err=True)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration_s)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    if why != "duration":
        click.echo(f"stopping ({why})", err=True)
    return why
