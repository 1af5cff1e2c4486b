"""The event loop every twin command runs on: uvloop's where it is installed, asyncio's otherwise.

The hot path of a run is the loop itself: a socket write, a task and a few callbacks per request. On
uvloop (libuv, the loop uvicorn and many asyncio servers run on) these cost about a tenth less CPU per request
of ``twin run`` with the whole model than on asyncio's own loop (issue 14, ``benchmarks/bench_run.py``), and
the embedded MES's aiohttp server answers faster on it too. uvloop has no Windows build: there, and when
``TWIN_LOOP=asyncio`` asks for it (to tell a loop difference from a twin bug), asyncio's loop runs.

The loop also runs with a larger young generation for the garbage collector (``fewer_collections``): at
Python's default (a collection every 700 net container allocations) a run of line-A02 against nginx spent a
tenth of its CPU in about 270 collections a second of the young generations, each walking objects that
almost all die by reference counting anyway (issue 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "TWIN_LOOP"
# The loop's clock to the microsecond: asyncio's ``loop.time()`` is ``time.monotonic()``; uvloop's is libuv's, in
# whole milliseconds. What steps or measures against the loop's clock finer than that (the bridge of a run, the
# intended send times the exchange log keeps) reads this one (issue 14: up to 1 ms off on uvloop before).
loop_time = time.monotonic
YOUNG_COLLECTION_AT = 20_000  # net container allocations between young collections (Python's default: 700)


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
    """``asyncio.run`` on the twin's loop, with ``fewer_collections``."""
    with fewer_collections(), asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def collect_less() -> tuple[int, int, int]:
    """From now on the young generation is collected every ``YOUNG_COLLECTION_AT`` net allocations (for a process
    that does nothing else: the self-check's, a Ray shard's); returns the thresholds it had. Cycles are still
    collected (memory stays bounded), only less often."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_COLLECTION_AT), *before[1:])
    return before


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """``collect_less`` while inside; the thresholds as they were afterwards."""
    before = collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*before)


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
