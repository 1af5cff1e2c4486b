"""Ctrl-C (SIGINT) and SIGTERM in the CLI: never a traceback, and never half a run folder.

Before a run has begun nothing is worth keeping, and ``twin.cli`` turns a Ctrl-C into "aborted", exit 130.
From then on one handler serves the rest of the command, in one of two modes:

* ``stop`` (while a run runs): the run is asked to stop at its next step (``on_stop``, called in the run's
  event loop) and still writes its whole folder;
* ``defer`` (while the run folder and its report are written): the signal is noted and acted on once the
  folder is whole; the command then exits 130.

The handler is installed with ``signal.signal`` (not the event loop's ``add_signal_handler``) so that it
stays in place across ``asyncio.run``, which would otherwise put Python's default back when its loop closes
and let a Ctrl-C during the report raise ``KeyboardInterrupt`` in the middle of writing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The process's one signal handler and what it has seen."""

    def __init__(self) -> None:
        self.mode = "defer"
        self.received: int | None = None  # the first signal's number
        self.phase: str | None = None  # the mode it arrived in ("stop": during the run, "defer": writing)
        self._on_stop: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        for sig in SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored by the parent (a background job): stays so
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        first = self.received is None
        if first:
            self.received, self.phase = signum, self.mode
        if self.mode == "defer" and first:
            with contextlib.suppress(OSError):
                os.write(2, b"interrupted: the run folder and its report are completed first...\n")
        if self.mode == "stop" and self._on_stop is not None:
            if first:
                with contextlib.suppress(OSError):
                    os.write(2, b"stopping: the run folder is being completed...\n")
            loop, on_stop = self._loop, self._on_stop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(on_stop)
                    return
            on_stop()

    @contextlib.contextmanager
    def stopping(self, on_stop: Callable[[], None]) -> Iterator[None]:
        """While the block runs, a signal asks ``on_stop`` to end the run (in the loop given to ``attach``);
        after it, signals are noted (``received``, ``phase``) until the command exits."""
        self.received = self.phase = None  # a new run (the CLI may be invoked more than once in a process)
        self.install()
        self.mode, self._on_stop = "stop", on_stop
        try:
            yield
        finally:
            self.mode, self._on_stop, self._loop = "defer", None, None
            self.install()

    def attach(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """The run's event loop (``on_stop`` is called in it), or None when it has ended."""
        self._loop = loop


INTERRUPTS = Interrupts()
