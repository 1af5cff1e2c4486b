"""Schemathesis against the embedded MES's own ``/swagger.json``: thousands of generated requests (valid,
invalid, every undeclared Content-Type, broken forms) and not one server error.

Schemathesis runs as its CLI in a subprocess against an MES this test starts on loopback (offline), with a
host's login token so requests get past 2.1 into validation and the rules. Bounded: 5 examples per
operation, deterministic generation (no random seed, no example database), one worker, no shrinking;
about 20 s on 2 cores. Section 3 (``/api/SendInterLock``, ``/api/SendBatchSfc``) is the equipment's side,
not the MES's, so it is left out.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.mes.conftest import Host
from twin.mes import RunningMes
from twin.profile import Profile

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.skipif(not SCHEMATHESIS.exists() and not shutil.which("schemathesis"), reason="pip install -e '.[dev]'")
async def test_schemathesis_finds_no_server_error(
    mes: RunningMes, session: aiohttp.ClientSession, profile: Profile, tmp_path: Path
) -> None:
    host = Host(session, mes.url, profile)
    await host.login()
    exe = str(SCHEMATHESIS) if SCHEMATHESIS.exists() else str(shutil.which("schemathesis"))
    proc = await asyncio.create_subprocess_exec(
        exe, "run", f"{mes.url}/swagger.json", "--url", mes.url,
        "--checks", "not_a_server_error",
        "--header", f"Authorization: {host.token}",
        "--exclude-path-regex", "^/api/",
        "--max-examples", "5", "--generation-deterministic", "--no-shrink", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 280)
    text = out.decode(errors="replace")
    summary = "\n".join(text.splitlines()[-40:])
    generated = re.search(r"(\d+) generated", text)
    assert generated is not None and int(generated.group(1)) >= 1000, summary  # it really ran
    assert proc.returncode == 0 and "Server error" not in text, summary
    stats = mes.mes.metrics.to_json()
    assert sum(row["requests"] for row in stats["operations"].values()) >= 500  # and reached the MES's pipeline
