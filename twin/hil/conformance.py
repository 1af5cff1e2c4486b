"""The conformance report: every rule per host, passed or failed, with the exchanges that show it.

``Conformance`` runs the rules over exchanges as they come (the proxy prints violations live with it);
``build_report`` runs it over a recorded journal and gathers, in a second pass, the exchanges the violations
point at, so memory stays bounded by the violations, not by the length of the recording. ``write_report``
writes ``conformance.json`` (for machines), ``conformance.txt`` and ``conformance.html`` (for people).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson

from twin.errors import ConfigError, TwinError
from twin.hil.journal import JOURNAL, Recorded, read_journal
from twin.hil.rules import RULES, Rule, RuleContext, Seen, Settings, Violation, load_behaviour
from twin.profile import Profile

SHOWN_CHARS = 400
_TEMPLATES = Path(__file__).resolve().parent / "templates"


class ConformanceFailed(TwinError):
    """A recording broke at least one rule (the CLI's failed-check exit, 1)."""


def verdict(report: dict[str, Any]) -> None:
    """Raise ``ConformanceFailed`` naming who failed, unless every rule passed."""
    summary = report["summary"]
    if not summary["failed_rules"]:
        return
    failed = [h["host"] for h in report["hosts"] if h["verdict"] == "fail"]
    who = (
        f"{len(failed)} of {summary['hosts']} hosts failed ({', '.join(failed[:5])})" if failed else "every host passed"
    )
    mes = f"; {summary['mes_issues']} MES answers break the profile" if summary["mes_issues"] else ""
    raise ConformanceFailed(f"{who}{mes}: see the report")


@dataclass(slots=True)
class HostSeen:
    peer: str
    first: float
    last: float
    exchanges: int = 0
    operations: Counter[str] = field(default_factory=Counter)


class Conformance:
    """The rules, fed one exchange at a time."""

    def __init__(
        self,
        profile: Profile,
        *,
        settings: Settings | None = None,
        processes: dict[str, str] | None = None,
        behaviour: dict[str, Any] | None = None,
        rules: tuple[type[Rule], ...] = RULES,
    ) -> None:
        behaviour = behaviour or load_behaviour(profile)
        self.ctx = RuleContext(profile, behaviour, settings or Settings.from_behaviour(behaviour), processes or {})
        self.rules = [cls(self.ctx) for cls in rules]
        self.hosts: dict[str, HostSeen] = {}
        self.exchanges = 0

    def _seen(self, rec: Recorded, validate: bool = True) -> Seen:
        op = self.ctx.profile.operations.get(rec.operation) if rec.operation else None
        data: dict[str, Any] = {}
        if op is not None and isinstance(rec.request, dict):
            data = op.check_request(rec.request)[0] if validate else op.normalise(rec.request)
        if rec.direction == "mes":
            ok = rec.status == 200
        else:
            ok = rec.status == 200 and op is not None and rec.code in op.success_codes
        return Seen(rec, op, data if isinstance(data, dict) else {}, ok)

    def feed(self, rec: Recorded, *, validate: bool = True, report: bool = True) -> list[Violation]:
        """Run every rule on one exchange; returns the violations it opened (for live reporting; none are
        gathered with ``report=False``).

        ``validate=False`` only renames the request to canonical field names (the rules read those) without
        checking it against its schema: for requests built from this very profile (``twin.run.selfcheck``)."""
        self.exchanges += 1
        host = self.hosts.get(rec.host)
        if host is None:
            host = self.hosts[rec.host] = HostSeen(rec.peer, rec.received, rec.received)
        host.last = max(host.last, rec.answered or rec.received)
        host.exchanges += 1
        host.operations[rec.operation or rec.path] += 1
        seen = self._seen(rec, validate)
        before = [len(r.violations) for r in self.rules] if report else None
        for rule in self.rules:
            rule.feed(seen)
        if before is None:
            return []
        return [v for rule, n in zip(self.rules, before, strict=True) for v in rule.violations[n:]]

    def opening(self, host: str, cells: list[str], tray: str | None = None) -> None:
        """Tell the rules of work in progress inside ``host`` before the first exchange (a warm start)."""
        for rule in self.rules:
            rule.opening(host, cells, tray)

    def finish(self) -> list[Violation]:
        before = [len(r.violations) for r in self.rules]
        last_seen = {name: h.last for name, h in self.hosts.items()}
        for rule in self.rules:
            rule.finish(last_seen)
        return [v for rule, n in zip(self.rules, before, strict=True) for v in rule.violations[n:]]

    def results(self) -> list[dict[str, Any]]:
        """Per host: each rule's status (pass, fail, not exercised, n/a) and its violations."""
        out = []
        for name in sorted(self.hosts):
            seen = self.hosts[name]
            rules = []
            for rule in self.rules:
                mine = [v for v in rule.violations if v.host == name]
                if not rule.applies(name):
                    status = "n/a"
                elif mine:
                    status = "fail"
                else:
                    status = "pass" if rule.checks[name] else "not exercised"
                rules.append(
                    {
                        "id": rule.id,
                        "title": rule.title,
                        "spec": rule.spec,
                        "party": rule.party,
                        "status": status,
                        "checks": rule.checks[name],
                        "violations": [
                            {"message": v.message, "at": v.at, "count": v.count, "exchanges": v.seqs} for v in mine
                        ],
                    }
                )
            failed = any(r["status"] == "fail" and r["party"] == "host" for r in rules)
            out.append(
                {
                    "host": name,
                    "peer": seen.peer,
                    "first": seen.first,
                    "last": seen.last,
                    "exchanges": seen.exchanges,
                    "operations": dict(seen.operations),
                    "verdict": "fail" if failed else "pass",
                    "rules": rules,
                }
            )
        return out


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _exchange_view(rec: Recorded) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "at": rec.received,
        "direction": rec.direction,
        "operation": rec.operation,
        "section": rec.section,
        "path": rec.path,
        "status": rec.status,
        "code": rec.code,
        "error": rec.error,
        "request": _shown(rec.request),
        "response": _shown(rec.response),
    }


