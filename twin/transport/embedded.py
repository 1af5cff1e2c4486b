"""The embedded MES of a run, as a process of its own on loopback, and its supervisor.

``twin run`` with no ``--mes`` runs the line against ``twin mes serve`` started here. It runs in its own
process so that the MES and the line model each get a core of a 2-core machine (DESIGN decision 6: the
embedded MES must never be the bottleneck of a default run), and so that what the twin measures is a
real HTTP service, not a function call. Its log goes to ``mes.log`` in the run folder; its database is
the run folder's ``mes.sqlite``, so the MES side of a run can be inspected afterwards.

Three things a run must be able to trust, whatever happens:

* **The MES never outlives its parent.** The child is told (``TWIN_MES_DIE_WITH``) to ask Linux for
  SIGKILL when its parent dies (``PR_SET_PDEATHSIG``) and to watch its parent besides, so a ``kill -9`` of
  ``twin run`` takes the MES with it. (The child does it itself, at its start: a ``preexec_fn`` is not safe
  in a process with threads.)
* **Its death is seen at once.** A task waits on the child; if it ends when nobody asked it to, ``died``,
  ``exit_code`` and the ``dead`` event say so, and ``on_death`` callbacks run.
* **A crash can be rehearsed.** ``--crash-after=S`` (with ``--restart-after=S``, default 5 s) among the
  MES arguments: the supervisor here kills the child with SIGKILL after S seconds and starts it again on
  the same port, from the same database, with the same admin token; ``events`` says when. The MES commits
  before it answers (``twin.mes.store``), so nothing acknowledged before the crash is lost.

The admin token (``/admin/*`` needs it) is generated here, handed to the child through
``TWIN_MES_ADMIN_TOKEN`` (never on the command line, which other users can read), kept by every restart,
and read back from the ``admin-token`` file the MES writes in the run folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson

from twin.errors import ConfigError, TwinError

log = logging.getLogger(__name__)
_LISTENING = re.compile(rb"listening on (http://\S+)")
DIE_WITH_ENV = "TWIN_MES_DIE_WITH"  # the parent's pid: the MES dies with it (see twin.commands.mes)
TOKEN_ENV = "TWIN_MES_ADMIN_TOKEN"
TOKEN_FILE = "admin-token"
CRASH_FLAGS = ("--crash-after", "--restart-after")
DEFAULT_RESTART_AFTER_S = 5.0


class MesStartError(TwinError):
    """The embedded MES did not come up."""


class MesArgsError(ConfigError, MesStartError):
    """The embedded MES refused its arguments (``--mes-arg``): bad input, exit 2."""


@dataclass(frozen=True, slots=True)
class MesEvent:
    """Something that happened to the MES process: ``crashed`` (the planned SIGKILL of ``--crash-after``),
    ``restarted`` (listening again after it), ``died`` (ended when nobody asked it to, or failed to
    restart). ``at`` is wall-clock time (``time.time()``), ``exit_code`` the process's (-9 for SIGKILL)."""

    kind: str
    at: float
    exit_code: int | None = None
    detail: str = ""


def split_crash_args(args: list[str]) -> tuple[list[str], float | None, float]:
    """``args`` without ``--crash-after``/``--restart-after`` (``=S`` or ``S`` forms), and their values:
    the crash delay (None: no crash) and the restart delay, both in seconds."""
    rest: list[str] = []
    values: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        name, eq, value = arg.partition("=")
        if name not in CRASH_FLAGS:
            rest.append(arg)
            continue
        if not eq:
            value = next(items, "")
        values[name] = value
    crash = _seconds(values["--crash-after"], "--crash-after", positive=True) if "--crash-after" in values else None
    restart = DEFAULT_RESTART_AFTER_S
    if "--restart-after" in values:
        if crash is None:
            raise ConfigError("--restart-after goes with --crash-after (the MES is restarted after a crash)")
        restart = _seconds(values["--restart-after"], "--restart-after", positive=False)
    return rest, crash, restart


def _seconds(text: str, flag: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} takes seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{flag} must be a finite number of seconds {'> 0' if positive else '>= 0'}, got {text}")
    return value


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


