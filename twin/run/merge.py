"""The summary of a sharded run: its shards' folders added up, exactly.

Counts add; HDR histograms merge exactly (``histograms.json`` at the top is the sum of the shards', the same
figures one process would have measured); the send-delay histograms too. Each shard's own totals stay in the
``shards`` list, and ``shards/<n>/summary.json`` is that shard's full summary. A shard whose worker died has
the totals of its last checkpoint and the state ``died``; the run is hurt, and says which shard and why.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hdrh.histogram import HdrHistogram

from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import NO_ANSWER_OUTCOMES, LatencyBook, new_histogram
from twin.metrics.runfolder import write_json
from twin.run.hurt import fault_block, hurt_reasons
from twin.run.kpimerge import merge_kpis
from twin.run.selfcheck import EXAMPLES_KEPT

if TYPE_CHECKING:
    from twin.run.networked import NetConfig
    from twin.run.plan import ShardSpec


class ShardedRunView(Protocol):
    """What the merge reads of a sharded run (``twin.run.sharded.ShardedRun``), named here so that the two
    modules do not import each other."""

    path: Path
    config: NetConfig
    shards: list[ShardSpec]
    workers: int
    ray_address: str | None
    started: float
    faults: list[dict[str, Any]]
    dead: dict[int, str]
    folder: Any  # extra: dict[str, Any]

    @property
    def backend(self) -> str: ...


def _shard_results(results: dict[int, Any]) -> dict[int, dict[str, Any]]:
    """Each shard's end as its worker returned it (a worker that died returned an exception: none of its own)."""
    out: dict[int, dict[str, Any]] = {}
    for items in results.values():
        if isinstance(items, BaseException):
            continue
        for entry in items:
            out[int(entry["shard"])] = entry
    return out