def build_report(
    record_dir: Path,
    profile: Profile,
    *,
    settings: Settings | None = None,
    processes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The conformance report of one recording (``journal.jsonl`` in ``record_dir``)."""
    journal = record_dir / JOURNAL
    if not journal.is_file():
        raise ConfigError(f"{record_dir} holds no proxy recording ({JOURNAL} missing)")
    checker = Conformance(profile, settings=settings, processes=processes)
    for rec in read_journal(journal):
        checker.feed(rec)
    checker.finish()
    hosts = checker.results()
    wanted = {seq for h in hosts for r in h["rules"] for v in r["violations"] for seq in v["exchanges"]}
    shown = {rec.seq: _exchange_view(rec) for rec in read_journal(journal) if rec.seq in wanted}
    for h in hosts:
        for r in h["rules"]:
            for v in r["violations"]:
                v["exchanges"] = [shown[s] for s in v["exchanges"] if s in shown]
    failed_rules = sum(1 for h in hosts for r in h["rules"] if r["status"] == "fail")
    return {
        "record": str(record_dir),
        "profile": profile.name,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: getattr(checker.ctx.settings, k) for k in Settings.__dataclass_fields__},
        "processes": dict(checker.ctx.processes),
        "exchanges": checker.exchanges,
        "hosts": hosts,
        "summary": {
            "hosts": len(hosts),
            "passed": sum(1 for h in hosts if h["verdict"] == "pass"),
            "failed": sum(1 for h in hosts if h["verdict"] == "fail"),
            "failed_rules": failed_rules,
            "mes_issues": sum(len(r["violations"]) for h in hosts for r in h["rules"] if r["party"] == "mes"),
        },
    }


def clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["clock"] = clock
    return env


def text_report(report: dict[str, Any]) -> str:
    env = _environment()
    env.autoescape = False
    return env.get_template("conformance.txt.j2").render(report=report)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "conformance.json", out_dir / "conformance.txt", out_dir / "conformance.html"]
    paths[0].write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    paths[1].write_text(text_report(report), encoding="utf-8")
    paths[2].write_text(_environment().get_template("conformance.html.j2").render(report=report), encoding="utf-8")
    return paths
