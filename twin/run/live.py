"""The live view of a networked run and its closing summary (rich), and Ctrl-C handling.

On a terminal the view is redrawn twice a second; elsewhere (CI logs, pipes) one plain line is printed
every 15 s, so that a long run shows it is alive without flooding a log.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from twin import aio
from twin.run.interrupts import INTERRUPTS
from twin.run.networked import NetworkedRun
from twin.run.web import WebAddress, with_web_view

PLAIN_EVERY_S = 15.0


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def fault_line(fault: dict[str, Any]) -> str:
    """One line, printed the moment a fault is seen."""
    if fault.get("kind") == "mes-died":
        return (
            f"MES DIED: the embedded MES process ended ({fault.get('how')}) at {_hms(fault.get('virtual_s', 0))} "
            "virtual; stopping the run (exit code 3)"
        )
    return f"FAULT: {fault}"


def fault_summary(summary: dict[str, Any]) -> list[str]:
    """The closing lines about faults: what happened and what was never delivered."""
    faults = summary.get("faults") or {}
    out = [fault_line({"kind": "mes-died", **d}) for d in faults.get("mes_died", [])]
    for c in faults.get("planned_crashes", []):
        drain = f"{c['drain_s']:.1f} s" if isinstance(c.get("drain_s"), int | float) else "-"
        out.append(
            f"planned MES crash at {c['crashed']}: down {c.get('down_s') or '-'} s, {c.get('queued') or 0:,} "
            f"records queued, {c.get('resent') or 0:,} re-uploaded, max backlog {c.get('max_backlog') or 0:,}, "
            f"drained in {drain}"
        )
    lost = summary.get("undelivered", {})
    if lost.get("records"):
        ops = ", ".join(f"{op} {n:,}" for op, n in sorted(lost.get("records_by_operation", {}).items()))
        out.append(f"NOT DELIVERED: {lost['records']:,} records left in the outbox ({ops or 'outbox.sqlite'})")
    if lost.get("calls"):
        ops = ", ".join(f"{op} {n:,}" for op, n in sorted(lost.get("calls_by_operation", {}).items()))
        out.append(f"NEVER ANSWERED: {lost['calls']:,} calls still waiting for the MES at the end ({ops})")
    if summary.get("hurt"):
        out.append("the run was hurt: " + "; ".join(summary["hurt"]))
    return out


def status_line(st: dict[str, Any], rate: float) -> str:
    link = "online" if st["online"] else "MES OFFLINE"
    if "mes-died" in st.get("faults", ()):
        link = "MES DIED"
    backlog = f", backlog {st['backlog']:,}" if st["backlog"] else ""
    saturated = ""
    if st.get("saturated"):  # the process cannot send what the model asks: virtual time slowed (twin.sim.pace)
        saturated = (
            f" | TWIN SATURATED: speed {st['speed_kept']:,.0f} of {st['speed_asked']:,.0f} asked"
            " (the twin's limit, not the MES's)"
        )
    return (
        f"{_hms(st['virtual_s'])} of {_hms(st['duration_s'])} virtual | cells out {st['cells_out']:,} | "
        f"{st['requests']:,} requests, {rate:,.0f}/s | p50 {st['p50_ms']:.1f} ms p99 {st['p99_ms']:.1f} ms | "
        f"errors {st['failures']:,} | late starts {st['late_starts']:,} | interlocks {st['interlocks']} | "
        f"{link}{backlog}{saturated}"
    )


def pace_line(summary: dict[str, Any]) -> str:
    """The closing line of a saturated run (empty when the twin kept the pace asked)."""
    pace = summary.get("pace") or {}
    if not pace.get("saturated"):
        return ""
    return (
        f"TWIN SATURATED: this process could not send what the model asked at speed {pace['speed_asked']:g}; "
        f"virtual time slowed to {pace['speed_achieved'] or 0:,.1f} on average (lowest "
        f"{pace.get('speed_lowest_kept') or pace['speed_achieved'] or 0:,.1f}) "
        f"for {pace['saturated_s']:,.1f} s of wall time: these figures are the twin's limit, not the MES's"
    )


class LiveView:
    """Called by the run at every progress tick; keeps the request rate over the last seconds."""

    def __init__(self, console: Console, live: Live | None) -> None:
        self.console = console
        self.live = live
        self._last = (time.monotonic(), 0)
        self._rate = 0.0
        self._printed = time.monotonic()

    def __call__(self, run: NetworkedRun) -> None:
        now = time.monotonic()
        if self.live is None and now - self._printed < PLAIN_EVERY_S:
            return
        st = run.status()
        then, count = self._last
        if now - then >= 1.0:
            self._rate = (st["requests"] - count) / (now - then)
            self._last = (now, st["requests"])
        text = status_line(st, self._rate)
        if self.live is not None:
            self.live.update(text)
        elif now - self._printed >= PLAIN_EVERY_S:
            self._printed = now
            self.console.print(text)


def run_live(session: NetworkedRun, *, quiet: bool = False, web: WebAddress | None = None) -> dict[str, Any]:
    """Run with the live view; Ctrl-C (SIGINT) or SIGTERM ends the run cleanly."""
    err = Console(stderr=True, highlight=False, markup=False)
    if not quiet:
        err.print(f"run folder {session.path}")

    session.on_fault.append(lambda fault: err.print(fault_line(fault)))  # at once, above the live view

    main = drive(session, err, lambda live: LiveView(err, live), quiet=quiet)
    return aio.run(with_web_view(main, session, web, err.print))  # --web: the page around the run


class Runnable(Protocol):
    def stop(self) -> None: ...

    async def run(self, progress: Any = None) -> dict[str, Any]: ...


async def drive(
    session: Runnable, err: Console, view: Callable[[Live | None], Any], *, quiet: bool = False
) -> dict[str, Any]:
    """Run ``session`` (one run or a sharded one) with ``view(live)`` as its progress, redrawn on a terminal
    and printed as plain lines elsewhere; Ctrl-C (SIGINT) or SIGTERM ends it cleanly."""
    loop = asyncio.get_running_loop()
    if INTERRUPTS.mode == "stop":  # twin run: one handler for the whole command (twin.run.interrupts)
        INTERRUPTS.attach(loop)
    else:
        aio.handle_signals(loop, session.stop)
    if quiet:
        return await session.run()
    if err.is_terminal:
        with Live("starting...", console=err, refresh_per_second=4, transient=True) as live:
            return await session.run(view(live))
    return await session.run(view(None))


def print_live_summary(session: NetworkedRun, summary: dict[str, Any]) -> None:
    console = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 150)
    run = summary.get("run", {})
    kpis = summary.get("line_kpis", {})
    state = summary.get("state")
    console.print(
        f"{session.line.name} against {summary.get('target_url')} ({session.folder.settings['mode']}, "
        f"seed {session.config.seed}, {session.config.scale} cop{'y' if session.config.scale == 1 else 'ies'}): "
        f"{state}, {_hms(run.get('virtual_s', 0))} virtual in {summary.get('wall_s', 0):.1f} s wall"
    )
    console.print(
        f"cells out {run.get('cells_out', 0):,} (good in the KPI window {kpis.get('good_cells', 0):,}, "
        f"{kpis.get('cells_per_hour', 0):,.0f}/h), bottleneck {kpis.get('bottleneck', '-')}"
    )
    table = Table(title="MES exchanges per interface (latency from the intended send time; service = answer - sent)")
    for col in ("interface", "count", "failed", "p50 ms", "p99 ms", "max ms", "service p99", "late", "outcomes"):
        table.add_column(col, justify="left" if col in ("interface", "outcomes") else "right")
    rows = sorted(summary.get("interfaces", {}).items(), key=lambda kv: -kv[1]["count"])
    for name, s in rows:
        lat, svc = s["latency_ms"], s["service_ms"]
        codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(s["by_code"].items(), key=lambda kv: -kv[1])[:3])
        table.add_row(
            name,
            f"{s['count']:,}",
            f"{s['failures']:,}",
            f"{lat['p50']:.1f}",
            f"{lat['p99']:.1f}",
            f"{lat['max']:.1f}",
            f"{svc['p99']:.1f}",
            f"{s['late_starts']:,}",
            codes,
        )
    console.print(table)
    takt = summary.get("takt", {})
    delays = takt.get("start_delay_ms", {})
    p50, p99 = (delays.get(p, delays.get(str(p), 0.0)) for p in (50, 99))
    late = takt.get("late_starts", 0)
    console.print(f"takt: send delay p50 {p50:.2f} ms, p99 {p99:.2f} ms, late starts (>5 ms) {late:,}")
    line = pace_line(summary)
    if line:
        console.print(line)
    line = conformance_line(summary.get("conformance"))
    if line:
        console.print(line)
    link = summary.get("link", {})
    for o in link.get("outages", []):
        console.print(
            f"MES outage from {o['started']} for {o['offline_s']:.1f} s ({o['reason']}): {o['queued']:,} records "
            f"queued, {o['resent']:,} re-uploaded, drained in {o['drain_s'] if o['drain_s'] is not None else '-'} s, "
            f"max backlog {o['max_backlog']:,}, {o['waiting_calls']:,} calls waited for the MES"
        )
    for line in fault_summary(summary):
        console.print(line)
    if link.get("relogins"):
        console.print(f"new logins after a refused token: {link['relogins']:,}")
    for i in summary.get("interlocks", []):
        console.print(f"interlock {i['code']} -> {i['equipment']} stopped in {i['reaction_ms']:.1f} ms: {i['message']}")
    energy = summary.get("energy")
    if energy:
        console.print(
            f"energy uplink to {summary.get('energy_target')}: {energy['kwh_total']:,.1f} kWh, "
            f"{energy['values_acked']:,} values acknowledged in {energy['batches_acked']:,} batches, "
            f"{energy['values'].get('queued', 0):,} queued, {energy['rejected']:,} rejected"
        )
    cost = summary.get("offline_compare")
    if cost:
        console.print(
            f"output vs the offline model of the same seed: {cost['good_cells_networked']:,} good cells against "
            f"{cost['good_cells_offline']:,} ({cost['cost_cells']:+,} cells lost to the MES)"
        )
    console.print(f"run folder: {session.path}")


def conformance_line(c: Any) -> str | None:
    """The self-check in one line: its violations, what it could not check, or that it failed."""
    if not isinstance(c, Mapping) or not c:
        return None
    text = f"self-check: {c.get('violations', 0):,} violations in {c.get('exchanges_checked', 0):,} exchanges"
    if c.get("not_checked"):
        text += f", {c['not_checked']:,} NOT CHECKED"
    if c.get("error"):
        text += f"; THE SELF-CHECK FAILED: {c['error']}"
    return text
