"""A keep-alive HTTP/1.1 connection pool for the hot path: one request per connection at a time.

Why not aiohttp's client here: on this machine's loopback it tops out near 5,600 req/s against nginx,
no faster than Locust, while the twin must emit profile-built, recorded traffic at 1.5x Locust with the
whole model running (``benchmarks/bench_transport.py``). Its per-request cost is in features the twin does
not use on this path (cookies, redirects, middlewares, multipart, per-request timeouts as tasks). No
maintained library offers a bare pooled HTTP/1.1 client for asyncio, so this module hand-writes the pool
and the request line; parsing responses is left to ``httptools`` (the parser uvicorn uses). aiohttp
remains the client everywhere speed does not matter and the server everywhere.
"""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    """A request got no usable HTTP answer; ``kind`` is timeout, refused, reset or bad-http."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class _Connection(asyncio.Protocol):
    __slots__ = ("_body", "_parser", "_waiter", "answered", "closed", "deadline", "keep_alive", "transport", "uses")

    def __init__(self) -> None:
        self.deadline = 0.0  # the loop time the request on it times out at
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._body: list[bytes] = []
        self.closed = False
        self.keep_alive = True
        self.uses = 0  # requests sent on this connection
        self.answered = False  # a byte of the current request's answer has arrived

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError("bad-http", str(exc)))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError("reset", str(exc) if exc else "connection closed by the server"))

    # -- httptools callbacks -----------------------------------------------------------------------
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        body, self._body = b"".join(self._body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body, self._headers()))

    def _headers(self) -> list[tuple[bytes, bytes]]:
        return NO_HEADERS  # the hot path reads none: httptools calls no header callback when there is none

    # -- use ----------------------------------------------------------------------------------------
    def send(self, raw: bytes, waiter: asyncio.Future[Answer]) -> None:
        self._waiter = waiter
        self.uses += 1
        self.answered = False
        assert self.transport is not None
        self.transport.write(raw)

    def expire(self) -> None:
        """The request on it ran out of time: its caller gets a timeout (and closes the connection)."""
        waiter = self._waiter
        if waiter is not None:
            _expire(waiter)

    def _fail(self, exc: HttpError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _HeaderConnection(_Connection):
    """A connection that also keeps the answer's headers (a forwarding proxy passes some of them on)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        super().__init__()
        self._kept: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._kept.append((name, value))

    def _headers(self) -> list[tuple[bytes, bytes]]:
        kept, self._kept = self._kept, []
        return kept


NO_HEADERS: list[tuple[bytes, bytes]] = []
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, body, headers (kept only with keep_headers)


