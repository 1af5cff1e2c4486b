"""Turns in order per key: how a host keeps its reports in the order it made them (DESIGN decision 9).

A pool of keep-alive connections sends concurrent requests over different sockets, so two reports made
in the same instant (an alarm cleared and the next one raised) may reach the MES swapped. A host keeps
one lane per kind of report: a report leaves only after the one before it in its lane was answered (or
given up and kept for re-upload). Lanes of different keys never wait for each other, so concurrency
across equipment is untouched.

Hand-written because asyncio.Lock per key would leave one lock object per key alive for the whole run;
a lane here exists only while something is in it (a dict entry and a deque of waiters).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class Lanes:
    """FIFO turns per key: ``await enter(key)`` ... ``leave(key)``."""

    __slots__ = ("_busy",)

    def __init__(self) -> None:
        self._busy: dict[Hashable, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._busy)

    async def enter(self, key: Hashable) -> None:
        """Return when it is this caller's turn in ``key``'s lane (at once if the lane is free)."""
        waiting = self._busy.get(key)
        if waiting is None:
            self._busy[key] = deque()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave(key)  # the turn was handed over as the caller went away: pass it on
            raise

    def leave(self, key: Hashable) -> None:
        """Hand the lane to the next caller in order, or free it."""
        waiting = self._busy[key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._busy[key]
