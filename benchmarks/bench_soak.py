"""Soak (issue 13): line-A02 for 24 virtual hours at speed 60 (24 wall minutes) against the embedded MES, with
a fault schedule, and whether everything the line made was stored exactly once.

The run is the real command (``twin run line-A02 --duration 24h --speed 60``) in a process of its own, its
embedded MES a child of it. The schedule, in fractions of the run's wall time W:

* from the start: 1 % injected errors (``--mes-arg=--error-rate=0.01``: code 9001 answers, never resent);
* at 0.25 W a refused outage, at 0.50 W a hang outage (``POST /admin/faults`` with the run's admin token),
  each lasting 2 % of W (at least 5 s, at most 30 s; a hang longer than ``--timeout`` times out);
* at 0.75 W a crash and restart of the MES (``--crash-after``/``--restart-after=5``: SIGKILL, then a new MES
  from the same database).

It prints records made (the run's ``records_made``, per interface) against the records the MES stored (rows of
its ``exchanges`` table with a request body): equal when each was stored exactly once, nothing lost and
nothing stored twice; the bodies stored more than once; the run's own verdict (state, exit code, what it says
was undelivered, possible duplicates), peak and final RSS of both processes (the MES's
peak over both of its lives), open file descriptors near the start and at the end, and the exchange log's
size.

    python -m benchmarks bench_soak                                        # 24 virtual hours: 24 minutes
    TWIN_BENCH_SOAK_DURATION=1h TWIN_BENCH_SOAK_SPEED=60 python -m benchmarks bench_soak   # a quick look: 1 min
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

DURATION = os.environ.get("TWIN_BENCH_SOAK_DURATION", "24h")
SPEED = float(os.environ.get("TWIN_BENCH_SOAK_SPEED", "60"))
LINE = os.environ.get("TWIN_BENCH_SOAK_LINE", "line-A02")
SAMPLE_S = 2.0
START_SAMPLE_S = 20.0  # "at start": once the line is under way (every host logged in, pools opened)...
START_SHARE = 0.2  # ...and before the first outage of a short run
_LISTENING = re.compile(r"listening on (http://\S+)")


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB, and open descriptors, of a live process ({} if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    out = {"fds": fds}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return kids


class Probe:
    """Samples one role (the run, or the MES whichever process it is now): peak, last, fds at start and end."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.last_kb = 0
        self.fds_start: int | None = None
        self.fds_end: int | None = None

    def sample(self, status: dict[str, int], started: bool, running: bool = True) -> None:
        if not status or not status.get("fds"):
            return  # gone, or exiting (its descriptors already closed)
        self.peak_kb = max(self.peak_kb, status.get("VmHWM", 0), status.get("VmRSS", 0))
        self.last_kb = status.get("VmRSS", self.last_kb)
        if started and self.fds_start is None:
            self.fds_start = status["fds"]
        if running:  # the end of the run, not its shutdown
            self.fds_end = status["fds"]


def _admin(url: str, token: str, doc: dict[str, Any]) -> str:
    request = urllib.request.Request(
        url + "/admin/faults",
        data=json.dumps(doc).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return f"HTTP {resp.status}"
    except OSError as exc:
        return f"failed: {exc}"


def _mes_url(folder: Path) -> str | None:
    try:
        text = (folder / "mes.log").read_text(errors="replace")
    except OSError:
        return None
    found = _LISTENING.findall(text)
    return found[-1] if found else None


def _wall_s(duration: str) -> float:
    from twin.durations import parse_duration

    return parse_duration(duration) / SPEED


def _record_ops() -> dict[str, str]:
    """Record operation -> the interface it is compared under: operations served at one path (2.28 Outbound and
    2.50 BoundOutbound) are one interface to the MES, which tells them apart by their body."""
    from twin.profile import load_profile
    from twin.transport.hostlink import is_record

    ops = [op for op in load_profile("qingke-mes-v1") if is_record(op)]
    names: dict[str, list[str]] = {}
    for op in ops:
        names.setdefault(op.path.lower(), []).append(op.operation_id)
    return {op.operation_id: "+".join(sorted(names[op.path.lower()])) for op in ops}


def stored(db: Path, records: set[str]) -> tuple[Counter[str], int, int]:
    """Records the MES stored, per operation (rows whose request is a body: one refused unread, a 401, is a note
    of its size), and the bodies stored more than once with the rows they take: a resent call the MES had
    processed the first time (a timeout, a cut connection), or two records identical to the byte."""
    rows_by_op: Counter[str] = Counter()
    dup_bodies = dup_rows = 0
    marks = ",".join("?" * len(records))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            f"SELECT operation, request, COUNT(*) FROM exchanges WHERE operation IN ({marks}) AND request IS NOT NULL"
            " GROUP BY operation, request",
            tuple(sorted(records)),
        )
        for op, body, n in rows:
            if not bytes(body).startswith(b"{"):
                continue  # a note of a request refused unread (401: "size and reason"), not a record's body
            rows_by_op[op] += n
            if n > 1:
                dup_bodies += 1
                dup_rows += n
    return rows_by_op, dup_bodies, dup_rows


def _log_size(folder: Path) -> int:
    total = 0
    for path in folder.glob("exchanges*"):
        total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    return total


