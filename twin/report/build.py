"""``write_report``: everything a run folder gets at the end of a run, and again on ``twin report RUN_DIR``.

Writes ``report.html`` (one self-contained page), ``plots/*.png``, ``stats.csv`` and ``stats_history.csv``
(Locust's layout plus ours) and ``verdict.json``, and returns the SLO verdict. The SLO file given is
copied into the folder as ``slo.yaml``, so regenerating the report later checks the same objectives.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from twin.metrics.histograms import InterfaceStats
from twin.metrics.runfolder import write_json
from twin.report import answers, csvout, extras, lineview
from twin.report.groups import ALL, busiest, merged, partition
from twin.report.html import (
    fmt_duration,
    fmt_started,
    interlock_table,
    outage_table,
    render,
    row_view,
    traffic_cards,
    verdict_view,
)
from twin.report.image import Plot
from twin.report.kpis import Table, blocks, fmt
from twin.report.rundata import RunData, load_run
from twin.report.slo import Slo, Verdict, check, load_slo
from twin.report.spec import SpecNames, is_embedded, section_key
from twin.report.tables import group_rows, interface_rows, success_outcomes
from twin.report.timeline import Timeline, scan_log

SLO_COPY = "slo.yaml"
OUTPUTS = ("report.html", "plots/", "stats.csv", "stats_history.csv", "verdict.json", "summary.json")


def _slo_for(run: RunData, slo: str | Path | None) -> Slo | None:
    if slo is not None:
        loaded = load_slo(slo)
        if loaded.source.resolve() != (run.path / SLO_COPY).resolve():
            shutil.copyfile(loaded.source, run.path / SLO_COPY)
        return loaded
    if (run.path / SLO_COPY).is_file():
        return load_slo(run.path / SLO_COPY)
    return None


def _windows(items: Any, origin: float) -> list[tuple[float, float]]:
    """Outage windows in seconds since ``origin``."""
    out = []
    for o in items or []:
        start, end = o.get("start_wall"), o.get("end_wall")
        if isinstance(start, int | float) and isinstance(end, int | float):
            out.append((start - origin, end - origin))
    return out


def make_plots(
    run: RunData, t: Timeline | None, groups: Mapping[str, Sequence[str]], slo: Slo | None
) -> tuple[list[Plot], list[str]]:
    """The plots the data allows, and a sentence for each one left out (nothing to show is not drawn)."""
    from twin.report import plots as draw  # matplotlib: only when a report is made

    groups = {g: list(m) for g, m in groups.items() if m}  # the same groups, in the same colours, everywhere
    stats = run.interfaces()
    hists = {name: _merge(stats, members) for name, members in groups.items()}
    hists[ALL] = _merge(stats, list(stats))
    service_all = _merge(stats, list(stats), service=True)
    made, omitted = [draw.spectrum(hists, service_all)], []
    outages = extras.outages(run.summary) or []
    if t is None:
        omitted.append("the plots over time (no exchange log in the run folder).")
    else:
        windows = _windows(outages, t.origin_wall)
        marks = [(at - t.origin_wall, label) for at, label in extras.controls(run.summary)]  # twin run --web
        made.insert(0, draw.throughput_latency(t, groups, windows, marks))
        failed = draw.errors(t, windows, marks)
        if failed is not None:
            made.append(failed)
        else:
            omitted.append("failed exchanges over time: no exchange failed in this run.")
        if outages:
            made.append(draw.backlog(t, outages, windows, marks))
        else:
            omitted.append("the offline backlog: the MES had no outage in this run.")
    hourly = extras.hourly(run.summary)
    span = extras.virtual_s(run.summary) or (
        float(t.clock.virtual_s[-1]) if t is not None and len(t.clock.virtual_s) else 0
    )
    plot = draw.output_vs_latency(hourly, t.virtual_hours, span) if hourly and t is not None else None
    if plot is not None:
        made.append(plot)
    elif hourly and t is not None:
        omitted.append(
            f"the line's output per hour against MES latency: the run covers {fmt_duration(span)} of virtual time, "
            f"less than {draw.MIN_HOURS} hours (its output is under 'The line')."
        )
    else:
        omitted.append("the line's output against MES latency: no hourly output in summary.json (hourly).")
    items = extras.interlocks(run.summary) or []
    if items:
        codes = {str(i.get("code", "?")) for i in items}
        limits = {c: lim for c in codes if slo and (lim := slo.interlock_limit(c)) is not None}
        made.append(draw.interlocks(items, limits))
    else:
        omitted.append("interlock reaction times: no interlock was sent in this run.")
    return made, omitted


def _merge(stats: Mapping[str, InterfaceStats], members: Sequence[str], *, service: bool = False) -> HdrHistogram:
    m = merged(stats, members)
    return m.service if service else m.latency


def _context(
    run: RunData,
    slo: Slo | None,
    verdict: Verdict,
    groups: Mapping[str, Sequence[str]],
    t: Timeline | None,
    omitted: list[str],
) -> dict[str, Any]:
    stats = run.interfaces()
    group_of = _group_of(groups)
    g_rows = group_rows(stats, run.wall_s, {g: m for g, m in groups.items() if m})
    notes = list(run.notes)
    notes += [f"This run was hurt: {why}." for why in run.summary.get("hurt") or []]  # a fault is never hidden
    if t is not None and t.rows != g_rows[-1].count:
        notes.append(
            f"The exchange log holds {t.rows:,} exchanges and the histograms {g_rows[-1].count:,}: the "
            "run stopped between two checkpoints. Tables use the histograms, plots over time the log."
        )
    line, cost = extras.line_kpis(run.summary), extras.cost(run.summary)
    interlocks, outages = extras.interlocks(run.summary), extras.outages(run.summary)
    origin = run.started_wall or (t.origin_wall if t else None)
    spec = SpecNames()
    i_rows = interface_rows(stats, run.wall_s, group_of)
    i_rows.sort(key=lambda r: (section_key(spec.of(r.name).section), r.name))
    slowest = answers.slowest(i_rows, spec)
    lost = answers.output_cost(cost)
    faults = run.summary.get("faults")
    conformance, preroll = run.summary.get("conformance"), run.summary.get("preroll")
    if isinstance(conformance, Mapping) and conformance.get("violations"):
        notes.append(
            f"The twin's own traffic broke the protocol's rules {conformance['violations']:,} times: "
            "see \"The twin's own traffic\" below (these figures are not only the MES's)."
        )
    return {
        "run": {
            "name": run.name,
            "state": run.state,
            "started": fmt_started(run.summary.get("started", "")),
            "duration": fmt_duration(run.wall_s),
        },
        "verdict": verdict_view(verdict, slo.title if slo else None),
        "saturated": extras.saturation(run.summary),
        "notes": notes,
        "answer": answers.headline(lost, slowest, g_rows[-1], run.wall_s),
        "lost": lost,
        "slowest": slowest,
        "slow_ms": answers.SLOW_P99_MS,
        "errors": answers.errors_by_code(i_rows, spec, embedded=is_embedded(run.settings)),
        "settings": lineview.settings_rows(run.settings, fmt_duration),
        "traffic": traffic_cards(g_rows[-1], run.wall_s, extras.virtual_s(run.summary)),
        "line": lineview.line_blocks(line) if line else None,
        "line_window": lineview.window(line, fmt_duration) if line else None,
        "faults": _faults(faults),
        "shards": _shards(run.summary),
        "conformance": _conformance(conformance) if isinstance(conformance, Mapping) and conformance else None,
        "preroll": _preroll(preroll) if isinstance(preroll, Mapping) and preroll else None,
        "groups": [row_view(r) for r in g_rows],
        "interfaces": [row_view(r, spec.of(r.name).section, spec.of(r.name).name_cn) for r in i_rows],
        "omitted": omitted,
        "interlocks": interlock_table(interlocks) if interlocks else None,
        "outages": outage_table(outages, origin, _drains(outages, t)) if outages else None,
        "files": sorted(
            {"report.html"} | {p.name + ("/" if p.is_dir() else "") for p in run.path.iterdir() if p.suffix != ".tmp"}
        ),
    }


def _shards(summary: Mapping[str, Any]) -> Any:
    """A sharded run (``twin.run.sharded``): its workers and each shard's own totals (the figures of the report
    are their sum; each shard's folder ``shards/<n>/`` is a run folder of its own)."""
    shards = summary.get("shards")
    sharded = summary.get("sharded")
    if not isinstance(shards, list) or not shards or not isinstance(sharded, Mapping):
        return None
    out = blocks({"shards": len(shards), "workers": sharded.get("workers"), "backend": sharded.get("backend")})
    cols = ["shard", "worker", "line", "copies", "state", "requests", "per wall s", "failed", "cells out"]
    cols += ["self-check violations", "folder"]
    rows = [_shard_row(s) for s in shards if isinstance(s, Mapping)]
    out.tables.append(Table("", cols, rows, left=5))
    return out


