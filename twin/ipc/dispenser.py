"""The card dispenser/reader of the virtual industrial PC: where the card is, and what each command does to it.

Positions are the profile's (gate = front, not held; front; rf; ic; rear; none; jammed; reread). A command that
the card's position makes impossible is answered with the position's code (IPC-7); device failures with
0x1000-0x1005. Front insertion waits for a (virtual) customer to put a card in, and a reset interrupts that wait
(0x1005). Faults are injected one at a time on purpose (``inject``), so every code of the spec can be produced.
Commands are serialised like the one mechanism they drive; a status query and a reset do not wait for them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import numpy as np

from twin.ipc.spec import IpcSpec

FAULTS = ("insert-blocked", "no-customer", "unreadable", "blank", "jam", "hopper-empty")
INSIDE = ("front", "rf", "ic", "rear", "reread")  # positions where the rollers hold the card
_EMPTY = ("", "", "")


@dataclass(slots=True)
class Card:
    tracks: tuple[str, str, str]
    fault: str | None = None  # "unreadable" (read fails) or "blank" (no card number)


def make_card(rng: np.random.Generator, serial: int) -> Card:
    """A bank-style magnetic-stripe card with a Luhn-valid number (tracks 1 and 2, ISO 7813 layout)."""
    digits = [6, 2, 2, 2, 0, 2] + [int(d) for d in rng.integers(0, 10, size=9)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # Luhn check digit over the 15 digits
        doubled = d * 2 if i % 2 == 0 else d
        total += doubled - 9 if doubled > 9 else doubled
    pan = "".join(map(str, digits)) + str((10 - total % 10) % 10)
    expiry = f"{29 + serial % 5:02d}{1 + serial % 12:02d}"
    track1 = f"%B{pan}^TWIN/CUSTOMER{serial:04d}^{expiry}101?"
    track2 = f";{pan}={expiry}101{int(rng.integers(10**9, 10**10))}?"
    return Card((track1, track2, ""))


class CardDispenser:
    """One card reader with a rear bin of cards."""

    def __init__(
        self,
        spec: IpcSpec,
        *,
        hopper: int = 50,
        insert_timeout_s: float = 30.0,
        customer_s: float | None = 2.0,
        motion_s: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.spec = spec
        self.hopper = hopper
        self.insert_timeout_s = insert_timeout_s
        self.customer_s = customer_s
        self.motion_s = motion_s
        self.rng = np.random.default_rng(seed)
        self.position = "none"
        self.card: Card | None = None
        self.captured = 0
        self.handed_out = 0
        self.cards_made = 0
        self.faults: deque[str] = deque()
        self._lock = asyncio.Lock()
        self._arrival: asyncio.Future[Card] | None = None
        self._interrupt: asyncio.Event = asyncio.Event()

    # -- observation and control --------------------------------------------------------------------------
    def status(self) -> int:
        return self.spec.positions[self.position]

    def describe(self) -> str:
        return self.spec.position_text[self.status()]

    def inject(self, fault: str) -> None:
        """Arm one fault for the next command it applies to (``FAULTS``)."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        if fault == "hopper-empty":
            self.hopper = 0
        else:
            self.faults.append(fault)

    def offer_card(self, card: Card | None = None) -> bool:
        """A customer puts a card into the open front gate; False when the gate is not open."""
        if self._arrival is None or self._arrival.done():
            return False
        self._arrival.set_result(card or self._new_card())
        return True

    def interrupt(self) -> None:
        """Break a command waiting for a card (reset, or the client went away): it answers 0x1005."""
        self._interrupt.set()

    # -- commands -------------------------------------------------------------------------------------------
    async def insert_front(self) -> tuple[int, tuple[str, str, str]]:
        async with self._lock:
            if self.position != "none":
                return self.status(), _EMPTY
            if self._take_fault("insert-blocked"):
                return self.spec.code("CannotInsertion"), _EMPTY
            card = await self._wait_for_customer()
            if isinstance(card, int):
                return card, _EMPTY
            self.card, self.position = card, "rf"
            await self._move()
            return self._read()

    async def insert_rear(self) -> tuple[int, tuple[str, str, str]]:
        async with self._lock:
            if self.position != "none":
                return self.status(), _EMPTY
            if self.hopper <= 0:
                return self.spec.code("RearEnterCardFail"), _EMPTY
            self.hopper -= 1
            self.card, self.position = self._new_card(), "rf"
            await self._move()
            return self._read()

    async def read(self) -> tuple[int, tuple[str, str, str]]:
        async with self._lock:
            if self.position not in INSIDE:
                return self.status(), _EMPTY  # none, gate (not held) or jammed
            self.position = "rf"
            await self._move()
            return self._read()

    async def move(self, location: int) -> int:
        async with self._lock:
            if self.position in ("none", "jammed"):
                return self.status()
            target = self.spec.move_targets[location]
            await self._move()
            if self._take_fault("jam"):
                self.position = "jammed"
                return self.status()
            return self._place(target)

    async def reset(self, action: int) -> int:
        self.interrupt()
        async with self._lock:
            self._interrupt.clear()
            target = self.spec.reset_targets[action]
            if target == "stay" or self.position == "none":
                return self.status() if self.position == "jammed" else self.spec.code("CRS_SUCCESS")
            await self._move()
            return self._place(target)

    # -- mechanics ----------------------------------------------------------------------------------------------
    def _place(self, target: str) -> int:
        if target == "captured":
            self.captured += 1
            self.card, self.position = None, "none"
        elif target == "ejected":
            self.handed_out += 1
            self.card, self.position = None, "none"
        else:
            self.position = target
        return self.spec.code("CRS_SUCCESS")

    def _read(self) -> tuple[int, tuple[str, str, str]]:
        card = self.card
        assert card is not None
        fault = (
            card.fault or (self._take_fault("unreadable") and "unreadable") or (self._take_fault("blank") and "blank")
        )
        card.fault = None  # a fault shows once: a re-read of the card works
        if fault == "unreadable":
            self.position = "reread"
            return self.spec.code("ReadFail"), _EMPTY
        if fault == "blank":
            return self.spec.code("CannotReadCardNo"), _EMPTY
        return self.spec.code("CRS_SUCCESS"), card.tracks

    async def _wait_for_customer(self) -> Card | int:
        loop = asyncio.get_running_loop()
        self._arrival = loop.create_future()
        self._interrupt.clear()
        self.position = "none"
        no_customer = self._take_fault("no-customer")
        customer = None
        if self.customer_s is not None and not no_customer:
            customer = loop.call_later(self.customer_s, self.offer_card)
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            done, _ = await asyncio.wait(
                {self._arrival, interrupted}, timeout=self.insert_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            interrupted.cancel()
            if customer is not None:
                customer.cancel()
        arrival, self._arrival = self._arrival, None
        if arrival in done:
            return arrival.result()
        arrival.cancel()
        if interrupted in done:
            return self.spec.code("Interrupted")
        return self.spec.code("EnterCardTimeOut")

    async def _move(self) -> None:
        if self.motion_s > 0:
            await asyncio.sleep(self.motion_s)

    def _take_fault(self, fault: str) -> bool:
        if fault in self.faults:
            self.faults.remove(fault)
            return True
        return False

    def _new_card(self) -> Card:
        self.cards_made += 1
        return make_card(self.rng, self.cards_made)
