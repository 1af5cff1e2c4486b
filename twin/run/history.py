"""The page's history, bounded however long the run: the last hour at one point a second, the whole run
(up to two days) at one point a minute. A page that opens late gets both and draws the same charts as one
that watched from the start; the browser keeps rings of the same sizes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

FINE_POINTS = 3600  # one per tick (1 s): the last hour
COARSE_EVERY = 60  # fine points per coarse point: one a minute
COARSE_POINTS = 2880  # two days of minutes


class History:
    """Two rings of samples; ``add`` returns the coarse point it made, if it made one."""

    def __init__(
        self,
        *,
        fine: int = FINE_POINTS,
        coarse: int = COARSE_POINTS,
        every: int = COARSE_EVERY,
    ) -> None:
        self.fine: deque[Mapping[str, Any]] = deque(maxlen=fine)
        self.coarse: deque[Mapping[str, Any]] = deque(maxlen=coarse)
        self.every = every
        self._pending: list[Mapping[str, Any]] = []

    def add(
        self, sample: Mapping[str, Any], summarise: Callable[[list[Mapping[str, Any]]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        self.fine.append(sample)
        self._pending.append(sample)
        if len(self._pending) < self.every:
            return None
        point = summarise(self._pending)
        self._pending = []
        if point is not None:
            self.coarse.append(point)
        return point

    def to_json(self) -> dict[str, Any]:
        return {"fine": list(self.fine), "coarse": list(self.coarse), "every": self.every}
