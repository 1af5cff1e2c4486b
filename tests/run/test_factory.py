"""Factory files and the plan of a sharded run; what needs no Ray: a factory in one process, Ray missing (exit 2).

The factory's one run here is the small test factory (three mini copies, one powering on 90 s late) in the
driver's own process (``--workers 1``), for 150 virtual seconds at 60x.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.test_run_cli import twin
from twin.errors import ConfigError
from twin.line.factory import FactoryFileError, available_factories, is_factory, load_factory
from twin.metrics import read_exchange_log
from twin.run.merge import merge_conformance, merge_pace
from twin.run.networked import NetConfig
from twin.run.plan import chunks, plan_shards
from twin.run.sharded import prepare_sharded

ROOT = Path(__file__).resolve().parents[2]
FACTORY_MINI = ROOT / "tests" / "data" / "factory-mini.yaml"


def test_the_shipped_factory_names_both_lines_and_loads() -> None:
    assert "factory-A" in available_factories() and is_factory("factory-A") and not is_factory("line-A02")
    factory = load_factory("factory-A")
    assert set(factory.lines) == {"line-A02", "line-A03"}
    assert [(c.line, c.copy, c.offset_s) for c in factory.copies] == [("line-A02", 1, 0.0), ("line-A03", 1, 120.0)]
    assert len(factory.line_refs()) == 2


def test_copies_of_a_line_are_numbered_across_entries_with_their_offsets() -> None:
    factory = load_factory(FACTORY_MINI)
    assert factory.name == "factory-mini"
    assert [(c.line, c.copy, c.offset_s) for c in factory.copies] == [("mini", 1, 0), ("mini", 2, 0), ("mini", 3, 90)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("factory: f\ntitle: t\n", "'lines' is a required property"),
        ("factory: f\ntitle: t\nlines:\n  - {line: mini, copies: 0}\n", "lines[0].copies"),
        ("factory: f\ntitle: t\nlines:\n  - {line: nope}\n", "no line 'nope'"),
        ("factory: f\ntitle: t\nlines:\n  - {line: mini, copies: 2, offsets: [0]}\n", "1 offsets for 2 copies"),
        ("factory: f\ntitle: t\nlines:\n  - {line: mini, start: soon}\n", "lines[0].start"),
    ],
)
def test_a_bad_factory_file_names_the_file_line_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(FactoryFileError) as err:
        load_factory(path)
    assert str(err.value).startswith(f"{path}:") and message in str(err.value)


def test_two_lines_with_the_same_codes_cannot_share_a_factory(tmp_path: Path) -> None:
    twin_line = tmp_path / "mini-again.yaml"
    twin_line.write_text((ROOT / "lines" / "mini.yaml").read_text().replace("line: mini", "line: mini-again"))
    path = tmp_path / "f.yaml"
    path.write_text("factory: f\ntitle: t\nlines:\n  - {line: mini}\n  - {line: mini-again.yaml}\n")
    with pytest.raises(FactoryFileError, match=r"f.yaml:5: lines\[1\].line: equipment code MINI-WH-01 is used twice"):
        load_factory(path)


def test_the_plan_cuts_copies_into_even_runs_and_gives_each_shard_its_own_addresses() -> None:
    assert [list(r) for r in chunks(8, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [list(r) for r in chunks(2, 4)] == [[0], [1]]
    factory = load_factory(FACTORY_MINI)
    shards = plan_shards(list(factory.copies), {"mini": 300}, 2, "127.0.1.")
    # 300 equipment a copy: two copies need three blocks of 254 addresses, so the next shard starts at .4.
    assert [(s.worker, s.copies, s.equipment_prefix) for s in shards] == [
        (0, (1, 2), "127.0.1."),
        (1, (3,), "127.0.4."),
    ]
    with pytest.raises(ConfigError, match="loopback addresses"):
        plan_shards(list(factory.copies), {"mini": 300}, 2, "127.0.254.")


def test_a_factory_runs_in_one_process_without_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setitem(sys.modules, "ray", None)  # not needed for one worker
    config = NetConfig(duration_s=150.0, speed=60.0, reports=tmp_path / "r", compare_offline=False, equipment_port=0)
    run = prepare_sharded(str(FACTORY_MINI), config, workers=1)
    assert [(s.worker, s.copies) for s in run.shards] == [(0, (1, 2, 3))]
    summary = asyncio.run(run.run())
    assert summary["state"] == "finished" and summary["hurt"] == [] and summary["sharded"]["backend"] == "in-process"
    assert summary["speed_asked"] == 60.0 and summary["pace"]["speed_achieved"] == summary["speed_achieved"] > 0
    shard = json.loads((run.path / "shards" / "0" / "summary.json").read_text())
    assert summary["total"]["count"] == shard["total"]["count"] > 0
    # copy 3 powers on 90 s in: nothing from its hosts before, its first word a login (no state before it)
    late = [r for r in read_exchange_log(run.path / "shards") if r.equipment.endswith("-X03")]
    assert late and min(r.intended_virtual_s for r in late) >= 90.0
    first = {}
    for r in sorted(late, key=lambda r: r.intended_virtual_s):
        first.setdefault(r.equipment, r.operation)
    assert set(first.values()) == {"OperatorLogin"}, first
    assert "login-first" not in shard["conformance"]["by_rule"]
    mes = {op: s["requests"] for op, s in summary["mes_counts"]["operations"].items()}
    assert sum(mes.values()) == summary["total"]["count"]


def test_more_workers_without_ray_is_bad_input_naming_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as when it is not installed
    code, out = twin(["run", "mini", "--scale", "2", "--workers", "2", "--reports", str(tmp_path)], capsys, monkeypatch)
    assert code == 2, out
    assert "pip install 'twin[ray]'" in out and "Traceback" not in out
    assert not any(tmp_path.iterdir())  # nothing started, no run folder


def test_a_sharded_run_that_is_hurt_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from twin.commands import run_sharded

    def hurt_run(session, *, quiet=False, web=None):  # stands in for the run itself
        summary = {"state": "finished", "hurt": ["shard 1 (mini copies [2]) died: RayActorError"], "shards": []}
        (session.path / "summary.json").write_text(json.dumps({**summary, "total": {"count": 0}}))
        return summary

    monkeypatch.setattr(run_sharded, "run_sharded_live", hurt_run)
    monkeypatch.setattr("twin.commands.report.report_run", lambda *_a: None)  # close_run imports it when called
    monkeypatch.setattr(run_sharded, "print_sharded_summary", lambda *_a: None)
    code, out = twin(["run", str(FACTORY_MINI), "--reports", str(tmp_path)], capsys, monkeypatch)
    assert code == 3, out
    assert "shard 1 (mini copies [2]) died" in out


def test_the_line_kpis_of_shards_of_one_line_add_up_like_one_model() -> None:
    from twin.run.kpimerge import merge_kpis

    def part(good: int, made: int, ng: int, oee: float, count: int) -> dict[str, object]:
        station = {"id": "winding", "archetype": "winding", "count": count, "made": made, "good": made - ng,
                   "ng": ng, "held": 0, "oee": oee, "utilisation": oee, "availability": 1.0, "active": oee}  # fmt: skip
        buffer = {"name": "wound", "capacity": 30, "final": 3, "mean": 2.5, "peak": 5}
        calls = {"operation": "State", "total": 10, "per_hour": 20.0, "peak_hour": 10}
        return {"line": "mini", "copies": count, "good_cells": good, "cells_per_hour": good * 2.0, "equipment": 9,
                "stations": [station], "buffers": [buffer], "calls": [calls]}  # fmt: skip

    merged = merge_kpis([part(10, 100, 10, 0.5, 1), part(30, 300, 0, 0.9, 3)])
    assert merged is not None and merged["good_cells"] == 40 and merged["cells_per_hour"] == 80.0
    (winding,) = merged["stations"]
    assert winding["count"] == 4 and winding["made"] == 400 and winding["ng"] == 10
    assert winding["oee"] == pytest.approx((0.5 * 1 + 0.9 * 3) / 4)  # weighted by equipment
    assert merged["yield_rty"] == pytest.approx(390 / 400) and merged["bottleneck"] == "winding"
    assert merged["buffers"][0]["final"] == 6 and merged["calls"][0]["total"] == 20
    assert merge_kpis([part(1, 1, 0, 1, 1), {**part(1, 1, 0, 1, 1), "line": "other"}]) is None


def test_one_saturated_shard_makes_the_run_s_figures_the_twin_s_limit() -> None:
    kept = {"saturated": False, "speed_achieved": 39.8, "saturated_s": 0.0, "saturations": 0}
    slowed = {"saturated": True, "speed_achieved": 31.5, "saturated_s": 12.5, "saturations": 2}
    merged = merge_pace([kept, slowed], 40.0)
    assert merged["saturated"] is True and merged["speed_asked"] == 40.0 and merged["speed_achieved"] == 31.5
    assert merged["pace"]["saturated_s"] == 12.5 and merged["pace"]["shards_saturated"] == [1]
    assert merge_pace([kept, kept], 40.0)["saturated"] is False


def test_the_shards_self_checks_add_up_and_a_missing_one_is_said() -> None:
    """Each shard checks its own hosts: the run's self-check adds them up, keeps the first examples in shard
    order, and says which shard could not be checked (died before its summary) or failed, never a silent 0."""
    part = {
        "exchanges_checked": 100,
        "violations": 2,
        "by_rule": {"heartbeat-period": 2},
        "by_interface": {"(heartbeat-period)": 2},
        "hosts": 10,
        "hosts_failed": 1,
        "examples": [{"host": "A02-HP-01", "rule": "heartbeat-period", "message": "late"}],
        "not_checked": 5,
    }
    merged = merge_conformance({0: part, 1: {**part, "error": "the self-check process ended"}, 2: None})
    assert merged is not None
    assert (merged["exchanges_checked"], merged["violations"], merged["not_checked"]) == (200, 4, 10)
    assert merged["by_rule"] == {"heartbeat-period": 4} and len(merged["examples"]) == 2
    assert merged["error"] == "shard 1: the self-check process ended; no self-check from shard 2"
    assert merge_conformance({0: None, 1: {}}) is None  # a profile without behavioural rules
