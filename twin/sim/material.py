"""What flows through the line: units with barcodes and genealogy, buffers, trays and material lots.

A ``Unit`` is anything with a barcode that moves: a raw-material lot, a glue or slurry batch, an electrode
roll, a jelly roll, a welded pair, a cell. Its ``parents`` are the units it was made from, so a finished cell
traces back through its jelly rolls to the electrode rolls, the slurry batch and the raw lots. The
``Ledger`` counts every unit created, consumed into another, taken out as NG or held, and shipped, per kind:
with what is still in buffers and equipment, the counts must balance (material conservation).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import simpy

KINDS = ("lot", "glue", "slurry", "roll", "jelly_roll", "pair", "cell")


class Unit:
    """One barcoded thing. ``qty`` is the remaining quantity of a lot, batch or roll (kg, m, pieces)."""

    __slots__ = ("code", "data", "kind", "lane", "material", "origin", "parents", "qty")

    def __init__(
        self,
        code: str,
        kind: str,
        parents: tuple[Unit, ...] = (),
        *,
        lane: str | None = None,
        qty: float = 1.0,
        material: str = "",
        origin: str = "made",
    ) -> None:
        self.code = code
        self.kind = kind
        self.parents = parents
        self.lane = lane
        self.qty = qty
        self.material = material
        self.origin = origin  # "made" in the run, "initial" when present at the start (warm start)
        self.data: dict[str, Any] | None = None

    def ancestors(self) -> Iterator[Unit]:
        stack = list(self.parents)
        seen: set[int] = set()
        while stack:
            unit = stack.pop()
            if id(unit) in seen:
                continue
            seen.add(id(unit))
            yield unit
            stack.extend(unit.parents)

    def put(self, key: str, value: Any) -> None:
        if self.data is None:
            self.data = {}
        self.data[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.code}>"


class Tray:
    """A physical tray (container) with a barcode; cells are bound to it at grouping."""

    __slots__ = ("cells", "code", "pool")

    def __init__(self, code: str, pool: str) -> None:
        self.code = code
        self.pool = pool
        self.cells: list[Unit] = []

    def __repr__(self) -> str:
        return f"<tray {self.code} {len(self.cells)} cells>"


class Buffer(simpy.Store):
    """A FIFO buffer between stations with a capacity, and the statistics the KPIs need."""

    def __init__(self, env: simpy.Environment, name: str, capacity: float = float("inf")) -> None:
        super().__init__(env, capacity)
        self.items: deque[Any] = deque()  # type: ignore[assignment]  # O(1) at the head, unlike Store's list
        self.name = name
        self.sink = False
        self.n_in = 0
        self.n_out = 0
        self.peak = 0
        self._area = 0.0
        self._since = env.now

    def _touch(self) -> None:
        now = self._env.now
        self._area += len(self.items) * (now - self._since)
        self._since = now

    def _do_put(self, event: simpy.resources.store.StorePut) -> None:
        if len(self.items) < self._capacity:
            self._touch()
            self.items.append(event.item)
            self.n_in += 1
            if len(self.items) > self.peak:
                self.peak = len(self.items)
            event.succeed()

    def _do_get(self, event: simpy.resources.store.StoreGet) -> None:
        if self.items:
            self._touch()
            self.n_out += 1
            event.succeed(self.items.popleft())

    # Fast paths without an event when nobody has to wait: a unit station cycles through two buffers per
    # unit, and skipping the two no-wait events saves about a third of all events of a day-long run. They
    # use SimPy's own queue triggers (the same calls Store.put/get make) so waiting processes stay served.
    def try_get(self) -> Any:
        """The head item at once, or None if the buffer is empty (or others are already waiting)."""
        if not self.items or self.get_queue:
            return None
        self._touch()
        self.n_out += 1
        item = self.items.popleft()
        if self.put_queue:
            self._trigger_put(None)
        return item

    def try_put(self, item: Any) -> bool:
        """Append at once if there is room and nobody is waiting to put; False otherwise."""
        if len(self.items) >= self._capacity or self.put_queue:
            return False
        self._touch()
        self.items.append(item)
        self.n_in += 1
        if len(self.items) > self.peak:
            self.peak = len(self.items)
        if self.get_queue:
            self._trigger_get(None)
        return True

    def preload(self, items: list[Any]) -> None:
        """Fill at the start of a run (warm start), without events."""
        self.items.extend(items)
        self.peak = max(self.peak, len(self.items))

    def mean_level(self) -> float:
        self._touch()
        return self._area / self._env.now if self._env.now > 0 else float(len(self.items))

    @property
    def level(self) -> int:
        return len(self.items)


class Ledger:
    """Counts per unit kind, to prove in = out + NG + WIP; and per station, for the KPIs."""

    __slots__ = ("consumed", "created", "held", "initial", "ng", "shipped")

    def __init__(self) -> None:
        self.created: Counter[str] = Counter()
        self.initial: Counter[str] = Counter()
        self.consumed: Counter[str] = Counter()
        self.ng: Counter[str] = Counter()
        self.held: Counter[str] = Counter()
        self.shipped: Counter[str] = Counter()

    def balance(self, kind: str) -> int:
        """Units of a kind that must still be somewhere in the line (its WIP)."""
        return (
            self.created[kind]
            + self.initial[kind]
            - self.consumed[kind]
            - self.ng[kind]
            - self.held[kind]
            - self.shipped[kind]
        )


def count_units(things: Any, into: Counter[str]) -> None:
    """Add every unit found in a buffer's items, trays or nested lists to a count by kind."""
    for thing in things:
        if isinstance(thing, Unit):
            into[thing.kind] += 1
        elif isinstance(thing, Tray):
            count_units(thing.cells, into)
        elif isinstance(thing, list | tuple | set):
            count_units(thing, into)
