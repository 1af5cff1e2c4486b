"""A permissive MES built from the profile's examples alone: the kind of MES a new user points the twin at.

It shares none of the embedded MES's assumptions: every section-2 path answers with the spec's printed
example (``spec``; the realistic one where the spec printed none), the login hands out a ``Bearer ...``
token, and nothing is checked but what a strict acceptance test checks of the traffic itself: the path
exists, the token is there, and the order the requests were processed in. It can hang (an outage in which
requests are taken and never answered, then dropped) and be slow at random, to shuffle concurrent requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from twin.profile import Profile

# The interfaces that hand out barcodes (2.20 a batch, 2.23 roll codes, 2.33 a cell code): their printed examples
# ("SFC001") are made unique with a running number, as any MES's codes are, and 2.23 gives as many as its Qty
# asks (its example shows one); every other answer is the example.
ISSUERS = {"OutputEqu", "GenerateSfc", "GenerateCellSfc"}


@dataclass
class Seen:
    """One request the MES processed."""

    at: float
    operation: str
    equipment: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class PermissiveMes:
    profile: Profile
    jitter_s: float = 0.0  # each request is processed after a random delay up to this (shuffles concurrency)
    login_delay_s: float = 0.0  # while > 0, logins are answered this late (a start-up storm)
    login_refusals: int = 0  # the next this many logins are answered 503 (an MES overwhelmed at start-up)
    seed: int = 1
    seen: list[Seen] = field(default_factory=list)
    unknown_paths: Counter[str] = field(default_factory=Counter)
    unauthenticated: list[Seen] = field(default_factory=list)
    dropped: int = 0  # requests taken during a hang and never answered
    _hang: asyncio.Event | None = None
    _rng: random.Random = field(init=False)
    _answers: dict[str, tuple[str, bytes, bool]] = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._answers = {}
        self._examples: dict[str, dict[str, Any]] = {}
        self._issued = 0
        for op in self.profile:
            if op.direction != "client-to-server":
                continue
            examples = op.response_examples.get("200") or {}
            example = examples.get("spec") or examples.get("realistic") or {"code": 0, "msg": "Success"}
            # 2.28 and 2.50 share /Outbound: the first (2.28) names it; both answer the same envelope
            self._answers.setdefault(op.path, (op.operation_id, orjson.dumps(example), op.needs_auth))
            self._examples[op.operation_id] = example

    # -- faults ---------------------------------------------------------------------------------------
    def hang(self) -> None:
        """From now on requests are taken and never answered (until ``release``), then dropped."""
        self._hang = asyncio.Event()

    def release(self) -> None:
        if self._hang is not None:
            self._hang.set()
            self._hang = None

    # -- serving ----------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        answer = self._answers.get(request.path)
        if answer is None:
            self.unknown_paths[request.path] += 1
            raise web.HTTPNotFound()
        op_id, body, needs_auth = answer
        raw = await request.read()
        if self._hang is not None:
            hang = self._hang
            self.dropped += 1
            await hang.wait()
            raise web.HTTPServiceUnavailable()  # what was taken during the hang is lost, as in a crash
        if op_id == "OperatorLogin" and self.login_delay_s > 0:
            await asyncio.sleep(self.login_delay_s)
        if op_id == "OperatorLogin" and self.login_refusals > 0:
            self.login_refusals -= 1
            raise web.HTTPServiceUnavailable()
        if self.jitter_s:
            await asyncio.sleep(self._rng.uniform(0.0, self.jitter_s))
        payload = orjson.loads(raw) if raw else {}
        if len(self.profile.operations_at(request.path, "post")) > 1:  # 2.28 and 2.50 share /Outbound
            op_id = self.profile.match(request.path, payload)[0].operation_id
        lowered = {str(k).lower(): v for k, v in payload.items()} if isinstance(payload, dict) else {}
        auth = request.headers.get("Authorization")
        seen = Seen(time.time(), op_id, str(lowered.get("equipmentcode")), payload, auth)
        self.seen.append(seen)
        if needs_auth and not (seen.authorization or "").startswith("Bearer "):
            self.unauthenticated.append(seen)
            raise web.HTTPUnauthorized()
        if op_id in ISSUERS:
            qty = lowered.get("qty")
            body = orjson.dumps(self._issue(self._examples[op_id], qty if isinstance(qty, int) else 1))
        return web.Response(body=body, content_type="application/json")

    def _issue(self, example: dict[str, Any], qty: int) -> dict[str, Any]:
        def unique(code: Any) -> Any:
            self._issued += 1
            return f"{code}-{self._issued:07d}" if isinstance(code, str) else code

        data = example.get("data")
        if isinstance(data, list) and data:
            fresh: Any = [unique(data[0]) for _ in range(max(1, min(qty, 100)))]
        else:
            fresh = unique(data)
        return {**example, "data": fresh}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    # -- what a strict acceptance would ask --------------------------------------------------------------
    def reached(self) -> set[str]:
        return {s.operation for s in self.seen}

    def order_violations(self, key: Any, made_key: Any) -> list[str]:
        """Requests processed out of their made order within ``key``'s groups (``made_key`` gives the order)."""
        last: dict[Any, Any] = {}
        bad = []
        for s in self.seen:
            k, made = key(s), made_key(s)
            if k is None or made is None:
                continue
            if k in last and made < last[k]:
                bad.append(f"{k}: {made} after {last[k]}")
            last[k] = max(made, last.get(k, made))
        return bad


async def serve(mes: PermissiveMes) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(mes.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def foreign_mes(report: Path) -> Iterator[str]:
    """The permissive MES in a process of its own, as a user would run one: yields its URL; what it saw is in
    ``report`` (JSON) once the block ends."""
    command = [sys.executable, "-m", "tests.transport.permissive_mes", str(report)]
    mes = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert mes.stdout is not None
        yield mes.stdout.readline().strip()
    finally:
        mes.terminate()
        mes.wait(timeout=30)
        if mes.stdout is not None:
            mes.stdout.close()


def main() -> None:
    """``python -m tests.transport.permissive_mes REPORT.json``: serve on a free loopback port, print the URL,
    and on SIGTERM write what was seen (a foreign MES in a process of its own, as a user would run one)."""
    import json
    import signal

    from twin.profile import load_profile

    async def serve_until_term() -> None:
        mes = PermissiveMes(load_profile("qingke-mes-v1"))
        runner, url = await serve(mes)
        print(url, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()
        report = {
            "reached": sorted(mes.reached()),
            "counts": Counter(s.operation for s in mes.seen),
            "unknown_paths": mes.unknown_paths,
            "unauthenticated": [(s.operation, s.equipment) for s in mes.unauthenticated][:50],
            "status_order_violations": mes.order_violations(
                lambda s: s.equipment if s.operation in ("State", "Alarm") else None,
                lambda s: str(s.body.get("localTime")),
            )[:50],
        }
        with open(sys.argv[1], "w", encoding="utf-8") as f:
            json.dump(report, f)

    asyncio.run(serve_until_term())


if __name__ == "__main__":
    main()