def _shard_row(s: Mapping[str, Any]) -> list[str]:
    copies = ",".join(str(c) for c in s.get("copies", []))
    head = [str(s.get("shard")), str(s.get("worker")), str(s.get("line")), copies, str(s.get("state"))]
    figures = [fmt(s.get(k)) for k in ("requests", "rate_per_s", "failures", "cells_out", "violations")]
    return [*head, *figures, str(s.get("folder"))]


def _preroll(p: Mapping[str, Any]) -> Any:
    """The pre-roll of a run against a foreign MES (``twin.run.preroll``): how long, how fast, what it sent."""
    view: dict[str, Any] = {
        "virtual time": fmt_duration(float(p.get("virtual_s") or 0.0)),
        "wall time": fmt_duration(float(p.get("wall_s") or 0.0)),
        "mean pace": f"{p['speed_mean']:g}x" if p.get("speed_mean") else "-",
        "MES answer time": f"{p.get('mes_service_ms', 0):g} ms",
        "ended because": {"warm": "the line was warm", "cap": "its cap was reached"}.get(
            str(p.get("ended_because")), str(p.get("ended_because"))
        ),
        "stations warm": f"{p.get('stations_warm', 0)} of {p.get('stations', 0)}",
        "requests": p.get("requests", 0),
        "failures": p.get("failures", 0),
    }
    if p.get("failures_by_outcome"):
        view["failures by outcome"] = p["failures_by_outcome"]
    if p.get("requests_by_interface"):
        view["requests by interface"] = p["requests_by_interface"]
    return blocks(view)


