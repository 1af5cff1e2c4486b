"""``stats.csv`` and ``stats_history.csv`` in Locust's column layout, then columns of our own.

Locust's columns come first, in Locust's order and with its names and number formats (``StatsCSV`` and
``StatsCSVFileWriter`` in locust/stats.py, Locust 2.x, ``--csv-full-history``), so a dashboard built for
Locust's CSV reads ours. Their "response time" is our latency from the intended send time (what the line
felt; Locust itself measures from the actual send). Our own columns follow: service time, exact
sub-millisecond percentiles, errors by outcome, late starts, backlog.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twin.report.tables import LOCUST_PERCENTILES, InterfaceRow
from twin.report.timeline import Timeline, percentile_ms


def readable_percentile(p: float) -> str:
    """As Locust's ``get_readable_percentiles`` writes 0.999: ``99.9%``."""
    return f"{int(p)}%" if float(p).is_integer() else f"{round(p, 6)}%"


LOCUST_PERCENTILE_COLUMNS = [readable_percentile(p) for p in LOCUST_PERCENTILES]
STATS_COLUMNS = [
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
    "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
    *LOCUST_PERCENTILE_COLUMNS,
]  # fmt: skip
STATS_OWN_COLUMNS = [
    "Group", "Error Rate", "Errors By Outcome", "Late Starts",
    "Latency p50 ms", "Latency p90 ms", "Latency p99 ms", "Latency p99.9 ms", "Latency Max ms", "Latency Average ms",
    "Service p50 ms", "Service p90 ms", "Service p99 ms", "Service p99.9 ms", "Service Max ms", "Service Average ms",
    "Bytes Out", "Bytes In",
]  # fmt: skip
HISTORY_COLUMNS = [
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *LOCUST_PERCENTILE_COLUMNS,
    "Total Request Count", "Total Failure Count", "Total Median Response Time", "Total Average Response Time",
    "Total Min Response Time", "Total Max Response Time", "Total Average Content Size",
]  # fmt: skip
HISTORY_OWN_COLUMNS = ["Interval s", "Error Rate", "Backlog", "Late Starts"]
#: Every MES call of the spec is a POST (profile note G-6); Locust's Type column is the request method.
REQUEST_TYPE = "POST"
AGGREGATED = "Aggregated"


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _stats_row(row: InterfaceRow, kind: str, name: str) -> list[object]:
    lat, svc = row.latency, row.service
    if row.count and lat.at:
        locust: list[object] = [
            round(lat.at[50.0]),
            lat.mean,
            lat.min,
            lat.max,
            row.avg_bytes_in,
            row.rate_per_s,
            row.failures_per_s,
            *(round(lat.at[p]) if p < 100 else round(lat.max or 0) for p in LOCUST_PERCENTILES),
        ]
    else:
        locust = [0, 0, 0, 0, 0, row.rate_per_s, row.failures_per_s, *["N/A"] * len(LOCUST_PERCENTILES)]
    errors = ";".join(f"{k}:{n}" for k, n in row.errors)
    own = [
        row.group, f"{row.error_rate:.6f}", errors, row.late_starts,
        *(_ms(lat.get(p)) for p in (50.0, 90.0, 99.0, 99.9)), _ms(lat.max), _ms(lat.mean),
        *(_ms(svc.get(p)) for p in (50.0, 90.0, 99.0, 99.9)), _ms(svc.max), _ms(svc.mean),
        row.bytes_out, row.bytes_in,
    ]  # fmt: skip
    return [kind, name, row.count, row.failures, *locust, *own]


def write_stats(path: Path, interfaces: Sequence[InterfaceRow], total: InterfaceRow) -> None:
    """One row per interface (sorted by name, as Locust sorts), then ``Aggregated``."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(STATS_COLUMNS + STATS_OWN_COLUMNS)
        for row in sorted(interfaces, key=lambda r: r.name):
            out.writerow(_stats_row(row, REQUEST_TYPE, row.name))
        out.writerow(_stats_row(total, "", AGGREGATED))


def _history_rows(t: Timeline, rows: np.ndarray, kind: str, name: str) -> list[tuple[int, list[object]]]:
    """Rows of one entry (an interface, or all of them), one per bucket from its first exchange on."""
    count, failures = t.count[rows].sum(axis=0), t.failures[rows].sum(axis=0)
    hist = t.latency[rows].sum(axis=0, dtype=np.int64)  # [bucket, bin]
    window = [percentile_ms(hist, p) for p in LOCUST_PERCENTILES]
    total_hist = np.cumsum(hist, axis=0)
    total_median = percentile_ms(total_hist, 50.0)
    cum_n, cum_fail = np.cumsum(count), np.cumsum(failures)
    cum_sum, cum_bytes = np.cumsum(t.latency_sum_s[rows].sum(axis=0)), np.cumsum(t.bytes_in[rows].sum(axis=0))
    cum_min = np.minimum.accumulate(t.latency_min_s[rows].min(axis=0, initial=np.inf))
    cum_max = np.maximum.accumulate(t.latency_max_s[rows].max(axis=0, initial=-np.inf))
    backlog = t.backlog(rows)
    late = t.late_starts[rows].sum(axis=0)
    out: list[tuple[int, list[object]]] = []
    for k in np.flatnonzero(cum_n > 0):
        n = cum_n[k]
        pcts = [0 if np.isnan(w[k]) else round(float(w[k])) for w in window]
        out.append((int(k), [
            int(t.origin_wall + (k + 1) * t.bucket_s), int(t.equipment_active[k]), kind, name,
            f"{count[k] / t.bucket_s:2f}", f"{failures[k] / t.bucket_s:2f}", *pcts,
            int(n), int(cum_fail[k]), round(float(total_median[k])), cum_sum[k] / n * 1000,
            cum_min[k] * 1000, cum_max[k] * 1000, cum_bytes[k] / n,
            f"{t.bucket_s:g}", f"{failures[k] / count[k]:.6f}" if count[k] else "", int(backlog[k]), int(late[k]),
        ]))  # fmt: skip
    return out


def write_history(path: Path, t: Timeline) -> None:
    """Per bucket: a row per interface (sorted by name) and an ``Aggregated`` row, as ``--csv-full-history``."""
    entries = [(REQUEST_TYPE, name, np.array([i])) for i, name in sorted(enumerate(t.interfaces), key=lambda x: x[1])]
    entries.append(("", AGGREGATED, np.arange(len(t.interfaces))))
    per_entry = [_history_rows(t, rows, kind, name) for kind, name, rows in entries]
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HISTORY_COLUMNS + HISTORY_OWN_COLUMNS)
        by_bucket: dict[int, list[list[object]]] = {}
        for rows in per_entry:
            for k, r in rows:
                by_bucket.setdefault(k, []).append(r)
        for k in sorted(by_bucket):
            out.writerows(by_bucket[k])
