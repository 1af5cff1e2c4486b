"""The chunked numpy reader returns exactly what the reference reader (twin.metrics) returns."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.metrics import Exchange, ExchangeLog, read_exchange_log
from twin.report.logscan import LogReader


def _awkward(n: int, seed: int) -> list[Exchange]:
    """Exchanges with every field a CSV can make hard: quotes, commas, newlines, long and non-ASCII names."""
    rng = random.Random(seed)
    errors = ["timeout", "refused, host down", 'said "no"\nthen hung up', "x" * 300, "连接被拒绝"]
    ops = ["Heartbeat", "State", "Op,With,Commas", "O" * 150, "入站"]
    out = []
    for i in range(n):
        status = rng.choice([200, 200, 200, 0, 503])
        code = rng.choice([0, 1, None, -7, 500201]) if status == 200 else None
        error = "" if status else rng.choice(errors)
        out.append(Exchange(rng.choice(ops), f"EQ-{i % 13}", i * 0.25, 1.7e9 + i / 3, 1.7e9 + i / 3 + 0.001,
                            1.7e9 + i / 3 + 0.0123456789, status, code, 10 + i, 20, error))  # fmt: skip
    return out


def _back(reader: LogReader) -> list[Exchange]:
    got = []
    for c in reader:
        for j in range(len(c)):
            code = None if np.isnan(c.code[j]) else int(c.code[j])
            got.append(Exchange(reader.operations.names[c.operation[j]], reader.equipment.names[c.equipment[j]],
                                float(c.intended_virtual_s[j]), float(c.intended_wall[j]), float(c.sent_wall[j]),
                                float(c.answered_wall[j]), int(c.status[j]), code, int(c.bytes_out[j]),
                                int(c.bytes_in[j]), c.error[j]))  # fmt: skip
    return got


def _without_answered_errors(xs: list[Exchange]) -> list[Exchange]:
    """The reader keeps error texts only where there was no answer (the only place an outcome uses them)."""
    return [Exchange(*x.as_row()[:-1], x.error if x.status == 0 else "") for x in xs]  # type: ignore[arg-type]


@pytest.mark.parametrize("block_bytes", [700, 20_000, 2 << 20])
def test_chunks_equal_the_reference_reader(tmp_path: Path, block_bytes: int) -> None:
    xs = _awkward(3000, seed=block_bytes)
    with ExchangeLog(tmp_path / "x.csv.gz", flush_rows=257) as log:
        for ex in xs:
            log.append(ex)
    reference = list(read_exchange_log(tmp_path / "x.csv.gz"))
    assert _back(LogReader(tmp_path / "x.csv.gz", block_bytes=block_bytes)) == _without_answered_errors(reference)


_WORKERS_SCRIPT = """
import gzip, os, sys
from pathlib import Path
import twin.report.logscan as logscan
from tests.report.test_logscan import _awkward, _back, _without_answered_errors
from twin.metrics import ExchangeLog, read_exchange_log
from twin.metrics.exchange import COLUMNS

tmp, parent = Path(sys.argv[1]), os.getpid()
with ExchangeLog(tmp / "x.csv.gz", flush_rows=257) as log:
    for ex in _awkward(3000, seed=5):
        log.append(ex)
expected = _without_answered_errors(list(read_exchange_log(tmp / "x.csv.gz")))
reader = logscan.LogReader(tmp / "x.csv.gz", block_bytes=4000, workers=2)
assert _back(reader) == expected and reader.workers_used == 2, "workers read otherwise"
(tmp / "bad.csv.gz").write_bytes(gzip.compress(",".join(COLUMNS).encode() + b"\\nHeartbeat,EQ,x,1\\n" * 50))
try:
    list(logscan.LogReader(tmp / "bad.csv.gz", block_bytes=100, workers=2))
    raise AssertionError("a broken row read by a worker was accepted")
except logscan.ConfigError as exc:
    assert "is not an exchange" in str(exc), exc
here = []
real = logscan.parse_block

def dies_in_a_worker(text):  # as the kernel's OOM killer would end a worker
    if os.getpid() != parent:
        os._exit(1)
    here.append(text)
    return real(text)

logscan.parse_block = dies_in_a_worker
reader = logscan.LogReader(tmp / "x.csv.gz", block_bytes=4000, workers=2)
assert _back(reader) == expected and reader.workers_used == 2 and len(here) > 20, "a dead worker lost blocks"
print("ok")
"""


def test_worker_processes_read_the_same_and_survive_a_dead_worker(tmp_path: Path) -> None:
    """In a fresh process: workers are forked only from a single-threaded one, and pytest's may have threads."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _WORKERS_SCRIPT, str(tmp_path)], cwd=root, capture_output=True,
                          text=True, timeout=100, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_workers_are_not_forked_from_a_process_with_threads(tmp_path: Path) -> None:
    with ExchangeLog(tmp_path / "x.csv.gz") as log:
        log.append(_awkward(1, seed=1)[0])
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(30,))
    other.start()
    try:
        reader = LogReader(tmp_path / "x.csv.gz", workers=2)
        assert sum(len(c) for c in reader) == 1 and reader.workers_used == 0
    finally:
        stop.set()
        other.join(10)


def test_an_empty_log_has_no_chunks(tmp_path: Path) -> None:
    ExchangeLog(tmp_path / "x.csv.gz").close()
    assert list(LogReader(tmp_path / "x.csv.gz")) == []


def test_a_foreign_file_is_bad_input_naming_the_columns(tmp_path: Path) -> None:
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(b"a,b,c\n1,2,3\n"))
    with pytest.raises(ConfigError, match="unexpected columns"):
        list(LogReader(tmp_path / "x.csv.gz"))


def test_a_broken_row_is_bad_input_not_a_traceback(tmp_path: Path) -> None:
    with ExchangeLog(tmp_path / "x.csv.gz") as log:
        log.append(_awkward(1, 1)[0])
    with open(tmp_path / "x.csv.gz", "ab") as fh:
        fh.write(gzip.compress(b"Heartbeat,EQ,not-a-number,1,1,1,200,0,1,1,\n"))
    with pytest.raises(ConfigError, match="not an exchange"):
        list(LogReader(tmp_path / "x.csv.gz"))


def test_a_file_that_is_not_gzip_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "x.csv.gz").write_text("operation,equipment\n")
    with pytest.raises(ConfigError, match="cannot read the exchange log"):
        list(LogReader(tmp_path / "x.csv.gz"))