def _sum_counts(dicts: list[dict[str, Any]]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for d in dicts:
        out.update({k: int(v) for k, v in (d or {}).items()})
    return dict(out)


def merge_shards(run: ShardedRunView, results: dict[int, Any], state: str) -> dict[str, Any]:
    ends = _shard_results(results)
    folders = {s.index: run.path / "shards" / str(s.index) for s in run.shards}
    book = merged_book([folders[s.index] / "histograms.json" for s in run.shards])
    write_json(run.path / "histograms.json", book.encode())
    wall = max(time.time() - run.started, 1e-9)
    delays = new_histogram()
    shards, summaries, hurt = [], [], []
    for spec in run.shards:
        end = ends.get(spec.index, {})
        summary = end.get("summary") or read_json(folders[spec.index] / "summary.json") or {}
        summaries.append(summary)
        if end.get("start_delay_hdr"):
            delays.add(HdrHistogram.decode(end["start_delay_hdr"].encode("ascii")))
        died = spec.worker in run.dead
        total = summary.get("total", {})
        entry = {
            **spec.to_dict(),
            "folder": f"shards/{spec.index}",
            "state": "died" if died else end.get("state", summary.get("state", "unknown")),
            "requests": int(total.get("count", 0)),
            "failures": int(total.get("failures", 0)),
            "late_starts": int(total.get("late_starts", 0)),
            "exchanges_logged": int(summary.get("exchanges_logged", 0)),
            "rate_per_s": round(int(total.get("count", 0)) / max(float(summary.get("wall_s") or wall), 1e-9), 1),
            "cells_out": int(summary.get("cells_out", 0)),
            "virtual_s": float(summary.get("run", {}).get("virtual_s", 0.0)),
            "hurt": summary.get("hurt", []),
            "saturated": bool(summary.get("saturated")),
            "speed_achieved": summary.get("speed_achieved"),
            "violations": int((summary.get("conformance") or {}).get("violations", 0)),
        }
        if end.get("error"):
            entry["error"] = end["error"]
            hurt.append(f"shard {spec.index} failed: {end['error']}")
        if died:
            hurt.append(f"shard {spec.index} ({spec.line} copies {list(spec.copies)}) died: {run.dead[spec.worker]}")
        hurt += [f"shard {spec.index}: {why}" for why in summary.get("hurt", []) if not died]
        shards.append(entry)
    totals = book.summary(wall)
    count = totals["total"]["count"]
    answered = count - sum(v for k, v in totals["total"]["by_code"].items() if k in NO_ANSWER_OUTCOMES)
    undelivered = {
        "records": sum(s.get("undelivered", {}).get("records", 0) for s in summaries),
        "records_by_operation": _sum_counts(
            [s.get("undelivered", {}).get("records_by_operation", {}) for s in summaries]
        ),
        "calls": sum(s.get("undelivered", {}).get("calls", 0) for s in summaries),
        "calls_by_operation": _sum_counts([s.get("undelivered", {}).get("calls_by_operation", {}) for s in summaries]),
    }
    hurt = [h for h in hurt_reasons(run.faults, {}, requests=count, answered=answered)] + hurt
    deaths = [f for f in run.faults if f.get("kind") == "mes-died"]
    points = (50, 90, 99, 99.9)
    values = HdrArrays(delays).values_at(points) if delays.get_total_count() else [0] * len(points)
    out: dict[str, Any] = {
        "state": state,
        "started": datetime.fromtimestamp(run.started, UTC).isoformat(),
        "wall_s": wall,
        "exchanges_logged": sum(int(s.get("exchanges_logged", 0)) for s in summaries),
        **totals,
        **run.folder.extra,
        "sharded": {
            "workers": run.workers,
            "backend": run.backend,
            "ray_address": run.ray_address,
            "shards": len(run.shards),
        },
        "shards": shards,
        **merge_pace([s.get("pace") or {} for s in summaries], run.config.speed),
        "run": {
            "virtual_s": max((e["virtual_s"] for e in shards), default=0.0),
            "duration_s": run.config.duration_s,
            "requests": count,
            "failures": totals["total"]["failures"],
            "cells_out": sum(e["cells_out"] for e in shards),
            "late_starts": totals["total"]["late_starts"],
            "wall_s": wall,
            "faults": [f["kind"] for f in run.faults],
        },
        "takt": {
            "start_delay_ms": {p: float(v) / 1000 for p, v in zip(points, values, strict=True)},
            "start_delay_max_ms": delays.get_max_value() / 1000,
            "late_starts": totals["total"]["late_starts"],
        },
        "cells_out": sum(e["cells_out"] for e in shards),
        "records_made": _sum_counts([s.get("records_made", {}) for s in summaries]),
        "undelivered": undelivered,
        "interlocks": [i for s in summaries for i in s.get("interlocks", [])],
        "hourly": _hourly(summaries),
        "faults_seen": run.faults,
        "hurt": hurt,
    }
    conformance = merge_conformance(
        {s.index: summary.get("conformance") for s, summary in zip(run.shards, summaries, strict=True)}
    )
    if conformance:
        out["conformance"] = conformance
    out["faults"] = fault_block(deaths, undelivered, [], hurt)
    if run.dead:
        out["faults"]["shards_died"] = [f for f in run.faults if f.get("kind") == "shard-died"]
    by_line: dict[str, list[Any]] = {}
    for spec, summary in zip(run.shards, summaries, strict=True):
        by_line.setdefault(spec.line, []).append(summary.get("line_kpis"))
    kpis = {line: merge_kpis(parts) for line, parts in by_line.items()}
    if len(kpis) == 1:
        out["line_kpis"] = next(iter(kpis.values()))  # the report's line section: one line, every copy
    else:
        out["line_kpis_by_line"] = kpis  # a factory: each line's, its copies together
    return out


def _hourly(summaries: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Good cells out per virtual hour, the shards' added up hour by hour."""
    hours: Counter[int] = Counter()
    for s in summaries:
        for h in s.get("hourly", []):
            hours[int(h.get("hour", 0))] += int(h.get("cells_out", 0))
    return [{"hour": h, "cells_out": hours[h]} for h in sorted(hours)]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def merged_book(paths: list[Path]) -> LatencyBook:
    book = LatencyBook()
    for p in paths:
        encoded = read_json(p)
        if isinstance(encoded, dict):
            book.merge_encoded(encoded)
    return book


def merge_conformance(parts: dict[int, Any]) -> dict[str, Any] | None:
    """The self-checks of the shards as one (each shard checked its own hosts, which no other shard has): counts
    add, the first examples of each in shard order, and what any shard could not check or why it failed, said
    with the shard. None when no shard had one (a profile without behavioural rules)."""
    found = {i: c for i, c in parts.items() if isinstance(c, dict) and c}
    if not found:
        return None
    by_rule: Counter[str] = Counter()
    by_interface: Counter[str] = Counter()
    for c in found.values():
        by_rule.update(c.get("by_rule") or {})
        by_interface.update(c.get("by_interface") or {})
    out: dict[str, Any] = {
        key: sum(int(c.get(key) or 0) for c in found.values())
        for key in ("exchanges_checked", "violations", "hosts", "hosts_failed", "not_checked")
    }
    out["by_rule"] = dict(by_rule.most_common())
    out["by_interface"] = dict(by_interface.most_common())
    out["examples"] = [e for c in found.values() for e in c.get("examples") or []][:EXAMPLES_KEPT]
    out["checked_by"] = "each shard's own self-check process (twin.run.checker)"
    errors = [f"shard {i}: {c['error']}" for i, c in found.items() if c.get("error")]
    missing = sorted(set(parts) - set(found))
    if missing:
        errors.append(f"no self-check from shard {', '.join(map(str, missing))}")
    if errors:
        out["error"] = "; ".join(errors)
    return out


def merge_pace(paces: list[dict[str, Any]], asked: float) -> dict[str, Any]:
    """The twin kept the pace asked only if every shard did: one saturated shard makes the run's figures the
    twin's limit (its copies sent less than asked). The speed achieved is the slowest shard's."""
    achieved = [float(p["speed_achieved"]) for p in paces if p.get("speed_achieved") is not None]
    pace = {
        "saturated": any(p.get("saturated") for p in paces),
        "speed_asked": asked,
        "speed_achieved": min(achieved) if achieved else None,
        "speed_lowest_kept": min(
            (float(p["speed_lowest_kept"]) for p in paces if p.get("speed_lowest_kept") is not None), default=None
        ),
        "saturated_s": max((float(p.get("saturated_s") or 0.0) for p in paces), default=0.0),
        "saturations": sum(int(p.get("saturations") or 0) for p in paces),
        "shards_saturated": [i for i, p in enumerate(paces) if p.get("saturated")],
    }
    return {"pace": pace, **{k: pace[k] for k in ("saturated", "speed_asked", "speed_achieved")}}
