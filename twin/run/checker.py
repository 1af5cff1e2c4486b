"""The run's self-check in a process of its own, so checking the traffic never slows sending it.

Feeding every exchange to the proxy's rules (``twin.run.selfcheck``) costs about 13-19 µs of CPU per exchange,
a fifth of what the twin spends on a request with the whole model (issue 14; 20-28 µs before the rules ran with
fewer garbage collections). In the run's process it was paid
in the loop that sends the requests; here the run only notes each exchange as the bytes it already has (the body
it sent, the answer it read, its two times on the line's clock), about 1 µs, and a writer thread hands batches
over a pipe to a checker process, which parses them again and feeds the same ``SelfCheck`` in the same order.

Nothing is dropped quietly: if the checker falls more than ``MAX_QUEUED`` exchanges behind (a machine without a
core to spare for it), later exchanges are not checked and the summary says how many (``not_checked``); if the
checker process dies, the summary says so (``error``) and counts every exchange it did not check.

The checker is a plain child interpreter (``python -m twin.run.checker``) reading and writing two pipes with
``multiprocessing``'s framing, not a ``multiprocessing.Process``: that one re-imports the parent's ``__main__`` in
the child, which breaks any script that runs the twin without an ``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from twin import aio
from twin.datadirs import child_pythonpath
from twin.errors import ConfigError
from twin.hil.rules import load_behaviour
from twin.profile import Operation, Profile

BATCH = 256  # exchanges per message
MAX_QUEUED = 200_000  # exchanges handed to the writer and not yet written to the pipe: past this, not checked
SUMMARY_TIMEOUT_S = 300.0  # the checker finishes what it holds, then answers; a dead one is seen at once


class CheckerProcess:
    """The run's side: ``observe`` each exchange, ``opening`` for warm WIP, ``summary()`` at the end, ``close()``."""

    def __init__(
        self,
        profile: Profile,
        processes: dict[str, str],
        line_time: Callable[[float], float],
        virtual_of: Callable[[float], float],
    ) -> None:
        self.line_time = line_time  # virtual seconds of the run -> epoch seconds of the line's clock
        self.virtual_of = virtual_of  # epoch wall seconds -> virtual seconds of the run
        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        env = {**os.environ, "PYTHONPATH": child_pythonpath()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "twin.run.checker", str(from_parent), str(to_parent)],
            pass_fds=(from_parent, to_parent),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        os.close(from_parent)
        os.close(to_parent)
        self._out = Connection(to_child, readable=False)
        self._in = Connection(from_child, writable=False)
        ref = str(profile.source) if profile.source is not None else profile.name
        self._batch: list[tuple[Any, ...]] = []
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._queued = 0  # exchanges handed to the writer (the loop's thread counts)
        self._written = 0  # ... and written to the pipe (the writer's thread counts)
        self.not_checked = 0
        self._writer_error: str | None = None
        self._queue.put(("start", (ref, profile.casing, processes)))
        self._writer = threading.Thread(target=self._write, name="twin-self-check-writer", daemon=True)
        self._writer.start()
        self._summary: dict[str, Any] | None = None

    @classmethod
    def for_run(
        cls,
        profile: Profile,
        processes: dict[str, str],
        line_time: Callable[[float], float],
        virtual_of: Callable[[float], float],
    ) -> CheckerProcess | None:
        """None when the profile has no behavioural rules (another MES's swagger.json): nothing to hold to."""
        try:
            load_behaviour(profile)
        except ConfigError:
            return None
        return cls(profile, processes, line_time, virtual_of)

    # -- the run's thread -----------------------------------------------------------------------------
    def observe(self, op: Operation, body: dict[str, Any], equipment: str, token: str | None, reply: Any) -> None:
        """One exchange the host link made (``reply`` is a ``twin.transport.http.Reply``)."""
        ex = reply.exchange
        sent = self.line_time(ex.intended_virtual_s)  # when the host meant to send it: its behaviour, not our pace
        answered = max(sent, self.line_time(self.virtual_of(ex.answered_wall)))  # when the host had the answer
        request = reply.request or orjson.dumps(body)
        self._batch.append(
            (op.operation_id, request, equipment, token, reply.status, reply.raw, reply.error, sent, answered)
        )
        if len(self._batch) >= BATCH:
            self._ship()

    def drain(self, until: float | None = None) -> None:
        """Hand over what was noted (the bridge calls it when idle; ``until`` is not needed: it takes no time)."""
        if self._batch:
            self._ship()

    def opening(self, equipment: str, cells: list[str], tray: str | None) -> None:
        """The opening WIP of a warm line, told to the rules after what was made before, as it happened."""
        self.drain()
        self._queue.put(("opening", (equipment, cells, tray)))

    def _ship(self) -> None:
        batch, self._batch = self._batch, []
        if self._queued - self._written + len(batch) > MAX_QUEUED or self.process.poll() is not None:
            self.not_checked += len(batch)
            return
        self._queued += len(batch)
        self._queue.put(("exchanges", batch))

    def summary(self) -> dict[str, Any]:
        """The checker's summary once it has checked everything handed to it (see ``SelfCheck.summary``)."""
        if self._summary is not None:
            return self._summary
        self.drain()
        self._queue.put(("summary", None))
        found: dict[str, Any] | None = None
        why = ""
        try:
            if self._in.poll(SUMMARY_TIMEOUT_S):
                found = self._in.recv()
            else:
                why = f"no answer in {SUMMARY_TIMEOUT_S:g} s"
        except (EOFError, OSError) as exc:
            why = f"the self-check process ended (exit code {self.process.poll()}): {exc or 'pipe closed'}"
        if found is None:
            why = self._writer_error or why
            found = {"error": why, "exchanges_checked": 0, "violations": 0, "by_rule": {}, "by_interface": {}}
            self.not_checked += self._queued
        found["checked_by"] = "a process of its own (twin.run.checker)"
        found["not_checked"] = self.not_checked
        self._summary = found
        return found

    def close(self) -> None:
        """Stop the writer and the checker (which has answered the summary, or is not needed any more)."""
        self._queue.put(None)
        self._writer.join(timeout=5.0)
        try:
            self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5.0)
        self._out.close()
        self._in.close()

    # -- the writer's thread --------------------------------------------------------------------------
    def _write(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                with contextlib.suppress(OSError, ValueError):
                    self._out.send_bytes(pickle.dumps(("stop", None), pickle.HIGHEST_PROTOCOL))
                return
            try:
                self._out.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError) as exc:  # the checker died: the summary says so
                self._writer_error = f"the self-check process ended (exit code {self.process.poll()}): {exc}"
                return
            if message[0] == "exchanges":
                self._written += len(message[1])


