"""``twin ipc``: the industrial-PC open platform (seed 002), as the virtual PC and as a driving client."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from twin import aio
from twin.commands.stopping import until_stopped
from twin.errors import ConfigError


@click.group()
def ipc() -> None:
    """Industrial-PC WebSocket: document camera pole and card dispenser.

    \b
      twin ipc serve                                   a virtual PC at ws://127.0.0.1:5000/WebSocketMessenger
      twin ipc drive ws://HOST:5000/WebSocketMessenger a scripted session against a real (or virtual) one
    """


@ipc.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True, help="0 picks a free port.")
@click.option(
    "--push-s",
    type=click.FloatRange(min=0.01),
    default=None,
    show_default="the profile's, 5",
    help="Picture push period (s).",
)
@click.option(
    "--customer-s",
    type=click.FloatRange(min=0),
    default=None,
    show_default="the profile's, 2",
    help="A customer inserts a card this long (s) after the front gate opens.",
)
@click.option(
    "--insert-timeout-s",
    type=click.FloatRange(min=0.01),
    default=None,
    show_default="the profile's, 30",
    help="0xE012 gives up after this long (s).",
)
@click.option(
    "--hopper", type=click.IntRange(0), default=None, show_default="the profile's, 50", help="Cards in the rear bin."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same behaviour.")
@click.option(
    "--duration-s", type=float, default=None, show_default="until Ctrl-C", help="Stop after this many seconds."
)
def serve(
    host: str,
    port: int,
    push_s: float | None,
    customer_s: float | None,
    insert_timeout_s: float | None,
    hopper: int | None,
    seed: int,
    duration_s: float | None,
) -> None:
    """Serve a virtual industrial PC (camera pole + card dispenser) over WebSocket."""
    from twin.ipc.server import IpcServer

    server = IpcServer(
        push_s=push_s, customer_s=customer_s, insert_timeout_s=insert_timeout_s, hopper=hopper, seed=seed
    )
    aio.run(_serve(server, host, port, duration_s))


async def _serve(server: Any, host: str, port: int, duration_s: float | None) -> None:
    from twin.ipc.spec import WS_PATH

    try:
        bound = await server.start(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(
        f"industrial PC at ws://{host}:{bound}{WS_PATH}"
        f"  (snapshots at http://{host}:{bound}/snapshots/, state at /twin/state)"
    )
    click.echo(
        f"picture push every {server.push_s:g} s while the camera is on; {server.dispenser.hopper} cards in the bin"
    )
    server.on_event = _print_event
    try:
        await until_stopped(duration_s)
    finally:
        await server.stop()
        click.echo("state: " + json.dumps(server.state(), ensure_ascii=False))


def _script(path: Path | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    try:
        steps = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read script {path}: {exc}") from None
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and ({"send", "wait", "raw"} & set(s)) for s in steps
    ):
        raise ConfigError(f"script {path}: expected a list of steps, each with send, wait or raw (see x-twin-session)")
    for i, step in enumerate(steps, 1):
        if "send" in step and not isinstance((step["send"] or {}).get("cmd"), int):
            raise ConfigError(f"script {path}: step {i}: send.cmd must be a number such as 0xE011")
    return steps


@ipc.command()
@click.argument("url")
@click.option(
    "--script",
    "script_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Steps (YAML) instead of the profile's default session.",
)
@click.option(
    "--reply-timeout-s",
    type=click.FloatRange(min=0.01),
    default=40.0,
    show_default=True,
    help="Wait for an answer (s).",
)
@click.option(
    "--push-timeout-s",
    type=click.FloatRange(min=0.01),
    default=None,
    show_default="2 x push period + 5",
    help="Wait for a picture push at most (s).",
)
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the step results here."
)
def drive(
    url: str, script_path: Path | None, reply_timeout_s: float, push_timeout_s: float | None, json_out: Path | None
) -> None:
    """Run a scripted session against the industrial PC at URL; exit 1 if any step fails."""
    from twin.ipc.driver import IpcSessionFailed
    from twin.ipc.driver import drive as run_session

    results = aio.run(
        run_session(url, _script(script_path), reply_timeout_s=reply_timeout_s, push_timeout_s=push_timeout_s)
    )
    console = Console(highlight=False, markup=False, width=160)
    table = Table(title=f"session with {url}")
    for col in ("#", "step", "id", "ok", "ms", "answer"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            str(r.index), r.action, str(r.message_id or ""), "yes" if r.ok else "NO", f"{r.latency_ms:.1f}", r.detail
        )
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps([r.summary() for r in results], ensure_ascii=False, indent=1), encoding="utf-8")
    failed = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(failed)} of {len(results)} steps as expected")
    if failed:
        raise IpcSessionFailed(
            f"{len(failed)} of {len(results)} steps failed: " + ", ".join(f"#{r.index} {r.action}" for r in failed)
        )


def _print_event(text: str) -> None:
    """One line per client event, with the time it happened."""
    click.echo(f"{datetime.now():%H:%M:%S.%f}"[:-3] + " " + text)
