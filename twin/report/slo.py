"""SLO files: what the MES must achieve, checked against a run; the verdict a CI pipeline gates on.

An SLO file (``lines/slo/default.yaml`` is the example) names interface groups and objectives per
interface (a glob checks each match alone), per group, or for ``all``: latency percentiles from the
intended send time, service-time percentiles, a maximum error rate, a minimum throughput; and a maximum
interlock reaction time, for every interlock or per group of interlock codes and/or equipment (globs).
Shape errors name the file, the line and the key path, as line files do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from twin.datadirs import search_dirs
from twin.datafile import DataFile, find_named, load_schema
from twin.errors import ConfigError, TwinError
from twin.metrics.hdrarrays import HdrArrays
from twin.metrics.histograms import InterfaceStats
from twin.report.extras import interlocks as interlocks_of
from twin.report.extras import pace as pace_of
from twin.report.groups import ALL, OTHER, matches, merged, partition

SCHEMA_NAME = "slo.schema.yaml"
#: Objective key -> (histogram, percentile); percentile 100 is the maximum.
PERCENTILE_KEYS = {
    f"{prefix}{key}": (hist, p)
    for prefix, hist in (("", "latency"), ("service_", "service"))
    for key, p in (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9), ("max_ms", 100.0))
}
METRIC_KEYS = (*PERCENTILE_KEYS, "max_error_rate", "min_rate_per_s")


class SloNotMet(TwinError):
    """A run did not meet its SLOs: a failed check, exit 1 (``twin report``, ``twin run --slo``)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Slo:
    """A loaded, checked SLO file."""

    source: Path
    title: str
    groups: dict[str, list[str]]
    objectives: list[dict[str, Any]]
    interlocks: list[InterlockObjective] = field(default_factory=list)
    twin: Mapping[str, Any] | None = None  # the load tool's own objective: it kept the pace asked

    def interlock_limit(self, code: object) -> float | None:
        """The tightest reaction-time limit an interlock of ``code`` is held to (any equipment), for plots."""
        limits = [o.max_reaction_s for o in self.interlocks if o.equipment is None and o.matches(code, None)]
        return min(limits) if limits else None


