"""What the MES counts: requests per interface and code, refusals by reason, invalid fields, service
time (HDR histograms, so memory stays bounded), interlocks and batch pushes by outcome; and the same as
Prometheus text (hand-written: the exposition format is a few lines, prometheus_client is not a
dependency of twin)."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

QUANTILES = (0.5, 0.9, 0.99)
_INDEX = re.compile(r"\[\d+\]")


def field_of(path: str) -> str:
    """A field path without array indices (``sfcList[2].passed`` -> ``sfcList[].passed``): bounded labels."""
    return _INDEX.sub("[]", path) or "(body)"


class Counters:
    """The MES's own counts since it started (served at /metrics and /admin/stats; not the run's twin.metrics)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.refusals: Counter[str] = Counter()
        self.refusals_by_op: Counter[tuple[str, str]] = Counter()
        self.invalid_fields: Counter[tuple[str, str]] = Counter()
        self.interlocks: Counter[tuple[str, str]] = Counter()
        self.pushes: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.latency: dict[str, HdrHistogram] = {}

    def observe(self, op: str, code: int, reason: str, seconds: float) -> None:
        self.requests[(op, code)] += 1
        if code != 0:
            self.refusals[reason] += 1
            self.refusals_by_op[(op, reason)] += 1
        hist = self.latency.get(op)
        if hist is None:
            hist = self.latency[op] = HdrHistogram(1, 120_000_000, 2)  # microseconds, up to 2 minutes
        hist.record_value(max(1, int(seconds * 1_000_000)))

    def invalid(self, op: str, path: str) -> None:
        self.invalid_fields[(op, field_of(path))] += 1

    def per_operation(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (op, code), n in self.requests.items():
            row = out.setdefault(op, {"requests": 0, "ok": 0, "refused": 0})
            row["requests"] += n
            row["ok" if code == 0 else "refused"] += n
        for op, hist in self.latency.items():
            if op in out:
                out[op]["p50_ms"] = hist.get_value_at_percentile(50) / 1000.0
                out[op]["p99_ms"] = hist.get_value_at_percentile(99) / 1000.0
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "operations": self.per_operation(),
            "refusals": dict(self.refusals),
            "invalid_fields": [
                {"operation": o, "field": f, "count": n} for (o, f), n in sorted(self.invalid_fields.items())
            ],
            "interlocks": [{"code": c, "outcome": o, "count": n} for (c, o), n in sorted(self.interlocks.items())],
            "batch_pushes": dict(self.pushes),
            "injected": dict(self.injected),
        }


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


def prometheus(metrics: Counters, *, wip: dict[str, int], db: dict[str, float], faults_active: bool) -> str:
    out: list[str] = []
    _family(out, "twin_mes_requests_total", "counter", "Requests answered, by operation and business code.")
    for (op, code), n in sorted(metrics.requests.items()):
        out.append(f'twin_mes_requests_total{{operation="{_label(op)}",code="{code}"}} {n}')
    _family(out, "twin_mes_refusals_total", "counter", "Requests refused (code != 0), by reason.")
    for reason, n in sorted(metrics.refusals.items()):
        out.append(f'twin_mes_refusals_total{{reason="{_label(reason)}"}} {n}')
    _family(out, "twin_mes_invalid_fields_total", "counter", "Schema violations, by operation and field.")
    for (op, path), n in sorted(metrics.invalid_fields.items()):
        out.append(f'twin_mes_invalid_fields_total{{operation="{_label(op)}",field="{_label(path)}"}} {n}')
    _family(out, "twin_mes_request_seconds", "summary", "Time from request to answer inside the MES.")
    for op, hist in sorted(metrics.latency.items()):
        for q in QUANTILES:
            value = hist.get_value_at_percentile(q * 100) / 1e6
            out.append(f'twin_mes_request_seconds{{operation="{_label(op)}",quantile="{q}"}} {value:.6f}')
        out.append(f'twin_mes_request_seconds_count{{operation="{_label(op)}"}} {hist.get_total_count()}')
        total = hist.get_mean_value() * hist.get_total_count() / 1e6
        out.append(f'twin_mes_request_seconds_sum{{operation="{_label(op)}"}} {total:.6f}')
    _family(out, "twin_mes_interlocks_total", "counter", "Interlocks sent to equipment (3.1), by code and outcome.")
    for (code, outcome), n in sorted(metrics.interlocks.items()):
        out.append(f'twin_mes_interlocks_total{{code="{_label(code)}",outcome="{_label(outcome)}"}} {n}')
    _family(out, "twin_mes_batch_pushes_total", "counter", "Electrolyte batches pushed (3.2), by outcome.")
    for outcome, n in sorted(metrics.pushes.items()):
        out.append(f'twin_mes_batch_pushes_total{{outcome="{_label(outcome)}"}} {n}')
    _family(out, "twin_mes_wip", "gauge", "Products the MES tracks, by state.")
    for kind, n in wip.items():
        out.append(f'twin_mes_wip{{state="{_label(kind)}"}} {n}')
    _family(out, "twin_mes_db", "gauge", "Database writer: commits, queued jobs, largest group, last commit ms.")
    for key, value in db.items():
        out.append(f'twin_mes_db{{stat="{_label(key)}"}} {value:g}')
    _family(out, "twin_mes_faults_active", "gauge", "1 while any fault injection is set.")
    out.append(f"twin_mes_faults_active {int(faults_active)}")
    return "\n".join(out) + "\n"
