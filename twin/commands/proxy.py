"""``twin proxy``: the validating proxy between real host PCs and the MES, and its conformance report."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from twin import aio
from twin.errors import ConfigError
from twin.transport.target import check_mes_url

DEFAULT_PROFILE = "qingke-mes-v1"


def split_address(text: str, option: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, or ``HOST`` when a default port exists) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not port and default_port is not None:
        return host or "127.0.0.1", default_port
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{option} must be HOST:PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{option}: port {number} is not in 0-65535")
    return host or "127.0.0.1", number


def rule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The rules' times, for both the live proxy and the report (flag > TWIN_* variable > recording > file)."""
    options = [
        click.option(
            "--heartbeat-s", type=float, envvar="TWIN_HEARTBEAT_S", show_default="10", help="Heartbeat period (s)."
        ),
        click.option(
            "--heartbeat-tolerance-s",
            type=float,
            envvar="TWIN_HEARTBEAT_TOLERANCE_S",
            show_default="2",
            help="Allowed deviation of each heartbeat gap (s).",
        ),
        click.option(
            "--down-reason-after-s",
            type=float,
            envvar="TWIN_DOWN_REASON_AFTER_S",
            show_default="180",
            help="Stops longer than this (s) need a down reason.",
        ),
        click.option(
            "--long-stop-s",
            type=float,
            envvar="TWIN_LONG_STOP_S",
            show_default="180",
            help="Stops at least this long (s) need verification (2.9) again.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rule_settings(profile: Any, recorded: dict[str, Any] | None = None, **flags: float | None) -> Any:
    from twin.hil.rules import Settings, load_behaviour

    merged = dict(recorded or {})
    merged.update({k: v for k, v in flags.items() if v is not None})
    return Settings.from_behaviour(load_behaviour(profile), **merged)


def _processes(line_ref: str | None, profile: Any) -> dict[str, str]:
    if not line_ref:
        return {}
    from twin.line.linefile import load_line

    line, _ = load_line(line_ref, profile=profile)
    return {code: st.process for st in line.stations for code in st.equipment_codes()}


def _upstream(value: str) -> str | None:
    """The MES's URL, or None for the embedded MES (started in this process once the proxy listens)."""
    if value != "embedded":
        if "://" not in value:
            raise ConfigError(f"--upstream must be a URL (http://HOST:PORT) or 'embedded', got {value!r}")
        check_mes_url(value, "--upstream")  # the hosts' calls go through the twin's one MES client: plain HTTP
        return value.rstrip("/")
    if importlib.util.find_spec("twin.mes") is None:
        raise ConfigError("--upstream embedded: the embedded MES is not part of this build; give the MES's URL")
    return None


async def start_embedded_mes(proxy_: Any, *, line: str, db: str, profile: str | None) -> Any:
    """The embedded MES on a free loopback port, calling every host's section 3 through the proxy."""
    from urllib.parse import urlsplit

    from twin.mes import MesConfig, start_mes

    s3 = urlsplit(proxy_.section3_url)
    host = "127.0.0.1" if s3.hostname in (None, "", "0.0.0.0", "::") else s3.hostname
    config = MesConfig(
        host="127.0.0.1", port=0, db=db, lines=(line,), profile=profile, addresses={"*": f"{host}:{s3.port}"}
    )
    mes = await start_mes(config)
    proxy_.upstream = mes.url
    return mes


@click.group(invoke_without_command=True)
@click.option("--listen", default="127.0.0.1:8880", show_default=True, help="HOST:PORT the host PCs call as MES.")
@click.option("--upstream", help="The MES the proxy forwards to: a URL, or 'embedded'.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    show_default="reports/proxy/<timestamp>",
    help="Record here.",
)
@click.option(
    "--host-map",
    multiple=True,
    metavar="CODE=URL|FILE",
    help="Where an equipment's host listens for section 3 (repeatable, or a YAML/JSON file).",
)
@click.option("--section3-listen", metavar="HOST:PORT", help="Separate listener for the MES's section-3 calls.")
@click.option(
    "--host-port",
    type=int,
    default=6868,
    show_default=True,
    help="Port of a host not in the host map (reached at the address it calls from).",
)
@click.option("--line", "line_ref", help="Line file: tells the rules each equipment's process.")
@click.option(
    "--profile", "profile_ref", default=DEFAULT_PROFILE, show_default=True, help="Profile to validate against."
)
@click.option(
    "--upstream-timeout-s", type=float, default=10.0, show_default=True, help="Seconds to wait for the MES's answer."
)
@click.option("--mes-db", default=":memory:", show_default=True, help="SQLite file of --upstream embedded.")
@click.option("--duration-s", type=float, show_default="until Ctrl-C", help="Stop after this many seconds.")
@rule_options
@click.pass_context
def proxy(ctx: click.Context, **opts: Any) -> None:
    """Sit between real host PCs and the MES: forward, record, validate, check the spec's rules.

    \b
      twin proxy --listen 0.0.0.0:8880 --upstream http://mes:5000     point the hosts at :8880
      twin proxy report reports/proxy/<timestamp>                      conformance report per host

    Every exchange is forwarded as it came, checked against the profile and the behavioural rules (login
    first, heartbeat period, state on change, down reason, earliest alarm, verification, inbound before
    outbound, tray life cycle); violations print as they happen. The MES's section-3 calls
    (/api/SendInterLock, /api/SendBatchSfc) are forwarded to the host by EquipmentCode. On stop the
    report is written into the recording. Exit 1 if any rule failed.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not opts["upstream"]:
        raise click.UsageError("--upstream URL (or 'embedded') is required to run the proxy")
    aio.run(_run_proxy(**opts))


async def _run_proxy(**opts: Any) -> None:
    from twin.hil.conformance import build_report, text_report, verdict, write_report
    from twin.hil.journal import JOURNAL
    from twin.hil.proxy import HostProxy, ProxyConfig, parse_host_map
    from twin.metrics.runfolder import new_run_dir
    from twin.profile import load_profile

    upstream = _upstream(opts["upstream"])
    profile = load_profile(opts["profile_ref"])
    host, port = split_address(opts["listen"], "--listen")
    s3_host, s3_port = None, None
    if opts["section3_listen"]:
        s3_host, s3_port = split_address(opts["section3_listen"], "--section3-listen")
    record_dir = opts["report_dir"] or new_run_dir(Path("reports"), "proxy")
    if (record_dir / JOURNAL).exists():
        raise ConfigError(f"--report-dir {record_dir} already holds a recording; choose another folder")
    rules = {k: opts[k] for k in ("heartbeat_s", "heartbeat_tolerance_s", "down_reason_after_s", "long_stop_s")}
    config = ProxyConfig(
        upstream=upstream or "embedded",
        record_dir=record_dir,
        listen_host=host,
        listen_port=port,
        section3_host=s3_host,
        section3_port=s3_port,
        host_map=parse_host_map(opts["host_map"]),
        host_port=opts["host_port"],
        upstream_timeout_s=opts["upstream_timeout_s"],
        settings=_rule_settings(profile, **rules),
        processes=_processes(opts["line_ref"], profile),
    )

    def show(v: Any) -> None:
        click.echo(f"VIOLATION {v.host} {v.rule}: {v.message}", err=True)

    proxy_ = HostProxy(profile, config, on_violation=show)
    try:
        await proxy_.start()
    except OSError as exc:
        await proxy_.stop()
        raise ConfigError(f"cannot listen on {opts['listen']}: {exc.strerror or exc}") from None
    mes = None
    if upstream is None:
        line = opts["line_ref"] or "line-A02"
        mes = await start_embedded_mes(proxy_, line=line, db=opts["mes_db"], profile=opts["profile_ref"])
    target = f"embedded MES {proxy_.upstream}" if mes else proxy_.upstream
    click.echo(f"proxy {proxy_.url} -> {target}; section 3 on {proxy_.section3_url}; recording in {record_dir}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    aio.handle_signals(loop, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), opts["duration_s"])
    await proxy_.stop()
    if mes is not None:
        await mes.stop()
    report = build_report(record_dir, profile, settings=config.settings, processes=config.processes)
    paths = write_report(report, record_dir)
    click.echo(text_report(report))
    click.echo("report: " + ", ".join(str(p) for p in paths))
    verdict(report)


@proxy.command("report")
@click.argument("record_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), show_default="RECORD_DIR", help="Write the reports here."
)
@click.option("--line", "line_ref", help="Line file: tells the rules each equipment's process.")
@click.option(
    "--profile", "profile_ref", default=None, show_default="the recording's", help="Profile to check against."
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the text.")
@rule_options
def report(
    record_dir: Path,
    out: Path | None,
    line_ref: str | None,
    profile_ref: str | None,
    as_json: bool,
    **rules: float | None,
) -> None:
    """Write the conformance report of a proxy recording: each rule per host, with the offending exchanges.

    Writes conformance.json, conformance.txt and conformance.html and prints the text. The rules' times are
    the recording's unless given. Exit 1 if any rule failed, 0 if every host passed.
    """
    from twin.hil.conformance import build_report, text_report, verdict, write_report
    from twin.hil.journal import JOURNAL
    from twin.profile import load_profile

    if not (record_dir / JOURNAL).is_file():
        raise ConfigError(f"{record_dir} holds no proxy recording ({JOURNAL} missing)")
    recorded: dict[str, Any] = {}
    settings_file = record_dir / "settings.json"
    if settings_file.is_file():
        recorded = json.loads(settings_file.read_text(encoding="utf-8"))
    profile = load_profile(profile_ref or recorded.get("profile") or DEFAULT_PROFILE)
    settings = _rule_settings(profile, recorded.get("rules"), **rules)
    processes = _processes(line_ref, profile) or recorded.get("processes") or {}
    result = build_report(record_dir, profile, settings=settings, processes=processes)
    paths = write_report(result, out or record_dir)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else text_report(result))
    if not as_json:
        click.echo("report: " + ", ".join(str(p) for p in paths))
    verdict(result)
