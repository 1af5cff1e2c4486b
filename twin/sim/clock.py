"""One virtual clock (SimPy's) and the bridge that ties it to the wall clock and to a real MES.

Offline, the environment runs as fast as the CPU goes and MES answers are timeouts from a latency model.
In the networked modes (``realtime``: 1 virtual second per wall second; ``speed N``: N per wall second) SimPy
has no asyncio support, so the bridge owns the loop: it steps the environment up to the virtual "now",
sleeps until the wall time of the next event, hands every call to the transport as a task, and when an
answer arrives schedules it as a SimPy event at the virtual time of its arrival. All of it in one thread:
the answer callbacks and the stepping are both run by the asyncio loop, so no locks are needed. Equipment
that yield the answer event really wait for the MES; a slow answer slows the virtual line.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import simpy
from simpy.events import NORMAL, PENDING

from twin.aio import loop_time
from twin.profile.calls import Answer, Call, Transport
from twin.sim.pace import PaceGovernor

T = TypeVar("T")
# The bridge sleeps at least this long: timers are no finer (libuv's are whole milliseconds, asyncio's selector
# rounds up to one). uvloop runs a shorter timer at the next turn of the loop, so a model whose next event was a
# fraction of a millisecond away woke 100,000 times a wall second for nothing (issue 14: a core's worth of CPU
# at 8,600 req/s). Events are stepped at most this late, as on asyncio's loop.
TIMER_RESOLUTION_S = 0.001


class Clock:
    """Virtual seconds since the start <-> wall seconds (the loop's monotonic clock) <-> epoch seconds.

    The speed may change during a run (a load shape: ramp, step): ``segments`` are ``(virtual_s, speed)``
    from that virtual time on, so wall and virtual time stay a continuous, increasing pair.
    """

    __slots__ = ("_virtual", "_wall", "asked", "cap", "segments", "speed", "start_epoch", "wall0")

    def __init__(
        self,
        start: datetime | float,
        *,
        speed: float | None = None,
        segments: list[tuple[float, float]] | None = None,
    ) -> None:
        self.start_epoch = start.timestamp() if isinstance(start, datetime) else float(start)
        self.speed = speed  # virtual seconds per wall second at the start; None offline
        self.segments = segments or ([(0.0, speed)] if speed is not None else [])
        self.asked = list(self.segments)  # the pace asked (shape, controls); ``segments`` is the one kept
        self.cap: float | None = None  # the pace governor's ceiling (twin.sim.pace): None when not saturated
        self.wall0 = 0.0
        self._virtual: list[float] = []
        self._wall: list[float] = []

    @property
    def networked(self) -> bool:
        return self.speed is not None

    def _edges(self) -> None:
        """Wall offsets of every segment start (recomputed when wall0 was set, once per run)."""
        self._virtual, self._wall, wall = [], [], 0.0
        for i, (v, _speed) in enumerate(self.segments):
            if i:
                prev_v, prev_speed = self.segments[i - 1]
                wall += (v - prev_v) / prev_speed
            self._virtual.append(v)
            self._wall.append(wall)

    def wall_at(self, virtual_s: float) -> float:
        assert self.speed is not None
        if len(self.segments) == 1:
            return self.wall0 + virtual_s / self.speed
        if not self._virtual:
            self._edges()
        i = max(0, bisect_right(self._virtual, virtual_s) - 1)
        v, speed = self.segments[i]
        return self.wall0 + self._wall[i] + (virtual_s - v) / speed

    def virtual_at(self, wall_s: float) -> float:
        assert self.speed is not None
        if len(self.segments) == 1:
            return (wall_s - self.wall0) * self.speed
        if not self._virtual:
            self._edges()
        i = max(0, bisect_right(self._wall, wall_s - self.wall0) - 1)
        v, speed = self.segments[i]
        return v + (wall_s - self.wall0 - self._wall[i]) * speed

    def change_from(self, virtual_s: float, later: list[tuple[float, float]]) -> None:
        """From ``virtual_s`` on, the pace is ``later`` (``(virtual_s, speed)``, the first at ``virtual_s``): a
        change made while the run goes (the live web view). Earlier segments stay, so wall and virtual time
        stay one continuous pair; the bridge must be woken to sleep by the new pace."""
        assert self.speed is not None and later and later[0][0] == virtual_s
        self.asked = [*(seg for seg in self.asked if seg[0] < virtual_s), *later] or list(later)
        self._keep_from(virtual_s, later)

    def govern(self, virtual_s: float, cap: float | None) -> None:
        """From ``virtual_s`` on, the pace is the one asked but at most ``cap`` (None: the one asked): the pace
        governor's lever when the process cannot send what the model asks. The asked pace is kept, so the
        run goes back to it (and to what is left of its load shape) when the cap is lifted."""
        assert self.speed is not None
        self.cap = cap
        i = max(0, bisect_right([v for v, _ in self.asked], virtual_s) - 1)
        later = [(virtual_s, self.asked[i][1]), *(seg for seg in self.asked[i + 1 :] if seg[0] > virtual_s)]
        self._keep_from(virtual_s, later)

    def _keep_from(self, virtual_s: float, later: list[tuple[float, float]]) -> None:
        kept = [seg for seg in self.segments if seg[0] < virtual_s] or [(0.0, self.segments[0][1])]
        cap = self.cap
        self.segments = [*kept, *((v, s if cap is None else min(s, cap)) for v, s in later)]
        self._virtual, self._wall = [], []

    def rebase(self, wall_s: float) -> None:
        """Every virtual instant from now on happens ``wall_s`` later: a model that fell that far behind the clock
        goes on from where it is, instead of running after it (its calls would all be late)."""
        self.wall0 += wall_s

    def speed_at(self, virtual_s: float) -> float | None:
        """The pace kept at ``virtual_s`` (the governor's cap applied)."""
        return self._at(self.segments, virtual_s)

    def speed_asked_at(self, virtual_s: float) -> float | None:
        """The pace asked at ``virtual_s`` (speed, load shape, controls), whatever the governor kept."""
        return self._at(self.asked, virtual_s)

    def _at(self, segments: list[tuple[float, float]], virtual_s: float) -> float | None:
        if self.speed is None:
            return None
        i = max(0, bisect_right([v for v, _ in segments], virtual_s) - 1)
        return segments[i][1]

    def epoch(self, virtual_s: float) -> float:
        return self.start_epoch + virtual_s


def busy_s() -> float:
    """Seconds this thread has run or waited to run (``/proc/thread-self/schedstat``: on the CPU + on the run
    queue), so that a process that wants every cycle reads as busy on a machine shared with others; elsewhere
    the process's CPU time."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            on_cpu, waiting = fh.read().split()[:2]
        return (int(on_cpu) + int(waiting)) / 1e9
    except (OSError, ValueError):
        return time.process_time()


class Arrival(simpy.Event):
    """An answer's event: it fires ``delay`` virtual seconds from now, when the answer reaches the model. One event
    where a timeout and a callback firing a second event were two (a fifth of the model's steps per request)."""

    def arrive(self, value: object, delay: float) -> None:
        if self._value is not PENDING:
            raise RuntimeError(f"{self} has already been triggered")
        self._ok = True
        self._value = value
        self.env.schedule(self, NORMAL, delay)


class Bridge:
    """Runs a SimPy environment against the wall clock and completes MES calls through a transport."""

    def __init__(self, env: simpy.Environment, clock: Clock, transport: Transport, *, batch: int = 2000) -> None:
        if clock.speed is None or clock.speed <= 0:
            raise ValueError("the bridge needs a clock with a speed > 0 (1 = realtime)")
        self.env = env
        self.clock = clock
        self.transport = transport
        self.batch = batch  # at most this many events stepped before yielding to the loop...
        self.slice_s = 0.003  # ...or this much wall time, so that the sends of due calls leave on time
        self.in_flight = 0
        # Back-pressure: past this many calls in flight the model waits (its virtual time lags, the calls keep
        # their intended times, so the lateness is measured). Without it an overloaded twin keeps creating
        # requests until its own timers fire late and every host goes "offline" at once.
        self.max_in_flight = 1024
        self.most_in_flight = 0  # the most calls in flight at once (bounded by max_in_flight)
        self.held_s = 0.0  # wall time the model spent waiting on back-pressure
        self.paused_s = 0.0  # wall time virtual time stood still for the outside world (``hold_until``)
        # Past what the process can send, virtual time slows down (twin.sim.pace) rather than the model falling
        # ever further behind the clock: without it the lag grows until every call is late and times out.
        self.governor = PaceGovernor(clock)
        self._epoch_of_loop = 0.0  # epoch seconds - loop seconds (answers carry epoch send times)
        self._sent = [0.0, 0]  # send delays (actual - intended) summed, and counted, since the last governor tick
        # Other ways the twin falls behind, in wall seconds (a backlog its link cannot drain): the run adds them.
        self.lag_sources: list[Callable[[float], float]] = []
        # Work that can wait for an idle moment (the run's self-check), given the time (``loop_time``) to stop at.
        self.idle_work: list[Callable[[float], None]] = []
        self.idle_slice_s = 0.002
        self.max_late_s = 0.0  # worst lateness of a call handed to the transport vs its intended wall time
        self.late_calls = 0  # calls handed over more than 5 ms after their intended wall time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Answer]] = set()
        self.stopping = False  # set by stop(): the run ends at the next step (Ctrl-C)
        self._barriers: list[asyncio.Future[object]] = []
        self._until = float("inf")  # the run's end (virtual); ``end_at`` moves it
        self._stop: simpy.Event = env.event()

    # -- the gateway equipment use -------------------------------------------------------------------
    def wall_now(self) -> float | None:
        return self.clock.wall_at(self.env.now)

    def request(self, call: Call, then_s: float = 0.0) -> simpy.Event:
        """Hand the call to the transport now; the returned event fires (with the Answer) when it is answered.

        With ``then_s`` an accepted answer fires ``then_s`` virtual seconds after it arrived: the equipment
        waits for the MES and then works for ``then_s`` (an inbound followed by the process cycle) in one
        event instead of two.
        """
        loop = self._loop
        assert loop is not None, "the bridge is not running"
        call.wall_s = self.clock.wall_at(call.virtual_s)
        late = loop_time() - call.wall_s
        if late > self.max_late_s:
            self.max_late_s = late
        if late > 0.005:
            self.late_calls += 1
        event = Arrival(self.env)
        task = loop.create_task(self.transport.exchange(call))
        self._tasks.add(task)
        self.in_flight += 1
        task.add_done_callback(lambda t: self._answered(call, event, t, then_s))
        if self.in_flight > self.most_in_flight:
            self.most_in_flight = self.in_flight
        return event

    def tell(self, call: Call, on_refused: Callable[[Call], None]) -> None:
        """Send without waiting; ``on_refused`` runs (at the answer's virtual time) if the MES says no."""
        event = self.request(call)
        event.callbacks.append(lambda _e: None if call.ok else on_refused(call))

    def _answered(self, call: Call, event: Arrival, task: asyncio.Task[Answer], then_s: float = 0.0) -> None:
        self._tasks.discard(task)
        self.in_flight -= 1
        if task.cancelled():
            return
        exc = task.exception()
        answer = task.result() if exc is None else Answer(0, None, "", error=f"{type(exc).__name__}: {exc}")
        call.answer = answer
        if answer.sent_wall and call.wall_s is not None:  # how late it left: the transport's queue counts too
            sent = self._sent
            sent[0] += answer.sent_wall - self._epoch_of_loop - call.wall_s
            sent[1] += 1
        delay = self.arrival_at(loop_time()) - self.env.now
        if then_s and answer.ok_for(call.op):
            delay += then_s
        event.arrive(answer, delay)
        self._wake()

    def arrival_at(self, wall_s: float) -> float:
        """The virtual time at which the model takes what came at ``wall_s`` (``loop_time``: an answer, a call from
        the MES, a control): the clock's time then, or the model's now if the model is ahead of it (it stepped a
        slice ahead, or the pace governor re-based the clock behind it)."""
        return max(self.env.now, self.clock.virtual_at(wall_s))

    @property
    def until_s(self) -> float:
        """The run's end (virtual), as ``end_at`` last set it."""
        return self._until

    def inject(self, action: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``action`` inside the model at the virtual time of now (a call from the MES: 3.1, 3.2).

        The returned future resolves, with the action's result, once the model has run it, so that an
        equipment-side handler can answer the MES after the equipment has really reacted.
        """
        loop = self._loop
        assert loop is not None, "the bridge is not running"
        done: asyncio.Future[T] = loop.create_future()
        delay = self.arrival_at(loop_time()) - self.env.now

        def run(_event: simpy.Event) -> None:
            if done.done():
                return
            try:
                done.set_result(action())
            except Exception as exc:  # handed to the awaiting handler, which answers 400 with it
                done.set_exception(exc)

        self.env.timeout(delay).callbacks.append(run)
        self._wake()
        return done

    # -- the loop -------------------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self, delay_s: float) -> None:
        loop = self._loop
        assert loop is not None
        self._waiter = loop.create_future()
        handle = loop.call_later(delay_s, self._wake)
        try:
            await self._waiter
        finally:
            handle.cancel()
            self._waiter = None

    async def run(
        self,
        until_s: float,
        *,
        progress: Callable[[float], None] | None = None,
        progress_every_s: float = 0.5,
        close: bool = True,
    ) -> None:
        """Step the environment in step with the wall clock until virtual time ``until_s``.

        ``close=False`` leaves the calls in flight alone: another ``run`` goes on from here (a pre-roll's end).
        """
        self._loop = asyncio.get_running_loop()
        env = self.env
        self.clock.wall0 = loop_time() - (self.clock.wall_at(env.now) - self.clock.wall0)
        self.end_at(until_s)
        next_progress = loop_time()
        governor = self.governor
        governor.reset(loop_time(), env.now, busy_s(), self.held_s)
        self._epoch_of_loop = time.time() - loop_time()
        try:
            while not self._stop.processed and not self.stopping:
                target = min(self.clock.virtual_at(loop_time()), self._until)
                stepped = 0
                yield_at = loop_time() + self.slice_s
                while env.peek() <= target and stepped < self.batch and not self._stop.processed:
                    if (self._barriers and env.peek() > env.now) or self.in_flight >= self.max_in_flight:
                        break
                    env.step()
                    stepped += 1
                    if not stepped & 63 and loop_time() >= yield_at:
                        break  # a time slice, not only an event count: sends of due calls must not wait
                if self._barriers:  # virtual time stands still until the outside world has taken it all
                    barriers, self._barriers = self._barriers, []
                    paused = loop_time()
                    await asyncio.gather(*barriers)
                    waited = loop_time() - paused
                    self.clock.wall0 += waited
                    self.paused_s += waited
                    governor.reset(loop_time(), env.now, busy_s(), self.held_s)
                    continue
                if self._stop.processed:
                    break
                now = loop_time()
                if governor.due(now) and governor.tick(now, env.now, self._lag(now), busy_s(), self.held_s):
                    continue  # the clock was re-based or its pace changed: the next step is by the new one
                if progress is not None and now >= next_progress:
                    progress(env.now)
                    next_progress = loop_time() + progress_every_s
                if self.in_flight >= self.max_in_flight:
                    held = loop_time()
                    await self._sleep(0.005)  # an answer wakes it sooner
                    self.held_s += loop_time() - held
                    continue
                delay = self.clock.wall_at(env.peek()) - loop_time()
                if delay > 0.001 and self.idle_work:  # the model has nothing due: a moment for work that waits,
                    # in slices of at most ``idle_slice_s``: the loop must still read answers and send in between
                    for work in self.idle_work:
                        work(loop_time() + min(delay - 0.0005, self.idle_slice_s))
                    delay = self.clock.wall_at(env.peek()) - loop_time()
                if delay > 0:
                    await self._sleep(max(delay, TIMER_RESOLUTION_S))
                else:
                    await asyncio.sleep(0)  # let answers and the transport run between batches
        finally:
            if close:
                await self.close()
        if progress is not None:
            progress(env.now)

    def _lag(self, now: float) -> float:
        """How late the twin is, in wall seconds: its model (the next due event) or its sends (the mean delay of
        the calls answered since the last look, from their intended time to leaving: a transport that cannot
        keep up queues them behind the connections)."""
        model = now - self.clock.wall_at(min(self.env.peek(), self._until))
        total, count = self._sent
        self._sent = [0.0, 0]
        self._epoch_of_loop = time.time() - now
        return max(0.0, model, total / count if count else 0.0, *(source(now) for source in self.lag_sources))

    def end_at(self, until_s: float) -> None:
        """Run until virtual time ``until_s`` (set again while it runs: the end of a pre-roll moves the end)."""
        self._until = until_s
        self._stop = self.env.timeout(max(0.0, until_s - self.env.now))
        self._wake()

    def hold_until(self, done: asyncio.Future[object]) -> None:
        """Step no further until ``done`` (e.g. the MES has taken the opening WIP before it moves)."""
        self._barriers.append(done)

    def stop(self) -> None:
        """End the run now (Ctrl-C): ``run`` returns at its next step, with what was done so far."""
        self.stopping = True
        self._wake()

    async def close(self, grace_s: float = 2.0) -> None:
        """Let the exchanges in flight finish for up to ``grace_s`` (the MES may already have processed them:
        their answers belong in the record), then cancel the rest (calls waiting for an MES that is away)."""
        if self._tasks and grace_s > 0:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