class EmbeddedMes:
    """``async with EmbeddedMes(folder, args) as mes: mes.url``: start, wait until it listens, supervise, stop.

    ``args`` are ``twin mes serve`` options; ``--crash-after``/``--restart-after`` among them are the
    supervisor's (a crash rehearsal), never passed on. ``echo`` (standalone ``twin mes serve``): the child's
    output goes there instead of ``mes.log``, and its stderr to ours. ``token_file``: where the MES writes
    its admin token (default: ``admin-token`` in ``folder``; with ``echo``, none unless given).
    """

    def __init__(
        self,
        folder: Path,
        args: list[str],
        *,
        start_timeout_s: float = 60.0,
        host: str = "127.0.0.1",
        port: int = 0,
        echo: TextIO | None = None,
        token_file: Path | None = None,
    ) -> None:
        self.folder = folder
        self.args, self.crash_after_s, self.restart_after_s = split_crash_args(list(args))
        self.start_timeout_s = start_timeout_s
        self.host, self.port = host, port
        self.echo = echo
        # where the MES writes its admin token: the run folder's admin-token (standalone: only if asked)
        self.token_file = token_file if token_file is not None or echo is not None else folder / TOKEN_FILE
        self.url = ""
        self.admin_token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
        self.events: list[MesEvent] = []
        self.died: float | None = None  # wall time the MES ended unexpectedly
        self.exit_code: int | None = None  # its exit code then (negative: the signal that ended it)
        self.dead = asyncio.Event()
        self._on_death: list[Callable[[EmbeddedMes], Any]] = []
        self._on_event: list[Callable[[MesEvent], Any]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Any = None
        self._stopping = False
        self._crashing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancellable: set[asyncio.Task[None]] = set()

    # -- what a run reads ----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def up(self) -> bool:
        """Listening now: not crashed (planned) and not dead."""
        return self._proc is not None and self._proc.returncode is None and not self._crashing

    @property
    def crashes(self) -> list[tuple[float, float | None]]:
        """Each planned crash as (crashed at, restarted at or None), wall-clock times."""
        out: list[tuple[float, float | None]] = []
        for event in self.events:
            if event.kind == "crashed":
                out.append((event.at, None))
            elif event.kind == "restarted" and out and out[-1][1] is None:
                out[-1] = (out[-1][0], event.at)
        return out

    def on_death(self, callback: Callable[[EmbeddedMes], Any]) -> None:
        """Call ``callback(self)`` (from the event loop) as soon as the MES dies unexpectedly."""
        self._on_death.append(callback)
        if self.died is not None:
            callback(self)

    def on_event(self, callback: Callable[[MesEvent], Any]) -> None:
        """Call ``callback(event)`` (from the event loop) for each event from now on: crashed, restarted, died."""
        self._on_event.append(callback)

    def _event(self, event: MesEvent) -> None:
        self.events.append(event)
        self._write(f"twin: {event.kind}: {event.detail}\n".encode())
        for callback in list(self._on_event):
            try:
                callback(event)
            except Exception:  # a listener's bug must not stop the supervisor
                log.exception("an on_event callback of the embedded MES failed")

    # -- life cycle ----------------------------------------------------------------------------------
    async def __aenter__(self) -> EmbeddedMes:
        if self.echo is None:
            self._log = (self.folder / "mes.log").open("wb")
        try:
            self.url = await self._start(self.port)
        except BaseException:
            await self.stop()
            raise
        self.port = _port_of(self.url)
        self._spawn(self._watch())
        if self.crash_after_s is not None:
            self._spawn(self._crash_rehearsal(self.crash_after_s, self.restart_after_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _command(self, port: int) -> list[str]:
        token = ["--admin-token-file", str(self.token_file)] if self.token_file is not None else []
        return [
            sys.executable,
            "-m",
            "twin",
            "mes",
            "serve",
            "--host",
            self.host,
            "--port",
            str(port),
            *token,
            *self.args,
        ]

    async def _start(self, port: int) -> str:
        cmd = self._command(port)
        self._write(b"$ " + " ".join(cmd).encode() + b"\n")
        env = {**os.environ, TOKEN_ENV: self.admin_token, DIE_WITH_ENV: str(os.getpid())}
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log if self._log is not None else None,
            start_new_session=True,  # Ctrl-C in the terminal reaches twin run, which stops the MES in order
            env=env,
        )
        try:
            url = await asyncio.wait_for(self._listening(), self.start_timeout_s)
        except MesStartError as exc:
            await self._kill()
            raise self._start_error(str(exc)) from None
        except TimeoutError:
            await self._kill()
            raise self._start_error(f"not listening after {self.start_timeout_s:g} s") from None
        if self.token_file is not None:
            with contextlib.suppress(OSError):  # the file says what the MES uses (a --mes-arg may set the token)
                self.admin_token = self.token_file.read_text().strip() or self.admin_token
        return url

    def _start_error(self, why: str) -> MesStartError:
        detail = ""
        if self._log is not None:
            self._log.flush()
            lines = (self.folder / "mes.log").read_text(errors="replace").strip().splitlines()
            detail = " | ".join(lines[-3:])
        code = self._proc.returncode if self._proc is not None else None
        cls = MesArgsError if code == 2 else MesStartError  # click and ConfigError say "bad input" with 2
        return cls(f"the embedded MES did not start ({why}): {detail}" if detail else f"the embedded MES: {why}")

    async def _listening(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = await self._proc.stdout.readline()
            if not line:
                raise MesStartError(f"exited with code {await self._proc.wait()}")
            self._write(line)
            if m := _LISTENING.search(line):
                self._spawn(self._copy_stdout(self._proc), cancel_on_stop=False)
                return m.group(1).decode()

    def _write(self, line: bytes) -> None:
        if self._log is not None:
            with contextlib.suppress(ValueError, OSError):
                self._log.write(line)
                self._log.flush()
        elif self.echo is not None:
            self.echo.write(line.decode(errors="replace"))
            self.echo.flush()

    async def _copy_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            async for line in proc.stdout:
                self._write(line)

    def _spawn(self, coro: Any, *, cancel_on_stop: bool = True) -> None:
        """A supervisor task; the copy of the child's output is left to end with the child's pipe."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if cancel_on_stop:
            self._cancellable.add(task)
            task.add_done_callback(self._cancellable.discard)

    async def _watch(self) -> None:
        """Wait on each child in turn; an end nobody asked for is a death, reported at once."""
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            if self._crashing or proc is not self._proc:  # the planned crash: wait for the restarted child
                while self._crashing and not self._stopping and self.died is None:
                    await asyncio.sleep(0.05)
                if self._stopping or self.died is not None:
                    return
                continue
            self._died(code, f"the MES process ended with code {code} when nobody asked it to")
            return

    def _died(self, code: int | None, detail: str) -> None:
        self.died, self.exit_code = time.time(), code
        self.dead.set()
        self._event(MesEvent("died", self.died, code, detail))
        for callback in list(self._on_death):
            try:
                callback(self)
            except Exception:  # a listener's bug must not hide the death from the others
                log.exception("an on_death callback of the embedded MES failed")

    async def _crash_rehearsal(self, after_s: float, restart_s: float) -> None:
        """The fault ``--crash-after``: SIGKILL after ``after_s``, a new MES on the same port after ``restart_s``."""
        await asyncio.sleep(after_s)
        proc = self._proc
        if self._stopping or self.died is not None or proc is None or proc.returncode is not None:
            return
        self._crashing = True
        proc.kill()
        code = await proc.wait()
        self._event(
            MesEvent("crashed", time.time(), code, f"MES killed with SIGKILL after {after_s:g} s (--crash-after)")
        )
        await asyncio.sleep(restart_s)
        if self._stopping:
            self._crashing = False
            return
        try:
            await self._start(self.port)
        except MesStartError as exc:
            self._crashing = False
            self._died(self._proc.returncode if self._proc else None, f"the MES did not restart after its crash: {exc}")
            return
        detail = f"MES restarted on {self.url} from its database, {restart_s:g} s after the crash"
        self._event(MesEvent("restarted", time.time(), None, detail))
        self._crashing = False

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        """SIGINT, then SIGKILL after 10 s; the supervisor's tasks end first."""
        self._stopping = True
        for task in list(self._cancellable):
            task.cancel()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- the admin API -------------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any] | None:
        """The MES's own counts (``GET /admin/stats``), or None if it cannot say."""
        return await self.get_json("/admin/stats")

    async def get_json(self, path: str) -> Any:
        return await self._json("GET", path)

    async def post_json(self, path: str, doc: Any) -> Any:
        return await self._json("POST", path, orjson.dumps(doc))

    async def _json(self, method: str, path: str, body: bytes | None = None) -> Any:
        """The admin API's answer as JSON, or None if it cannot be had (the run goes on and says so)."""
        headers = self.admin_headers
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.request(method, self.url + path, data=body, headers=headers) as resp,
            ):
                return orjson.loads(await resp.read()) if resp.status in (200, 400) else None
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return None
