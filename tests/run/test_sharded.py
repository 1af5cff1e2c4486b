"""Sharded runs on Ray: the mini line's copies over 2 worker processes against one MES, merged exactly.

One Ray session serves the module (``ray.init`` costs seconds): 2 CPUs, no dashboard, shut down at the end.
Each run is 2-3 copies of the mini line for 2 virtual minutes at 60x (a few seconds of wall time).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.transport.permissive_mes import foreign_mes
from twin.metrics import LatencyBook, read_exchange_log
from twin.report import write_report
from twin.report.rundata import load_run
from twin.run.networked import NetConfig
from twin.run.sharded import ShardedRun, prepare_sharded
from twin.run.workers import LOCAL_RAY_IP

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
FACTORY_MINI = ROOT / "tests" / "data" / "factory-mini.yaml"
NO_ANSWER = ("refused", "timeout", "reset", "bad-http", "no answer")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    """One Ray session for the module; the workers import twin from this checkout."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        _node_ip_address=LOCAL_RAY_IP,  # loopback only
    )
    yield
    ray.shutdown()


def config(tmp_path: Path, **kw: Any) -> NetConfig:
    base: dict[str, Any] = {
        "duration_s": 120.0,
        "speed": 60.0,
        "scale": 2,
        "reports": tmp_path / "reports",
        "compare_offline": False,
        "equipment_port": 0,
    }
    return NetConfig(**{**base, **kw})


def answered(interfaces: dict[str, Any]) -> dict[str, int]:
    out = {}
    for op, s in interfaces.items():
        n = s["count"] - sum(v for k, v in s["by_code"].items() if k in NO_ANSWER)
        if n:
            out[op] = n
    return out


def shard_summaries(run: ShardedRun) -> list[dict[str, Any]]:
    return [json.loads((run.path / "shards" / str(s.index) / "summary.json").read_text()) for s in run.shards]


def assert_merged_is_the_sum(run: ShardedRun, summary: dict[str, Any]) -> None:
    """Totals, per-interface counts, histograms and logs of the whole equal the sum of the shards'."""
    shards = shard_summaries(run)
    assert summary["total"]["count"] == sum(s["total"]["count"] for s in shards) > 0
    assert [e["requests"] for e in summary["shards"]] == [s["total"]["count"] for s in shards]
    for op, merged in summary["interfaces"].items():
        assert merged["count"] == sum(s["interfaces"].get(op, {}).get("count", 0) for s in shards), op
        assert merged["failures"] == sum(s["interfaces"].get(op, {}).get("failures", 0) for s in shards), op
    book = LatencyBook.decode(json.loads((run.path / "histograms.json").read_text()))
    for op, stats in book.interfaces.items():
        assert stats.latency.get_total_count() == summary["interfaces"][op]["count"]
    rows = list(read_exchange_log(run.path / "shards"))  # every shard's log, read as one
    assert len(rows) == summary["total"]["count"] == summary["exchanges_logged"]
    # the self-check of every shard's hosts, at the top too (a run never hides a fault in a shard's folder)
    checked = summary["conformance"]
    assert checked["exchanges_checked"] == sum(s["conformance"]["exchanges_checked"] for s in shards) > 0
    assert checked["violations"] == sum(s["conformance"]["violations"] for s in shards) == 0, checked["examples"]
    assert [e["violations"] for e in summary["shards"]] == [s["conformance"]["violations"] for s in shards]


