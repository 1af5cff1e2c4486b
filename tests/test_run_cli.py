"""Bad input to ``twin run``: one line naming the problem, exit 2, no traceback, and no run folder.

Each case goes through the real entry point (``twin.cli.main``) in this process: options are checked before
anything starts, so these take milliseconds. Before issue 13, ``--mes not-a-url`` and a URL with nothing
listening "finished" with 0 exchanges and exit 0, ``--speed nan`` never advanced, ``--timeout -1`` timed out
every login and exited 0, and ``--equipment-prefix abc`` or ``--reports /proc/x`` printed tracebacks.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.cli import main

RUN = ["run", "mini", "--duration", "30s", "--no-compare", "--equipment-port", "0"]


def twin(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["twin", *args])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out + out.err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers (a hung MES)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


BAD = [
    (["--mes", "not-a-url"], "--mes 'not-a-url': expected an http://"),
    (["--mes", "https://127.0.0.1:1"], "https is not supported"),
    (["--mes", "http://127.0.0.1:99999"], "the port must be a number"),
    (["--speed", "nan"], "--speed must be a finite number above 0, got nan"),
    (["--speed", "inf"], "--speed must be a finite number above 0, got inf"),
    (["--speed", "0"], "--speed must be a finite number above 0, got 0"),
    (["--speed", "-1"], "--speed must be a finite number above 0, got -1"),
    (["--timeout", "-1"], "--timeout must be a finite number above 0, got -1"),
    (["--timeout", "0"], "--timeout must be a finite number above 0, got 0"),
    (["--timeout", "nan"], "--timeout must be a finite number above 0, got nan"),
    (["--equipment-prefix", "abc"], "--equipment-prefix 'abc': expected the first three octets"),
    (["--equipment-prefix", "127.0.300."], "--equipment-prefix '127.0.300.'"),
    (["--equipment-port", "70000"], "--equipment-port must be a TCP port between 0 and 65535, got 70000"),
    (["--equipment-port", "-1"], "--equipment-port must be a TCP port"),
    (["--reports", "/proc/x"], "--reports /proc/x: cannot create the folder"),
    (["--mes-arg=--bogus"], "--mes-arg: No such option '--bogus'"),
    (["--mes-arg=--outage-after=3"], "--mes-arg: --outage-after and --outage-for go together"),
    (["--mes-arg=--latency=weird:1"], "--mes-arg:"),
    (["--duration", "0"], "--duration must be a finite number above 0, got 0"),
    (["--duration", "ten minutes"], "duration 'ten minutes'"),
    (["--scale", "0"], "--scale must be at least 1, got 0"),
    (["--scale", "100000"], "use a lower --equipment-prefix or a smaller --scale"),
    (["--seed", "-1"], "'--seed': -1 is not in the range"),
    (["--seed", "99999999999999999999999"], "'--seed'"),
    (["--load", "bogus"], "load shape 'bogus'"),
    (["--load", "step:2@5h"], "load shape 'step:2@5h': step at 18000 s is outside the run"),
    (["--load", "storm@200%"], "storm at 60 s is outside the run"),
    (["--load", "step:1.2.3@5s"], "load shape 'step:1.2.3@5s'"),
    (["--energy", "ftp://x"], "--energy 'ftp://x': expected 'embedded'"),
    (["--energy-every", "0"], "--energy-every must be a finite number above 0, got 0"),
    (["--warmup", "-1"], "duration '-1'"),
    (["--authorization", "Bearer x\r\nX-Injected: 1"], "--authorization: control characters"),
    (["--offline", "--latency-ms", "nan"], "--latency-ms must be a finite number of at least 0, got nan"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = tmp_path / "reports"
    args = [*RUN, "--reports", str(reports), *extra]
    if "--offline" in extra:
        args = ["run", "mini", "--offline", "--duration", "60s", *[a for a in extra if a != "--offline"]]
    code, text = twin(args, capsys, monkeypatch)
    assert code == 2, text
    assert message in text, text
    assert "Traceback" not in text and len([ln for ln in text.splitlines() if ln.strip()]) <= 3, text  # click: usage
    assert not list(reports.glob("*/*")), "a refused run must not leave a run folder"


def test_an_mes_with_nothing_listening_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, text = twin([*RUN, "--reports", str(tmp_path), "--mes", url], capsys, monkeypatch)
    assert code == 2 and f"--mes {url}: connection refused" in text and "Traceback" not in text
    assert not list(tmp_path.glob("*/*"))


def test_an_mes_that_never_answers_is_refused_within_the_timeout(
    silent_server: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{silent_server}"
    args = [*RUN, "--reports", str(tmp_path), "--mes", url, "--timeout", "0.5"]
    code, text = twin(args, capsys, monkeypatch)
    assert code == 2 and f"--mes {url}: no answer within 0.5 s" in text
    assert not list(tmp_path.glob("*/*"))
