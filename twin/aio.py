"""The event loop every twin command runs on: uvloop's where it is installed, asyncio's otherwise.

The hot path of a run is the loop itself: a socket write, a task and a few callbacks per request. On
uvloop (libuv, the loop uvicorn and many asyncio servers run on) these cost about a tenth less CPU per request
of ``twin run`` with the whole model than on asyncio's own loop (issue 14, ``benchmarks/bench_run.py``), and
the embedded MES's aiohttp server answers faster on it too. uvloop has no Windows build: there, and when
``TWIN_LOOP=asyncio`` asks for it (to tell a loop difference from a twin bug), asyncio's loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "TWIN_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop``, or None for asyncio's default loop."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # Windows, or an install without it
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """Which loop ``run`` uses: "uvloop" or "asyncio" (said in a run's settings.json)."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the twin's loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def handle_signals(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any, with_signal: bool = False
) -> list[signal.Signals]:
    """Run ``callback`` on SIGINT and SIGTERM (with the signal as its last argument if ``with_signal``); returns
    the signals handled: none off the main thread (asyncio says RuntimeError there, uvloop ValueError) or on
    Windows."""
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, callback, *args, *((sig,) if with_signal else ()))
            handled.append(sig)
    return handled