async def test_two_workers_against_the_embedded_mes_add_up_to_what_the_mes_saw(tmp_path: Path) -> None:
    run = prepare_sharded("mini", config(tmp_path), workers=2)
    assert [s.copies for s in run.shards] == [(1,), (2,)]
    assert [s.equipment_prefix for s in run.shards] == ["127.0.1.", "127.0.2."]
    summary = await run.run()
    assert summary["state"] == "finished" and summary["hurt"] == []
    assert summary["sharded"]["backend"] == "ray" and [s["state"] for s in summary["shards"]] == ["finished"] * 2
    assert_merged_is_the_sum(run, summary)
    mes = {op: s["requests"] for op, s in summary["mes_counts"]["operations"].items()}
    assert answered(summary["interfaces"]) == mes  # one MES served both shards, and saw what they counted
    registry = yaml.safe_load((run.path / "registry.yaml").read_text())
    assert len(registry) == 2 * run.lines["mini"].equipment_count() == len(set(registry.values()))
    assert any(code.endswith("-X02") for code in registry)
    settings = [json.loads((run.path / "shards" / str(n) / "settings.json").read_text())["shard"] for n in (0, 1)]
    assert [s["worker"] for s in settings] == [0, 1]
    assert len({s["pid"] for s in settings} | {os.getpid()}) == 3  # two worker processes, neither this one
    write_report(run.path)  # one report of the whole folder, from every shard's log
    data = load_run(run.path)
    assert data.log_path == run.path / "shards" and data.book.total().count == summary["total"]["count"]
    html = (run.path / "report.html").read_text()
    assert '<h2 id="shards">Shards</h2>' in html and "shards/1" in html  # each shard's totals in the report
    assert "self-check violations" in html and "The twin's own traffic broke" not in html
    assert summary["line_kpis"]["copies"] == 2 and summary["line_kpis"]["equipment"] == len(registry)
    assert "recorded no line KPIs" not in html  # the line's KPIs: both shards' copies as one line
    stats = (run.path / "stats.csv").read_text().splitlines()
    assert stats[-1].split(",")[2] == str(summary["total"]["count"])  # Locust layout: the Aggregated row's count


async def test_two_workers_against_a_foreign_mes_add_up_to_what_it_saw(tmp_path: Path) -> None:
    seen_file = tmp_path / "seen.json"
    with foreign_mes(seen_file) as url:
        run = prepare_sharded("mini", config(tmp_path, mes_url=url), workers=2)
        summary = await run.run()
    assert summary["state"] == "finished" and summary["hurt"] == []
    assert_merged_is_the_sum(run, summary)
    seen = json.loads(seen_file.read_text())
    assert answered(summary["interfaces"]) == {op: n for op, n in seen["counts"].items() if n}
    assert seen["unauthenticated"] == [] and seen["status_order_violations"] == []


async def _until_requests(run: ShardedRun, task: asyncio.Task[Any], at_least: int = 50) -> None:
    for _ in range(600):
        if task.done():
            return
        shards = run.status()["shards"]
        if len(shards) == 2 and all(s["requests"] >= at_least for s in shards):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the shards never got going")


async def test_ctrl_c_stops_every_shard_and_the_folder_is_whole(tmp_path: Path) -> None:
    run = prepare_sharded("mini", config(tmp_path, duration_s=3600.0, speed=20.0), workers=2)
    task = asyncio.get_running_loop().create_task(run.run())
    await _until_requests(run, task)
    run.stop()
    summary = await asyncio.wait_for(task, 60)
    assert summary["state"] == "interrupted"
    assert [s["state"] for s in summary["shards"]] == ["interrupted"] * 2
    assert all(s["run"]["virtual_s"] < 3600 for s in shard_summaries(run))
    assert_merged_is_the_sum(run, summary)
    write_report(run.path)
    assert (run.path / "report.html").is_file()


async def test_a_killed_shard_is_reported_and_the_run_is_hurt(tmp_path: Path) -> None:
    run = prepare_sharded("mini", config(tmp_path, duration_s=240.0, speed=20.0), workers=2)
    task = asyncio.get_running_loop().create_task(run.run())
    await _until_requests(run, task)
    pid = await run.pool.call(1, "pid")
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    summary = await asyncio.wait_for(task, 120)
    assert summary["state"] == "finished"  # the other shard ran to its end
    assert [s["state"] for s in summary["shards"]] == ["finished", "died"]
    assert any("shard 1" in h and "died" in h for h in summary["hurt"]), summary["hurt"]
    assert summary["faults"]["shards_died"][0]["worker"] == 1
    died = json.loads((run.path / "shards" / "1" / "summary.json").read_text())
    assert died["state"] == "running"  # its last checkpoint: the worker never wrote an end
    assert summary["shards"][1]["requests"] == died["total"]["count"]