class HttpPool:
    """Up to ``size`` keep-alive connections to one origin; ``post`` waits for a free one.

    ``timeout_s`` bounds a request end to end: the wait for a free connection, the connect and the answer
    all count (a load tool whose timeout ignores its own queue reports a 20 s call as "5 s at most").
    """

    def __init__(self, base_url: str, *, size: int = 64, timeout_s: float = 5.0, keep_headers: bool = False) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the hot-path client speaks plain http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.size = size
        self.timeout_s = timeout_s
        self._host_header = f"Host: {parts.netloc}\r\n".encode()
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self.opened = 0  # connections opened over the pool's life (keep-alive working: about ``size``)
        self.stale_retries = 0  # requests sent again because a kept-alive connection had died unseen
        self._waiters: deque[tuple[asyncio.Future[_Connection | None], float]] = deque()  # (waiter, deadline)
        self._protocol = _HeaderConnection if keep_headers else _Connection
        # Connections with a request in flight (an ordered set), and the one timer that times them out, and the
        # requests waiting for a connection too: a timer per request (call_later, then cancel) was a twentieth of
        # the hot path's CPU (issue 14), and past its capacity most requests wait for a connection.
        self._busy: dict[_Connection, None] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = float("inf")

    def _idle_connection(self) -> _Connection | None:
        """A kept-alive connection free now (the last used: warm), or None; those closed meanwhile are dropped."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._open -= 1
        return None

    async def _acquire(self, deadline: float) -> _Connection:
        """A connection when none is idle (``send`` took an idle one itself): a new one, or the next one freed."""
        loop = asyncio.get_running_loop()
        if self._open >= self.size:
            fut: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiters.append((fut, deadline))  # timed out by the sweep, as requests in flight are
            if deadline < self._sweep_at:
                self._arm(loop, deadline)
            try:
                conn = await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.exception() is None and fut.result() is not None:
                    self._release(fut.result())  # handed a connection just as the caller went away
                raise
            if conn is not None:
                return conn
        return await self._connect(deadline)

    async def _connect(self, deadline: float) -> _Connection:
        self._open += 1
        self.opened += 1
        try:
            loop = asyncio.get_running_loop()
            remaining = max(0.0, deadline - loop.time())
            _, conn = await asyncio.wait_for(loop.create_connection(self._protocol, self.host, self.port), remaining)
        except (OSError, TimeoutError) as exc:
            self._open -= 1
            self._wake(None)
            kind = "timeout" if isinstance(exc, TimeoutError) else "refused"
            raise HttpError(kind, str(exc)) from None
        except BaseException:
            self._open -= 1
            self._wake(None)
            raise
        return conn

    def _wake(self, conn: _Connection | None) -> bool:
        while self._waiters:
            fut, _ = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return True
        return False

    def _release(self, conn: _Connection) -> None:
        if conn.closed or not conn.keep_alive:
            conn.close()
            self._open -= 1
            self._wake(None)  # a waiter may now open a connection of its own
        elif not self._wake(conn):
            self._idle.append(conn)

    async def post(
        self, path: str, body: bytes, headers: bytes = b"", *, deadline: float | None = None
    ) -> tuple[int, bytes]:
        """POST and return (status, body). ``headers`` are complete ``Name: value\\r\\n`` lines.

        ``deadline`` (the loop's clock) ends the request however far it got; default: ``timeout_s`` from now.
        """
        status, answer, _ = await self.send(b"POST ", path, body, headers, deadline)
        return status, answer

    async def request(
        self, method: str, target: str, body: bytes, headers: bytes = b"", *, deadline: float | None = None
    ) -> Answer:
        """Any method to ``target`` (path and query): (status, body, headers). The answer's headers are
        kept only by a pool made with ``keep_headers`` (the proxy's upstream); its body is passed as sent
        (no decompression)."""
        return await self.send(method.encode("ascii") + b" ", target, body, headers, deadline)

    async def send(self, method: bytes, target: str, body: bytes, headers: bytes, deadline: float | None) -> Answer:
        """``method`` (``b"POST "``: the verb and a space) to ``target``; ``post`` and ``request`` in one frame less
        (the host link's hot path calls this)."""
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.timeout_s
        raw = b"".join(
            (
                method,
                (self.prefix + target).encode(),
                b" HTTP/1.1\r\n",
                self._host_header,
                headers,
                b"Content-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        conn = self._idle_connection()
        if conn is None:
            conn = await self._acquire(deadline)
        try:
            return await self._exchange(conn, raw, deadline)
        except HttpError as exc:
            # A kept-alive connection the server closed while it sat idle fails before a byte of answer; the
            # request never reached the application, so it goes once more on a fresh connection (as curl does).
            if exc.kind != "reset" or conn.uses < 2 or conn.answered or loop.time() >= deadline:
                raise
        self.stale_retries += 1
        return await self._exchange(await self._connect(deadline), raw, deadline)

    async def _exchange(self, conn: _Connection, raw: bytes, deadline: float) -> Answer:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        conn.deadline = deadline
        self._busy[conn] = None
        if deadline < self._sweep_at:
            self._arm(loop, deadline)
        conn.send(raw, waiter)
        try:
            return await waiter
        except HttpError:
            conn.close()
            raise
        except asyncio.CancelledError:
            conn.close()  # an answer may still come: this connection cannot carry another request
            raise
        finally:
            del self._busy[conn]
            self._release(conn)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep_at = at
        self._sweep = loop.call_at(at, self._expire_due, loop)

    def _expire_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out every request past its deadline (sent, or waiting for a connection), and sleep until the next
        deadline."""
        self._sweep, self._sweep_at = None, float("inf")
        now = loop.time()
        nearest = float("inf")
        for conn in list(self._busy):
            if conn.deadline <= now:
                conn.expire()
            elif conn.deadline < nearest:
                nearest = conn.deadline
        for fut, deadline in self._waiters:  # those done are dropped by ``_wake``
            if fut.done():
                continue
            if deadline <= now:
                _expire(fut, "no free connection")
            elif deadline < nearest:
                nearest = deadline
        if nearest < float("inf"):
            self._arm(loop, nearest)

    def close_idle(self) -> None:
        """Close the kept-alive connections no request is using (those in use close when answered)."""
        while self._idle:
            self._idle.pop().close()
            self._open -= 1

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep, self._sweep_at = None, float("inf")
        self.close_idle()
        while self._waiters:
            fut, _ = self._waiters.popleft()
            if not fut.done():
                fut.cancel()
        self._open = 0


def _expire(waiter: asyncio.Future, detail: str = "") -> None:
    if not waiter.done():
        waiter.set_exception(HttpError("timeout", detail))