@dataclass(frozen=True, slots=True)
class InterlockObjective:
    """A maximum reaction time (MES decision to equipment stopped) for the interlocks that match."""

    max_reaction_s: float
    code: str | None = None  # an interlock code or a glob; None: every code
    equipment: str | None = None  # an equipment code or a glob; None: every equipment
    name: str = ""

    def matches(self, code: object, equipment: object) -> bool:
        if self.code is not None and not matches(str(code), self.code):
            return False
        return self.equipment is None or (equipment is not None and matches(str(equipment), self.equipment))

    @property
    def target(self) -> str:
        """``interlocks``, ``interlocks 5002*``, ``interlocks on A02-WIND-*``: what a check is about."""
        parts = ["interlocks"]
        if self.code is not None:
            parts.append(self.code)
        if self.equipment is not None:
            parts.append(f"on {self.equipment}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Check:
    """One objective on one target: met (True), not met (False), or nothing to check (None)."""

    objective: str
    target: str
    metric: str
    limit: float
    actual: float | None
    passed: bool | None
    note: str = ""

    @property
    def what(self) -> str:
        """The metric as a person says it: ``p99 latency``, ``error rate``."""
        return metric_label(self.metric)

    def show(self, value: float) -> str:
        if self.metric.endswith("_ms"):
            return f"{_fmt(value)} ms"
        if self.metric == "max_error_rate":
            return f"{value * 100:.3g} %"
        return f"{_fmt(value)} /s" if self.metric == "min_rate_per_s" else f"{_fmt(value)} s"

    def describe(self) -> str:
        if self.actual is None:
            return f"{self.target}: {self.what}: {self.note}"
        op = "at least" if self.metric == "min_rate_per_s" else "at most"
        return f"{self.target}: {self.what} {self.show(self.actual)} (limit: {op} {self.show(self.limit)})"


@dataclass(slots=True)
class Verdict:
    """The checks of an SLO file against a run; ``exit_code`` is what ``twin report`` and ``twin run`` exit with."""

    slo_file: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def met(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.met else 1

    def headline(self) -> str:
        if self.slo_file is None:
            return "NO SLO CHECKED: no SLO file was given (twin report RUN_DIR --slo FILE)"
        judged = [c for c in self.checks if c.passed is not None]
        if self.met:
            return f"SLOs MET: {len(judged)} of {len(judged)} checks passed"
        return f"SLOs NOT MET: {len(self.failed)} of {len(judged)} checks failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "slo_file": self.slo_file,
            "headline": self.headline(),
            "checks": [asdict(c) for c in self.checks],
        }


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def metric_label(key: str) -> str:
    if key in PERCENTILE_KEYS:
        hist, p = PERCENTILE_KEYS[key]
        name = "max" if p == 100.0 else f"p{p:g}"
        return f"{name} {'latency' if hist == 'latency' else 'service time'}"
    return {
        "max_error_rate": "error rate",
        "min_rate_per_s": "throughput",
        "max_reaction_s": "reaction time",
        "max_saturated_s": "time saturated",
    }.get(key, key)


def slo_dirs() -> list[Path]:
    """``slo/`` in every folder line files are looked up in (``./lines``, ``$TWIN_LINES``, the shipped ones)."""
    return [d / "slo" for d in search_dirs("lines") if (d / "slo").is_dir()]


def available_slos() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in slo_dirs():
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            if path.name != SCHEMA_NAME:
                found.setdefault(path.stem, path)
    return found


def find_slo(ref: str | Path) -> Path:
    """A path, or the name of a file in ``lines/slo/`` (``default``)."""
    return find_named(ref, available_slos(), ConfigError, "SLO file", "lines/slo/")


def _schema() -> dict[str, Any]:
    return load_schema(
        (d / SCHEMA_NAME for d in slo_dirs()),
        ConfigError(f"the SLO schema lines/slo/{SCHEMA_NAME} is missing from this installation"),
    )


def load_slo(ref: str | Path) -> Slo:
    """Load and check an SLO file; every mistake is a ``ConfigError`` naming file, line and key (exit 2)."""
    path = find_slo(ref)
    doc = DataFile(path, ConfigError, "SLO file")
    data, fail = doc.data, doc.fail

    if not isinstance(data, dict):
        raise fail([], f"expected a mapping with objectives and/or interlocks, got {type(data).__name__}")
    errors = list(jsonschema.Draft202012Validator(_schema()).iter_errors(data))
    if errors:
        worst = best_match(errors)  # for oneOf, the error of the branch that came closest
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise fail(list(worst.absolute_path), worst.message + more)
    if not data.get("objectives") and not data.get("interlocks") and not data.get("twin"):
        raise fail([], "an SLO file needs objectives or interlocks; this one checks nothing")
    groups = {str(k): [str(p) for p in v] for k, v in (data.get("groups") or {}).items()}
    for i, obj in enumerate(data.get("objectives") or []):
        if ("interface" in obj) == ("group" in obj):
            raise fail(["objectives", i], "name exactly one of interface (a name or glob) or group")
        if not any(k in obj for k in METRIC_KEYS):
            raise fail(["objectives", i], f"no limit given; expected one of {', '.join(METRIC_KEYS)}")
        if "group" in obj and obj["group"] not in (*groups, ALL, OTHER):
            known = ", ".join([*groups, ALL, OTHER])
            raise fail(["objectives", i, "group"], f"unknown group {obj['group']!r}; known: {known}")
    objectives = list(data.get("objectives") or [])
    twin = data.get("twin")
    return Slo(path, str(data.get("title", path.stem)), groups, objectives, _interlock_objectives(data), twin)


def _interlock_objectives(data: Mapping[str, Any]) -> list[InterlockObjective]:
    raw = data.get("interlocks") or []
    items = [raw] if isinstance(raw, Mapping) else raw
    return [
        InterlockObjective(
            float(o["max_reaction_s"]),
            None if o.get("code") is None else str(o["code"]),
            o.get("equipment"),
            str(o.get("name", "")),
        )
        for o in items
    ]


def _measure(stats: InterfaceStats, key: str, wall_s: float) -> float | None:
    if key == "max_error_rate":
        return stats.failures / stats.count if stats.count else None
    if key == "min_rate_per_s":
        return stats.count / wall_s if wall_s > 0 else 0.0
    hist_name, p = PERCENTILE_KEYS[key]
    hist = stats.latency if hist_name == "latency" else stats.service
    if not hist.get_total_count():
        return None
    value = hist.get_max_value() if p == 100.0 else HdrArrays(hist).values_at([p])[0]
    return float(value) / 1000


def _targets(
    obj: Mapping[str, Any], stats: Mapping[str, InterfaceStats], parts: Mapping[str, list[str]]
) -> list[tuple[str, InterfaceStats]]:
    if "group" in obj:
        members = list(stats) if obj["group"] == ALL else parts.get(obj["group"], [])
        return [(f"group {obj['group']}", merged(stats, members))]
    hits = sorted(n for n in stats if matches(n, obj["interface"]))
    if not hits:
        return [(f"interface {obj['interface']}", InterfaceStats())]
    return [(f"interface {n}", stats[n]) for n in hits]


def check(slo: Slo, stats: Mapping[str, InterfaceStats], wall_s: float, summary: Mapping[str, Any]) -> Verdict:
    """Every objective of ``slo`` against a run's stats and summary extras."""
    parts = partition(stats, slo.groups)
    verdict = Verdict(str(slo.source))
    for i, obj in enumerate(slo.objectives):
        label = obj.get("name") or f"objective {i + 1}"
        for target, s in _targets(obj, stats, parts):
            for key in (k for k in METRIC_KEYS if k in obj):
                limit = float(obj[key])
                actual = _measure(s, key, wall_s)
                if actual is None:
                    verdict.checks.append(Check(label, target, key, limit, None, False, "no exchanges in this run"))
                    continue
                passed = actual >= limit if key == "min_rate_per_s" else actual <= limit
                verdict.checks.append(Check(label, target, key, limit, actual, passed))
    recorded = interlocks_of(summary)
    for objective in slo.interlocks:
        verdict.checks.append(_interlock_check(objective, recorded))
    if slo.twin is not None:
        verdict.checks.append(_twin_check(slo.twin, summary))
    return verdict


def _twin_check(objective: Mapping[str, Any], summary: Mapping[str, Any]) -> Check:
    """The twin kept the pace asked: a run that saturated (it slowed virtual time because the process could not
    send what the model asked, ``twin.sim.pace``) measured the twin, not the MES, and fails this objective."""
    label, target, metric = str(objective.get("name") or "twin kept pace"), "the twin", "max_saturated_s"
    limit = float(objective["max_saturated_s"])
    pace = pace_of(summary)
    if pace is None:
        return Check(label, target, metric, limit, None, None, "the run did not record its pace (an older run folder)")
    actual = float(pace.get("saturated_s") or 0.0)
    passed = actual <= limit and not (limit == 0 and pace.get("saturated"))
    return Check(label, target, metric, limit, actual, passed)


def _interlock_check(objective: InterlockObjective, interlocks: list[dict[str, Any]] | None) -> Check:
    """The slowest matching interlock against the limit; one that never stopped its equipment fails."""
    label, target, metric = objective.name or "interlock reaction", objective.target, "max_reaction_s"
    limit = objective.max_reaction_s
    if interlocks is None:
        return Check(label, target, metric, limit, None, None, "the run recorded no interlocks (none in summary.json)")
    times = [i["reaction_s"] for i in interlocks if objective.matches(i["code"], i["equipment"])]
    if not times:
        what = "interlock" if objective.target == "interlocks" else "matching interlock"
        return Check(label, target, metric, limit, None, None, f"no {what} was sent during the run")
    never = sum(1 for t in times if t is None)
    if never:
        note = f"{never} of {len(times)} interlocks never stopped their equipment (limit {_fmt(limit)} s)"
        return Check(label, target, metric, limit, None, False, note)
    worst = max(float(t) for t in times)  # type: ignore[arg-type]
    return Check(label, target, metric, limit, worst, worst <= limit)