async def test_a_factory_file_runs_sharded_by_copy_with_its_offsets(tmp_path: Path) -> None:
    run = prepare_sharded(str(FACTORY_MINI), config(tmp_path, scale=1, duration_s=150.0), workers=2)
    assert run.path.parent.name == "factory-mini"
    assert [(s.worker, s.copies) for s in run.shards] == [(0, (1, 2)), (1, (3,))]
    assert run.shards[1].start_offsets == {3: 90.0}
    summary = await run.run()
    assert summary["state"] == "finished" and summary["hurt"] == []
    assert_merged_is_the_sum(run, summary)
    late = read_exchange_log(run.path / "shards" / "1" / "exchanges.parquet")
    first = min(r.intended_virtual_s for r in late if r.operation == "OperatorLogin")
    assert first >= 90.0  # copy 3 powers on 90 virtual seconds in


async def test_the_web_view_shows_the_total_and_each_shard_and_steers_them_all(tmp_path: Path) -> None:
    import aiohttp

    from twin.run.shardweb import ShardedControls, ShardedSampler
    from twin.run.web import WebAddress, WebView

    run = prepare_sharded("mini", config(tmp_path, duration_s=1200.0, speed=20.0), workers=2)
    run.want_samples = True
    view = WebView(run, WebAddress("127.0.0.1", 0), sampler=ShardedSampler(run), controls=ShardedControls(run))  # type: ignore[arg-type]
    async with view, aiohttp.ClientSession() as http:
        task = asyncio.get_running_loop().create_task(run.run())
        await _until_requests(run, task)
        for _ in range(50):
            if len(view.last.get("shards", [])) == 2 and all(r["requests"] for r in view.last["shards"]):
                break
            await asyncio.sleep(0.1)
        async with http.get(f"{view.url}api/state") as resp:
            state = await resp.json()
        last, layout = state["last"], state["layout"]
        assert [r["shard"] for r in last["shards"]] == [0, 1] and not any(r["dead"] for r in last["shards"])
        assert last["requests"] == sum(r["requests"] for r in last["shards"]) > 0
        assert last["groups"]["all"]["rps"] == pytest.approx(sum(r["rps"] for r in last["shards"]), abs=0.05)
        winders = layout["equipment"]["winding"]
        assert "MINI-WIND-01" in winders and "MINI-WIND-01-X02" in winders  # both copies' equipment, one line
        assert len(state["line"]["stations"]) == len(run.lines["mini"].stations)
        async with http.post(f"{view.url}api/control/speed", json={"speed": 40}) as resp:
            entry = await resp.json()
        assert resp.status == 200 and set(entry["result"]["shards"]) == {"0", "1"}, entry
        async with http.post(f"{view.url}api/control/interlock", json={"equipment": "MINI-WIND-01-X02"}) as resp:
            entry = await resp.json()
        assert resp.status == 200 and list(entry["result"]["shards"]) == ["1"], entry  # the shard that runs it
        async with http.post(f"{view.url}api/control/stop", json={}) as resp:
            assert resp.status == 200
        summary = await asyncio.wait_for(task, 60)
    assert summary["state"] == "interrupted"
    speeds = [json.loads((run.path / "shards" / str(n) / "controls.jsonl").read_text().splitlines()[0]) for n in (0, 1)]
    assert all(s["control"] == "speed" and s["ok"] for s in speeds)
    assert any(i["equipment"] == "MINI-WIND-01-X02" for i in summary["interlocks"])


def test_ctrl_c_on_twin_run_with_workers_exits_130_with_every_shard_written(tmp_path: Path) -> None:
    """The command as a person runs it (its own Ray, started and stopped by the run), and a real SIGINT."""
    import subprocess
    import sys
    import time

    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--scale", "2", "--workers", "2", "--speed", "20",
           "--duration", "2h", "--no-compare", "--equipment-port", "0", "--reports", str(reports)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # both shards have checkpointed some exchanges
            counts = [
                json.loads(p.read_text()).get("exchanges_logged", 0)
                for p in reports.glob("mini/*/shards/*/summary.json")
            ]
            if len(counts) == 2 and all(counts):
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    folder = next(reports.glob("mini/*"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "interrupted" and summary["interrupted"]["during"] == "the run"
    assert [s["state"] for s in summary["shards"]] == ["interrupted"] * 2
    assert summary["total"]["count"] == sum(s["requests"] for s in summary["shards"]) > 0
    assert all((folder / f).exists() for f in ("report.html", "stats.csv", "histograms.json", "registry.yaml"))
