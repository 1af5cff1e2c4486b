"""A scripted station: a PLC program without the line model, for a virtual PLC served on its own.

It runs cycles at a fixed period with generated barcodes and obeys the interlock as the spec asks of a machine
(3.1: alarm and stop; resume when the interlock is released), after a reaction time. ``twin plc serve --cycle-s``
uses it so a host vendor can test against a PLC that does something; ``obey_interlock=False`` gives the machine
that ignores the interlock, which the interlock check must catch.
"""

from __future__ import annotations

import asyncio
import logging

from twin.hil.events import cancel_and_wait
from twin.hil.image import IoImage

log = logging.getLogger(__name__)


class ScriptedStation:
    def __init__(
        self,
        image: IoImage,
        *,
        cycle_s: float = 7.5,
        barcode_prefix: str = "JR",
        ng_every: int = 0,
        obey_interlock: bool = True,
        reaction_s: float = 0.05,
        interlock_alarm: int = 999,
    ) -> None:
        self.image = image
        self.cycle_s = cycle_s
        self.barcode_prefix = barcode_prefix
        self.ng_every = ng_every
        self.obey_interlock = obey_interlock
        self.reaction_s = reaction_s
        self.interlock_alarm = interlock_alarm
        self.cycles = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.TimerHandle | None = None
        self._unsubscribe = image.on_interlock(self._interlock)

    async def start(self) -> None:
        self.image.set_running(not self.image.interlocked)
        self._task = asyncio.create_task(self._run(), name=f"scripted {self.image.map.name}")

    async def stop(self) -> None:
        self._unsubscribe()
        if self._stopping is not None:
            self._stopping.cancel()
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cycle_s)
            if not self.image.running:
                continue
            self.cycles += 1
            ok = not (self.ng_every and self.cycles % self.ng_every == 0)
            self.image.pulse_cycle(f"{self.barcode_prefix}{self.cycles:06d}", ok=ok)

    def _interlock(self, interlocked: bool, code: int) -> None:
        if not self.obey_interlock:
            log.info("scripted %s ignores interlock %s", self.image.map.name, code)
            return
        if interlocked:
            self._stopping = asyncio.get_running_loop().call_later(self.reaction_s, self._halt)
        else:
            if self._stopping is not None:
                self._stopping.cancel()
            self.image.set_alarm(0)
            self.image.set_running(True)

    def _halt(self) -> None:
        self.image.set_alarm(self.interlock_alarm)
        self.image.set_running(False)
