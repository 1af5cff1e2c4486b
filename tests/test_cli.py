"""The CLI end to end through click's CliRunner, via the same entry point users run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from twin.cli import cli, main


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run through ``main`` (the one error boundary) and return exit code and all output."""
    monkeypatch.setattr("sys.argv", ["twin", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def test_profiles_list_shows_all_sections() -> None:
    result = CliRunner().invoke(cli, ["profiles", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "60 operations" in result.output
    for name in ("OperatorLogin", "GetSfcInfo", "BoundOutbound", "SendInterLock", "SendBatchSfc"):
        assert name in result.output


def test_profiles_show_prints_fields_with_chinese_names() -> None:
    result = CliRunner().invoke(cli, ["profiles", "show", "2.3"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "StateCode" in result.output and "状态代码" in result.output and "DownReason" in result.output


def test_profiles_show_by_path_with_two_operations() -> None:
    result = CliRunner().invoke(cli, ["profiles", "show", "/EquipmentService/api/v1/Outbound"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2.28" in result.output and "2.50" in result.output


def test_profiles_validate_ok_and_bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    good = tmp_path / "hb.json"
    good.write_text(
        json.dumps({"EquipmentCode": "E", "ResourceCode": "R", "LocalTime": "2026-11-23T00:00:00Z", "IsOnline": True})
    )
    code, out = run(["profiles", "validate", str(good), "-o", "Heartbeat"], monkeypatch, capsys)
    assert code == 0 and "valid" in out
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"equipmentCode": "E", "resourceCode": "R", "localTime": "2026-11-23T00:00:00Z", "isOnline": "yes"})
    )
    code, out = run(["profiles", "validate", str(bad), "-o", "2.2"], monkeypatch, capsys)
    assert code == 1
    assert out.strip() == 'error: Heartbeat: isOnline: expected boolean, got "yes"'


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["profiles", "show", "NoSuchOp"], "no operation 'NoSuchOp'"),
        (["profiles", "validate", "/nonexistent.json", "-o", "Heartbeat"], "cannot read /nonexistent.json"),
        (["lines", "show", "nope"], "no line 'nope'"),
        (["profiles", "list", "--profile", "nope"], "no profile 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, monkeypatch, capsys) -> None:
    code, out = run(args, monkeypatch, capsys)
    assert code == 2
    assert needle in out and "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_invalid_json_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    f = tmp_path / "x.json"
    f.write_text("{not json")
    code, out = run(["profiles", "validate", str(f), "-o", "Heartbeat"], monkeypatch, capsys)
    assert code == 2 and out.startswith(f"error: {f} is not valid JSON")


def test_contradictions_lists_choices_as_json() -> None:
    result = CliRunner().invoke(cli, ["profiles", "contradictions", "--json"])
    rows = json.loads(result.output)
    assert len(rows) >= 50
    assert all(r.get("choice") and r.get("why") for r in rows)
    one = CliRunner().invoke(cli, ["profiles", "contradictions", "2.23"], terminal_width=200)
    assert "response-shape" in one.output


def test_run_line_a02_offline_is_an_hour_with_kpis() -> None:
    result = CliRunner().invoke(cli, ["run", "line-A02", "--offline"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "line-A02 offline, seed 0, 1 copy (77 equipment): 1 h simulated" in out
    for needle in ("good cells out", "cells per hour", "yield (RTY)", "bottleneck", "OEE", "WIP per buffer",
                   "MES calls per interface per hour", "2.2", "Heartbeat", "2.44", "CollingPolar"):
        assert needle in out, needle


def test_run_json_same_seed_same_result() -> None:
    args = ["run", "lines/mini.yaml", "--offline", "--duration", "90m", "--seed", "4", "--json"]
    first = CliRunner().invoke(cli, args)
    second = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["kpis"] == b["kpis"] and a["calls"] == b["calls"] and a["kpis"]["good_cells"] > 0
    assert a["mode"] == "offline" and a["duration_s"] == 5400


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "mini", "--duration", "soon"], "duration 'soon'"),
        (["run", "mini", "--speed", "0"], "--speed must be"),
        (["run", "mini", "--offline", "--speed", "5"], "--offline runs no network"),
        (["run", "mini", "--mes", "http://127.0.0.1:9", "--mes-arg", "--error-rate=0.1"],
         "--mes-arg is for the embedded"),
        (["run", "mini", "--load", "wave"], "load shape 'wave'"),
        (["run", "mini", "--realtime", "--speed", "2"], "--realtime is --speed 1"),
        (["run", "nope"], "no line 'nope'"),
        (["lines", "validate", "/nonexistent.yaml"], "no line '/nonexistent.yaml'"),
    ],
)
def test_run_and_lines_bad_input_is_exit_2(args, needle, monkeypatch, capsys) -> None:
    code, out = run(args, monkeypatch, capsys)
    assert code == 2 and needle in out and "Traceback" not in out


def test_lines_show_prints_takt_calls_per_hour_and_interfaces() -> None:
    result = CliRunner().invoke(cli, ["lines", "show", "mini"], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "takt" in result.output and "calls/h" in result.output and "cell/min" in result.output
    assert "expected MES calls:" in result.output and "2.33 GenerateCellSfc" in result.output
    full = CliRunner().invoke(cli, ["lines", "show", "line-A02", "--no-estimate"], terminal_width=250)
    assert "58 of the profile's 58 MES interfaces are called" in full.output and "calls/h" not in full.output


def test_lines_validate_and_list() -> None:
    assert CliRunner().invoke(cli, ["lines", "validate", "lines/line-A02.yaml"]).exit_code == 0
    listing = CliRunner().invoke(cli, ["lines", "list"])
    assert "line-A02" in listing.output and "mini" in listing.output


# -- help: fast, complete, one style ---------------------------------------------------------------------------
HEAVY = ("matplotlib", "pandas", "pyarrow", "aiohttp", "simpy", "numpy", "asyncua", "pymodbus", "jinja2")
_PROBE = """import sys
from twin.cli import main
sys.argv = ["twin", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("IMPORTED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _imported_after(args: list[str]) -> set[str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("IMPORTED"))
    return set(line.split()[1:])


def test_twin_help_imports_no_command_module() -> None:
    """`twin --help` lists every command without importing one (it took 1.1 s, 0.9 s of it matplotlib)."""
    assert _imported_after(["--help"]) == set()


@pytest.mark.parametrize("args", [["run", "--help"], ["report", "--help"], ["profiles", "list", "--help"]])
def test_a_commands_help_imports_no_plotting_or_dataframes(args: list[str]) -> None:
    assert not _imported_after(args) & {"matplotlib", "pandas", "pyarrow"}


def test_every_listed_command_is_the_command_it_names() -> None:
    import click

    from twin.cli import COMMANDS

    result = CliRunner().invoke(cli, ["--help"], terminal_width=100)
    for name, (_, text) in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert isinstance(command, click.Command) and command.name == name
        assert f"{name} " in result.output and text in " ".join(result.output.split())


def _options(group: str) -> list[tuple[str, object]]:
    import click

    ctx = click.Context(cli)
    out = []

    def walk(cmd: click.Command, path: str) -> None:
        out.extend((f"{path} {p.opts[-1]}", p) for p in cmd.params if isinstance(p, click.Option))
        if isinstance(cmd, click.Group):
            for n in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, n), f"{path} {n}")  # type: ignore[arg-type]

    walk(cli.get_command(ctx, group), group)  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("group", ["report", "profiles", "lines", "plc", "proxy", "ct", "ipc", "energy"])
def test_every_option_says_what_it_does_and_shows_its_default_one_way(group: str) -> None:
    """Each option has a help text; a default is shown by click as "[default: X]", never written by hand."""
    import re

    for name, opt in _options(group):
        text = opt.help or ""  # type: ignore[attr-defined]
        assert text.strip(), f"{name} has no help text"
        assert not re.search(r"\[|\(default|default:|Default", text), f"{name}: default written by hand: {text}"
        assert text.rstrip().endswith((".", ")")), f"{name}: help is one sentence ending with a full stop: {text}"


def test_report_help_shows_the_run_dir_form_in_lines_that_fit() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"], terminal_width=100)
    assert "twin report RUN_DIR [--slo FILE]" in result.output and "compare" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100


# -- servers stop cleanly on Ctrl-C and SIGTERM, and say what each client did ------------------------------------
_SERVE = {
    "ct": (["ct", "serve", "--port", "0", "--inverters", "2"], "calls: "),
    "ipc": (["ipc", "serve", "--port", "0"], "state: "),
    "energy": (["energy", "serve", "--port", "0"], "stats: "),
}


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "sig"), [("ct", "SIGINT"), ("ipc", "SIGTERM"), ("energy", "SIGINT"),
                                           ("energy", "SIGTERM")])  # fmt: skip
def test_a_server_stops_on_ctrl_c_or_sigterm_with_its_summary(name: str, sig: str) -> None:
    import signal
    import subprocess
    import sys

    args, summary = _SERVE[name]
    proc = subprocess.Popen([sys.executable, "-c", "from twin.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None and proc.stderr.readline().startswith("Ctrl-C to stop")  # listening, handled
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert summary in out and "aborted" not in err and "Traceback" not in err
    assert f"stopping ({'Ctrl-C' if sig == 'SIGINT' else sig})" in err


@pytest.mark.e2e
def test_ipc_and_energy_serve_print_a_line_per_client_request(tmp_path: Path) -> None:
    import asyncio
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    from websockets.asyncio.client import connect

    twin = [sys.executable, "-c", "from twin.cli import main; main()"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    ipc = subprocess.Popen([*twin, "ipc", "serve", "--port", "0"], **pipes)  # type: ignore[call-overload]
    energy = subprocess.Popen([*twin, "energy", "serve", "--port", "0"], **pipes)  # type: ignore[call-overload]
    try:
        assert ipc.stdout is not None and energy.stdout is not None
        assert ipc.stderr is not None and energy.stderr is not None
        assert ipc.stderr.readline() and energy.stderr.readline()  # both ready to stop cleanly
        ws_url = re.search(r"ws://\S+", ipc.stdout.readline()).group(0)  # type: ignore[union-attr]
        http_url = re.search(r"http://\S+", energy.stdout.readline()).group(0)  # type: ignore[union-attr]

        async def one_message() -> None:
            async with connect(ws_url) as ws:
                await ws.send('{"cmd": 57361, "messageID": 7}')  # 0xE011 card status
                await asyncio.wait_for(ws.recv(), 10)

        asyncio.run(one_message())
        request = urllib.request.Request(http_url + "/register", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:  # loopback
            assert answer.status == 200
        for proc in (ipc, energy):
            proc.send_signal(signal.SIGTERM)
        ipc_out, energy_out = ipc.communicate(timeout=20)[0], energy.communicate(timeout=20)[0]
    finally:
        ipc.kill()
        energy.kill()
    assert re.search(r"127\.0\.0\.1:\d+ connected", ipc_out) and re.search(r"#7 answered 0xF011 code 1", ipc_out)
    assert re.search(r"127\.0\.0\.1:\d+ left", ipc_out)
    assert re.search(r"127\.0\.0\.1 \S+: E2001 \(\d+ ms\)", energy_out), energy_out


# -- the other protocols' profiles and maps, shown whole ---------------------------------------------------------
def test_profiles_show_a_get_with_query_parameters_a_token_header_and_an_enveloped_answer() -> None:
    result = CliRunner().invoke(cli, ["profiles", "show", "-p", "ct-check-v1", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "auth: Token header" in result.output and "bearer" not in result.output
    assert "sn (query)" in result.output  # the request is its parameters
    assert "body.deviceStatus" in result.output and "errorCode" in result.output  # allOf envelope, anyOf body


def test_profiles_show_energy_fields_whole() -> None:
    shown = CliRunner().invoke(cli, ["profiles", "show", "-p", "energy-uplink-v1", "8.8"], terminal_width=200)
    assert "0 real-time, 1 day, 2 month, 3 year." in " ".join(shown.output.split())
    register = CliRunner().invoke(cli, ["profiles", "show", "-p", "energy-uplink-v1", "8.3"], terminal_width=200)
    assert "provinceId" in register.output and "centerDataURL" in register.output  # the answer's fields


def test_all_profiles_lists_the_asyncapi_one_too() -> None:
    result = CliRunner().invoke(cli, ["profiles", "list", "--all-profiles"], terminal_width=200)
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│ ")}
    assert {"ct-check-v1", "energy-uplink-v1", "ipc-open-platform-v1", "qingke-mes-v1"} <= set(lines)
    assert "AsyncAPI" in lines["ipc-open-platform-v1"]


def test_plc_show_piped_keeps_every_cell_whole() -> None:
    from twin.hil.iomap import load_io_map

    result = CliRunner().invoke(cli, ["plc", "show", "winder.modbus"])  # not a terminal: as `| cat`
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for sig in load_io_map("winder.modbus").signals:
        assert sig.where in result.output, sig.where


def test_make_run_checks_the_default_slos_and_make_test_says_it_runs_apt_get() -> None:
    """`make run` ends with the verdict of lines/slo/default.yaml; `make test` announces its apt-get."""
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    run_recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "twin run $(LINE) --slo default $(ARGS)" in run_recipe
    assert (Path(__file__).parents[1] / "lines" / "slo" / "default.yaml").is_file()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert test_recipe.index('echo "installing') < test_recipe.index("apt-get update")


@pytest.mark.e2e
def test_plc_commands_print_no_library_warnings_and_an_unreachable_plc_is_exit_1() -> None:
    """asyncua's two security warnings at start and pymodbus's connection warning are not the user's business."""
    import subprocess
    import sys

    twin = [sys.executable, "-c", "from twin.cli import main; main()"]
    served = subprocess.run([*twin, "plc", "serve", "--map", "winder.opcua", "--port", "0", "--duration-s", "0.5"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert served.returncode == 0, served.stderr
    assert "virtual PLC winder.opcua" in served.stdout and "WARNING" not in served.stderr, served.stderr
    refused = subprocess.run([*twin, "plc", "interlock", "--map", "winder.modbus", "--connect", "127.0.0.1:9",
                              "--wait-running-s", "0.2"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 1 and "WARNING" not in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stderr.strip().startswith("error: interlock 500201: modbus://127.0.0.1:9")
    assert len(refused.stderr.strip().splitlines()) == 1
