"""The live web view in a real browser (headless Chromium): a mini run against its own embedded MES.

One run serves the page; the test reads the page as a person would and uses its controls: the page loads
with no console error and nothing from the network, the charts get data, an interlock sent from the page
stops its station (red within a second of the equipment stopping) and is listed, a speed change shows in
the achieved speed, the history rings stay bounded, and the stop button ends the run as Ctrl-C does, with
every control in ``controls.jsonl`` and ``summary.json``. The screenshot is kept in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.report.chromium import chromium_binary
from tests.run.browser import browser_page
from twin.run.networked import NetConfig, prepare
from twin.run.web import WebAddress, WebView

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        chromium_binary() is None,
        reason="Debian's chromium is not installed (apt-get install -y chromium): the web view's browser test needs it",
    ),
]

STATION = "xray"  # one equipment: the station's box is that equipment's state


def _js_click(element_id: str) -> str:
    return f"document.getElementById({element_id!r}).click()"


async def test_the_page_shows_the_run_and_its_controls_steer_it(tmp_path: Path) -> None:
    config = NetConfig(duration_s=1200.0, speed=10.0, reports=tmp_path / "reports", compare_offline=False,
                       equipment_port=0)  # fmt: skip
    run = prepare("mini", config)
    async with WebView(run, WebAddress("127.0.0.1", 0)) as view:
        task = asyncio.create_task(run.run())
        try:
            async with browser_page(view.url) as page:
                # loads, draws the line, and the charts receive data
                await page.wait_for("window.twinView.updates >= 3 && window.twinView.points.rps > 0", 45)
                await page.wait_for("window.twinView.points.lat > 0 && window.twinView.points.speed > 0", 10)
                assert await page.evaluate("document.querySelectorAll('.station').length") == len(run.line.stations)
                n_eq = await page.evaluate("document.querySelectorAll('.station .eq').length")
                assert n_eq == run.line.equipment_count()

                # an interlock sent from the page: the station turns red and the interlock is listed
                code = view.sampler.layout()["equipment"][STATION][0]
                await page.evaluate(f"document.getElementById('i-eq').value = {code!r}; {_js_click('b-interlock')}")
                box = f"document.querySelector('.station[data-station=\"{STATION}\"]')"
                await page.wait_for(f"{box}.dataset.state === 'interlocked'", 5)
                assert await page.evaluate(f"getComputedStyle({box}).backgroundColor") == "rgb(224, 36, 36)"
                await page.wait_for(f"document.querySelector('#interlocks tr[data-equipment=\"{code}\"]') !== null", 2)
                lags = await page.evaluate("window.twinView.interlockLags")
                assert len(lags) == 1 and lags[0] < 1000, lags  # shown within a second of the equipment stopping
                assert run.interlocks and run.interlocks[-1].equipment == code

                # a speed change from the page shows in the achieved speed
                achieved = await page.evaluate("window.twinView.last.speed_achieved")
                assert 7 < achieved < 13, achieved
                await page.evaluate(f"document.getElementById('speed').value = '30'; {_js_click('b-speed')}")
                await page.wait_for("window.twinView.last.speed_asked === 30", 5)
                await page.wait_for("window.twinView.last.speed_achieved > 24", 10)

                shot = await page.screenshot(tmp_path / "web-view.png")
                print(f"screenshot: {shot}")
                assert page.errors == [], page.errors
                assert all(u.startswith((view.url, "data:")) for u in page.requests), page.requests

                # the page's history is bounded: 5,000 more seconds keep the last hour only
                fine = await page.evaluate(
                    "(() => { const s = window.twinView.last, draw = charts; charts = () => 0; "  # not 5,000 redraws
                    "for (let i = 1; i <= 5000; i++) "
                    "onTick({sample: Object.assign({}, s, {t: s.t + i, wall_s: s.wall_s + i})}); "
                    "charts = draw; return window.twinView.fine.length; })()"
                )
                assert fine == 3600

                # stop, as Ctrl-C: two clicks (the first arms the button)
                await page.evaluate(_js_click("b-stop") + ";" + _js_click("b-stop"))
                summary = await asyncio.wait_for(task, 30)
        finally:
            run.stop()
            if not task.done():
                await asyncio.wait_for(task, 30)
    assert summary["state"] == "interrupted"
    logged = [json.loads(line) for line in (run.path / "controls.jsonl").read_text().splitlines()]
    assert [c["control"] for c in logged] == ["interlock", "speed", "stop"] and all(c["ok"] for c in logged)
    assert [c["control"] for c in summary["controls"]] == ["interlock", "speed", "stop"]
    assert logged[0]["args"]["equipment"] == code and logged[1]["result"]["speed"] == 30