def serve(read: Connection, write: Connection) -> None:
    """The checker process: a ``SelfCheck`` fed each batch, in order, until told to stop (or the run is gone)."""
    from twin.profile import load_profile
    from twin.run.selfcheck import SelfCheck
    from twin.transport.http import envelope

    check: SelfCheck | None = None
    ops: dict[str, Operation] = {}
    while True:
        try:
            kind, payload = pickle.loads(read.recv_bytes())
        except (EOFError, OSError):
            return
        if kind == "start":
            ref, casing, processes = payload
            profile = load_profile(ref, casing=casing)
            check, ops = SelfCheck(profile, processes), profile.operations
        elif check is None:
            return
        elif kind == "exchanges":
            for op_id, request, equipment, token, status, raw, error, sent, answered in payload:
                op = ops[op_id]
                body = orjson.loads(request)
                code, msg, data, _ = envelope(op, raw) if status else (None, "", None, "")
                check.record(op, body, equipment, token, status, code, msg, data, error, sent, answered)
        elif kind == "opening":
            check.opening(*payload)
        elif kind == "summary":
            write.send(check.summary())
        else:
            return


if __name__ == "__main__":
    # Ctrl-C and SIGTERM reach the whole process group: the run handles them and still wants this summary. The
    # checker ends when the run says so, or when its pipe closes (the run is gone, however it ended).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    aio.collect_less()
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