def _conformance(c: Mapping[str, Any]) -> Any:
    """The validating proxy's rules over the run's own traffic (``twin.run.selfcheck``, in ``twin.run.checker``)."""
    view: dict[str, Any] = {
        "exchanges checked": c.get("exchanges_checked", 0),
        "violations": c.get("violations", 0),
        "hosts that broke a rule": f"{c.get('hosts_failed', 0)} of {c.get('hosts', 0)}",
    }
    if c.get("not_checked"):  # the checker fell behind, or died: a clean count of fewer exchanges is not clean
        view["exchanges not checked"] = c["not_checked"]
    if c.get("error"):
        view["the self-check failed"] = c["error"]
    for key, title in (("by_rule", "violations by rule"), ("by_interface", "violations by interface")):
        if c.get(key):
            view[title] = c[key]
    if c.get("examples"):
        view["first violations"] = c["examples"]
    return blocks(view)


def _faults(faults: Any) -> Any:
    """What summary.json says of the faults of the run (issue 13), shown by shape in a section of its own."""
    if isinstance(faults, Mapping) and faults:
        return blocks(faults)
    if isinstance(faults, list) and faults:
        return blocks({"faults": faults})
    return None


def _drains(outages: Sequence[Mapping[str, Any]], t: Timeline | None) -> list[str] | None:
    """How long each outage's backlog took to drain, measured from the exchange log (to a bucket)."""
    if t is None:
        return None
    out = []
    for o in outages:
        start, end = o.get("start_wall"), o.get("end_wall")
        if not (isinstance(start, int | float) and isinstance(end, int | float)):
            out.append("—")
            continue
        drained = t.drained_s(start - t.origin_wall, end - t.origin_wall)
        out.append("not drained by the end of the run" if drained is None else f"{fmt(drained)} (± {t.bucket_s:g})")
    return out


def _group_of(groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {m: g for g, members in groups.items() for m in members}


def _write_plots(folder: Path, plots: Sequence[Plot]) -> None:
    """The PNGs of this report, and none left over from an earlier one with other data."""
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for p in plots:
        (folder / f"{p.name}.png").write_bytes(p.png)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(run_dir: str | Path, slo: str | Path | None = None) -> Verdict:
    """Write every report file of a run folder and return the SLO verdict (``verdict.exit_code``: 0 or 1).

    Bad input (not a run folder, a malformed SLO file) raises ``ConfigError`` (exit 2) before anything is
    written. Called by ``twin run`` at the end of a run and by ``twin report RUN_DIR``.
    """
    run = load_run(run_dir)
    chosen = _slo_for(run, slo)
    stats = run.interfaces()
    groups = partition(stats, chosen.groups) if chosen and chosen.groups else busiest(stats)
    verdict = check(chosen, stats, run.wall_s, run.summary) if chosen else Verdict(None)
    timeline = None
    if run.log_path is not None:
        success = {op: success_outcomes(s) for op, s in stats.items()}
        timeline = scan_log(run.log_path, span_s=run.wall_s, group_of=_group_of(groups), success=success)
    made, omitted = make_plots(run, timeline, groups, chosen)
    _write_plots(run.path / "plots", made)
    total = group_rows(stats, run.wall_s, {})[-1]
    csvout.write_stats(run.path / "stats.csv", interface_rows(stats, run.wall_s, _group_of(groups)), total)
    if timeline is not None:
        csvout.write_history(run.path / "stats_history.csv", timeline)
    else:
        (run.path / "stats_history.csv").unlink(missing_ok=True)  # from an earlier report, when the log was there
    write_json(run.path / "verdict.json", verdict.as_dict())
    _write_text(run.path / "report.html", render(_context(run, chosen, verdict, groups, timeline, omitted), made))
    _update_summary(run, verdict)
    return verdict


def _update_summary(run: RunData, verdict: Verdict) -> None:
    """summary.json is for machines: complete its traffic figures and add what the report found.

    A run may checkpoint without percentiles (they cost time on the hot path) and be killed before its final
    checkpoint; the histograms hold them exactly, so the report writes them in, the same numbers the run
    would have written. Histograms rebuilt from the log guess which codes were success: then the run's own
    figures are kept. Everything else the run wrote is kept as it was.
    """
    summary = dict(run.summary)
    if run.exact:
        summary.update(run.book.summary(run.wall_s))
    summary["report"] = {
        "made": datetime.now(UTC).isoformat(),
        "met": verdict.met,
        "headline": verdict.headline(),
        "slo_file": verdict.slo_file,
        "failed": [c.describe() for c in verdict.failed],
        "files": [f for f in OUTPUTS if (run.path / f).exists() or f == "summary.json"],
    }
    write_json(run.path / "summary.json", summary)
