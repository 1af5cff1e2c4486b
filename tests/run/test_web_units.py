"""The web view's parts without a browser: where it listens, who may steer, bounded history, station states,
and the clock change a speed control makes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from twin.cli import main
from twin.errors import ConfigError
from twin.line.catalogue import Alarm
from twin.run.history import History
from twin.run.sampler import Sampler, equipment_state, group_of
from twin.run.web import WebAddress, WebView
from twin.sim.clock import Clock
from twin.sim.status import Ticket


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("8089", "127.0.0.1", 8089, True),
        (":8089", "127.0.0.1", 8089, True),
        ("localhost:0", "localhost", 0, True),
        ("127.0.0.2:9000", "127.0.0.2", 9000, True),
        ("[::1]:9000", "::1", 9000, True),
        ("0.0.0.0:8089", "0.0.0.0", 8089, False),
        ("10.1.2.3:80", "10.1.2.3", 80, False),
    ],
)
def test_the_page_is_served_on_loopback_unless_a_host_is_named(text: str, host: str, port: int, loopback: bool) -> None:
    address = WebAddress.parse(text)
    assert (address.host, address.port, address.loopback) == (host, port, loopback)


@pytest.mark.parametrize("text", ["", "web", "80800", "host:", "1.2.3.4:-1"])
def test_a_bad_web_address_is_refused_by_name(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--web .*expected \[HOST:\]PORT"):
        WebAddress.parse(text)


def _twin(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``twin ARGS`` through ``main``, the CLI's one error boundary: exit code and all output."""
    monkeypatch.setattr("sys.argv", ["twin", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def test_a_bad_web_address_is_bad_input_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _twin(["run", "mini", "--web", "nowhere", "--reports", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "--web 'nowhere'" in out and "Traceback" not in out and len(out.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no run folder: the run never started
    code, out = _twin(["run", "mini", "--offline", "--web", "8089"], monkeypatch, capsys)
    assert code == 2 and "--web shows a networked run" in out


def _run(mes_url: str | None = None, token: str | None = None) -> Any:
    config = SimpleNamespace(mes_url=mes_url, speed=20.0)
    return SimpleNamespace(config=config, mes=SimpleNamespace(admin_token=token) if token else None, path=None)


def _request(headers: dict[str, str]) -> Any:
    return make_mocked_request("POST", "/api/control/speed", headers={"Host": "10.0.0.5:8089", **headers})


JSON = {"Content-Type": "application/json"}


def test_beyond_loopback_a_control_needs_the_embedded_mes_admin_token() -> None:
    view = WebView.__new__(WebView)  # only the access rules: no run, no socket
    view.run, view.token_needed, view._token = _run(token="s3cret"), True, None
    assert "admin token" in (view.refuse(_request(JSON)) or "")
    assert "admin token" in (view.refuse(_request({**JSON, "Authorization": "Bearer wrong"})) or "")
    assert view.refuse(_request({**JSON, "Authorization": "Bearer s3cret"})) is None
    assert view.refuse(_request({**JSON, "X-Admin-Token": "s3cret"})) is None
    view.run = _run(token=None)  # the MES is still starting: nobody may steer yet
    assert "not up yet" in (view.refuse(_request({**JSON, "Authorization": "Bearer s3cret"})) or "")


def test_on_loopback_controls_are_open_but_only_as_json_from_the_page_itself() -> None:
    view = WebView.__new__(WebView)
    view.run, view.token_needed, view._token = _run(), False, None
    assert view.refuse(_request(JSON)) is None
    assert view.refuse(_request({**JSON, "Origin": "http://10.0.0.5:8089"})) is None
    assert "not from http://evil.example" in (view.refuse(_request({**JSON, "Origin": "http://evil.example"})) or "")
    assert "JSON body" in (view.refuse(_request({"Content-Type": "application/x-www-form-urlencoded"})) or "")


def test_against_another_mes_beyond_loopback_the_view_makes_its_own_token(tmp_path: Path) -> None:
    run = _run(mes_url="http://mes.plant:8080")
    run.path = tmp_path
    view = WebView(run, WebAddress("0.0.0.0", 8089))  # type: ignore[arg-type]
    token = view.expected_token()
    assert token and len(token) >= 20 and token in view._access_note()
    assert view.refuse(_request({**JSON, "Authorization": f"Bearer {token}"})) is None


def test_a_day_of_history_keeps_an_hour_of_seconds_and_the_day_in_minutes() -> None:
    history = History()
    made = []
    for i in range(86_400):
        point = history.add({"t": i}, lambda samples: {"t": samples[-1]["t"], "n": len(samples)})
        if point:
            made.append(point)
    assert len(history.fine) == 3600 and history.fine[0]["t"] == 86_400 - 3600
    assert len(history.coarse) == 1440 == len(made) and all(p["n"] == 60 for p in made)
    for i in range(86_400, 3 * 86_400):
        history.add({"t": i}, lambda samples: {"t": samples[-1]["t"]})
    assert len(history.fine) == 3600 and len(history.coarse) == 2880  # two days of minutes, then the oldest go


def _equipment(
    *, stop_alarms: int = 0, active: tuple[str, ...] = (), cause: str = "startup", moving: bool = False
) -> Any:
    tickets = [Ticket(Alarm(code, "H", "x"), 0.0) for code in active]
    return SimpleNamespace(stop_alarms=stop_alarms, active=tickets, cause=cause, moving=moving)


def test_a_station_state_says_why_it_stands() -> None:
    assert equipment_state(_equipment(moving=True), "9005") == "run"
    assert equipment_state(_equipment(), "9005") == "idle"
    assert equipment_state(_equipment(stop_alarms=1, active=("100",), cause="repair"), "9005") == "down"
    assert equipment_state(_equipment(stop_alarms=1, active=("300",), cause="refused"), "9005") == "alarm"
    assert equipment_state(_equipment(stop_alarms=2, active=("100", "9005"), cause="repair"), "9005") == "interlocked"
    assert equipment_state(_equipment(active=("200",), moving=True), "9005") == "run"  # an L alarm stops nothing


def test_interfaces_fall_into_the_live_view_groups() -> None:
    ops = ("Heartbeat", "Recipe", "EquipmentProcessParam", "BindContainer", "Inbound", "OutboundMore", "Receive")
    assert [group_of(op) for op in ops] == ["status", "setup", "parameters", "trays", "flow", "flow", "other"]


def test_a_speed_change_keeps_wall_and_virtual_time_continuous() -> None:
    clock = Clock(0.0, speed=20.0, segments=[(0.0, 20.0), (600.0, 40.0)])  # a step at 10 virtual minutes
    clock.wall0 = 100.0
    before = [clock.wall_at(v) for v in (0.0, 50.0, 120.0)]
    clock.change_from(120.0, [(120.0, 5.0)])  # 5x from virtual 120 s on; the step at 600 s is dropped
    assert [clock.wall_at(v) for v in (0.0, 50.0, 120.0)] == before
    assert clock.wall_at(125.0) == pytest.approx(before[2] + 1.0)
    assert clock.virtual_at(before[2] + 2.0) == pytest.approx(130.0)
    assert clock.speed_at(700.0) == 5.0
    clock.change_from(130.0, [(130.0, 10.0), (200.0, 30.0)])  # a shape: segments later on
    assert clock.speed_at(150.0) == 10.0 and clock.speed_at(250.0) == 30.0
    assert clock.wall_at(200.0) == pytest.approx(before[2] + 2.0 + 7.0)


def test_the_sampler_turns_cumulative_histograms_into_rates_and_percentiles_per_interval() -> None:
    from twin.metrics.histograms import LatencyBook

    book = LatencyBook()
    sim = None
    run = SimpleNamespace(folder=SimpleNamespace(book=book), sim=sim, link=None, mes=None, started=0.0, profile=None,
                          config=SimpleNamespace(speed=20.0), interlocks=[])  # fmt: skip
    sampler = Sampler(run)  # type: ignore[arg-type]

    def record(op: str, ms: float, n: int) -> None:
        ex = SimpleNamespace(operation=op, latency_s=ms / 1000, service_s=ms / 1000, bytes_out=1, bytes_in=1,
                             status=200, code=0, error="", start_delay_s=0.0)  # fmt: skip
        for _ in range(n):
            book.record(ex, success=True)  # type: ignore[arg-type]

    record("Heartbeat", 2.0, 100)
    sampler.sample()
    record("Heartbeat", 50.0, 10)
    record("Inbound", 5.0, 30)
    second = sampler.sample()
    status, flow, every = (second["groups"][g] for g in ("status", "flow", "all"))
    assert status["n"] == 10 and status["p50"] == pytest.approx(50.0, rel=0.01)  # the 2 ms ones were before
    assert flow["n"] == 30 and flow["p99"] == pytest.approx(5.0, rel=0.01)
    assert every["n"] == 40 and every["rps"] > 0