def main() -> None:
    wall = _wall_s(DURATION)
    outage_s = min(30.0, max(5.0, 0.02 * wall))
    schedule = [
        (0.25 * wall, "refused outage", {"outage": {"after_s": 0, "for_s": outage_s, "mode": "refuse"}}),
        (0.50 * wall, "hang outage", {"outage": {"after_s": 0, "for_s": outage_s, "mode": "hang"}}),
    ]
    crash_at = 0.75 * wall
    print(f"soak: {LINE} for {DURATION} virtual at speed {SPEED:g} (about {wall:,.0f} s wall); 1 % injected errors, "
          f"refused outage at {schedule[0][0]:.0f} s and hang outage at {schedule[1][0]:.0f} s (each "
          f"{outage_s:.0f} s), MES crash at {crash_at:.0f} s, restarted 5 s later")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="twin-bench-soak-") as tmp:
        reports = Path(tmp) / "reports"
        cmd = [sys.executable, "-m", "twin", "run", LINE, "--duration", DURATION, "--speed", f"{SPEED:g}"]
        cmd += ["--reports", str(reports), "--no-compare", "--equipment-port", "0", "--mes-arg=--error-rate=0.01"]
        cmd += [f"--mes-arg=--crash-after={crash_at:.1f}", "--mes-arg=--restart-after=5"]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        run, mes = Probe(), Probe()
        folder: Path | None = None
        done: list[str] = []
        mes_started: float | None = None
        try:
            while proc.poll() is None:
                time.sleep(SAMPLE_S)
                if folder is None:
                    found = list(reports.glob("*/*/settings.json"))
                    folder = found[0].parent if found else None
                now = time.monotonic() - started
                begun = now >= min(START_SAMPLE_S, START_SHARE * wall)
                running = mes_started is not None and time.monotonic() - mes_started < wall
                run.sample(_status(proc.pid), begun, running)
                kids = _children(proc.pid)
                if kids and mes_started is None:
                    mes_started = time.monotonic()
                mes.sample(_status(kids[0]) if kids else {}, begun, running)
                url = _mes_url(folder) if folder is not None else None
                token_file = folder / "admin-token" if folder is not None else None
                for at, name, doc in schedule:
                    if name not in done and mes_started is not None and time.monotonic() - mes_started >= at and url:
                        token = token_file.read_text().strip() if token_file and token_file.exists() else ""
                        done.append(name)
                        print(f"  {now:6.0f} s: {name} for {outage_s:.0f} s: {_admin(url, token, doc)}")
            err = proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
        took = time.monotonic() - started
        if folder is None:
            raise SystemExit(f"the run wrote no folder (exit {proc.returncode}): {err[-500:]}")
        summary = json.loads((folder / "summary.json").read_text())
        interface = _record_ops()
        by_op, dup_bodies, dup_rows = stored(folder / "mes.sqlite", set(interface))
        made, rows = Counter(), Counter()
        for op, n in summary.get("records_made", {}).items():
            made[interface.get(op, op)] += n
        for op, n in by_op.items():
            rows[interface.get(op, op)] += n
        total_made, total_rows = sum(made.values()), sum(rows.values())
        print(f"run: exit {proc.returncode}, state {summary.get('state')}, {took:,.0f} s wall, "
              f"{summary.get('run', {}).get('virtual_s', 0) / 3600:.2f} virtual hours, "
              f"{summary.get('total', {}).get('count', 0):,} exchanges")  # fmt: skip
        for line in err.strip().splitlines()[-3:]:
            if line.startswith(("error", "MES", "NOT", "NEVER")):
                print(f"  run says: {line}")
        verdict = "EQUAL" if total_made == total_rows else f"NOT EQUAL: {total_rows - total_made:+,}"
        print(f"records made {total_made:,}; stored by the MES {total_rows:,} ({verdict})")
        worse = {op: (n, rows.get(op, 0)) for op, n in sorted(made.items()) if n != rows.get(op, 0)}
        worse |= {op: (0, n) for op, n in rows.items() if op not in made}
        if worse:
            print("  differing: " + ", ".join(f"{op} made {a:,} stored {b:,}" for op, (a, b) in worse.items()))
        print(f"  bodies stored more than once: {dup_bodies:,} ({dup_rows:,} rows): resent after a timeout or a cut "
              "connection the MES had processed, or records identical to the byte")  # fmt: skip
        link = summary.get("link", {})
        print(f"  the run's account: undelivered {summary.get('undelivered', {}).get('records', '?')}, queued "
              f"{link.get('queued', 0):,}, re-uploaded {link.get('resent', 0):,}, possible duplicates "
              f"{link.get('possible_duplicates', 0):,}, outages {len(link.get('outages', []))}, hurt: "
              f"{'; '.join(summary.get('hurt') or []) or 'no'}")  # fmt: skip
        for c in summary.get("mes_crashes", []):
            print(f"  planned crash: down {c.get('down_s')} s, backlog {c.get('backlog')}, "
                  f"drain {c.get('outage', {}).get('drain_s')} s")  # fmt: skip
        print(f"RSS: twin run peak {run.peak_kb / 1024:,.0f} MB, final {run.last_kb / 1024:,.0f} MB; "
              f"MES peak {mes.peak_kb / 1024:,.0f} MB, final {mes.last_kb / 1024:,.0f} MB")  # fmt: skip
        first = min(START_SAMPLE_S, START_SHARE * wall)
        print(f"open fds (at {first:.0f} s and at the end): twin run {run.fds_start} -> {run.fds_end}; "
              f"MES {mes.fds_start} -> {mes.fds_end}")  # fmt: skip
        print(f"exchange log {_log_size(folder) / 2**20:,.1f} MB; MES database "
              f"{(folder / 'mes.sqlite').stat().st_size / 2**20:,.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
