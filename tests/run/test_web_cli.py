"""``twin run LINE --web PORT`` end to end, as a user starts it: the terminal says the URL, the page and its
events are served while the run lasts, and the run ends and writes its folder as without ``--web``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_the_terminal_says_the_url_and_the_page_is_served_while_the_run_lasts(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "twin", "run", "mini", "--duration", "4m", "--speed", "40", "--no-compare",
           "--web", "0", "--reports", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if m := re.search(r"web view (http://127\.0\.0\.1:\d+/)", line):
                url = m.group(1)
        assert url, "the terminal never printed the web view's URL"
        with urllib.request.urlopen(url, timeout=10) as page:  # loopback
            html = page.read().decode()
            assert page.status == 200 and "<title>twin live</title>" in html
        with urllib.request.urlopen(url + "static/app.js", timeout=10) as script:
            assert b"EventSource" in script.read()
        with urllib.request.urlopen(url + "api/state", timeout=10) as state:
            doc = json.load(state)
            assert doc["layout"]["line"] == "mini" and doc["token_needed"] is False
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    folder = next(tmp_path.glob("mini/*/summary.json")).parent
    assert json.loads((folder / "summary.json").read_text())["state"] == "finished"
    with pytest.raises(OSError):  # the page goes with the run
        urllib.request.urlopen(url, timeout=2)
