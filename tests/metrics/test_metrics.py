"""Exchange log round trip and crash safety; HDR stats equal figures computed from raw exchanges."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

from twin.metrics import Exchange, ExchangeLog, LatencyBook, read_exchange_log
from twin.metrics.exchange import COLUMNS


def make(i: int, rng: random.Random, op: str = "Heartbeat") -> Exchange:
    intended = 1_700_000_000.0 + i * 0.01
    sent = intended + rng.choice([0.0, 0.0, 0.001, 0.02])
    answered = sent + rng.uniform(0.0005, 0.05)
    code = 0 if rng.random() > 0.1 else 1
    return Exchange(op, f"EQ-{i % 7:02d}", i * 0.01, intended, sent, answered, 200, code, 120, 40)


def test_log_round_trip(tmp_path: Path) -> None:
    rng = random.Random(1)
    xs = [make(i, rng) for i in range(1234)]
    xs.append(Exchange("State", "EQ-1", 1.0, 2.0, 2.0, 3.0, 0, None, 10, 0, "timeout"))
    with ExchangeLog(tmp_path / "x.csv.gz", flush_rows=100) as log:
        for ex in xs:
            log.append(ex)
    back = list(read_exchange_log(tmp_path / "x.csv.gz"))
    assert back == xs


CRASHING_WRITER = """
import os, sys
from pathlib import Path
from twin.metrics import Exchange, ExchangeLog
log = ExchangeLog(Path(sys.argv[1]), flush_rows=1000, flush_s=3600)
for i in range(25):
    log.append(Exchange("Heartbeat", "EQ-01", i, i, i, i + 0.01, 200, 0, 100, 30))
    if i in (9, 19):
        log.flush()  # what a checkpoint does: wait until the writer thread has it on disk
os._exit(9)  # dies with 5 rows unflushed, no close, no atexit
"""


def test_a_row_has_the_columns_in_order() -> None:
    ex = Exchange("Inbound", "A02-XR-01", 1.5, 10.0, 10.001, 10.01, 200, 0, 120, 30, "")
    assert dict(zip(COLUMNS, ex.as_row(), strict=True)) == {f: getattr(ex, f) for f in COLUMNS}


def test_log_is_readable_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path)], timeout=60)
    assert proc.returncode == 9
    assert len(list(read_exchange_log(path))) == 20
    with gzip.open(path, "rt") as fh:  # a plain gzip reader sees one valid stream
        assert fh.read().count("\n") == 21


def test_percentiles_match_the_raw_exchanges(tmp_path: Path) -> None:
    rng = random.Random(3)
    xs = [make(i, rng, op=rng.choice(["Inbound", "Outbound"])) for i in range(20000)]
    book = LatencyBook()
    for ex in xs:
        book.record(ex, success=ex.code == 0)
    s = book.summary(duration_s=200.0)
    for op in ("Inbound", "Outbound"):
        mine = [ex for ex in xs if ex.operation == op]
        got = s["interfaces"][op]
        assert got["count"] == len(mine)
        assert got["failures"] == sum(ex.code != 0 for ex in mine)
        assert got["late_starts"] == sum(ex.start_delay_s > 0.005 for ex in mine)
        for p in (50, 99):
            exact = float(np.percentile([ex.latency_s * 1000 for ex in mine], p))
            assert abs(got["latency_ms"][f"p{p}"] - exact) <= exact * 0.002 + 0.002  # HDR: 3 significant digits
        assert got["service_ms"]["max"] >= max(ex.service_s for ex in mine) * 1000 * 0.999


def test_encoded_books_merge_exactly() -> None:
    rng = random.Random(4)
    xs = [make(i, rng) for i in range(5000)]
    whole, a, b = LatencyBook(), LatencyBook(), LatencyBook()
    for i, ex in enumerate(xs):
        whole.record(ex, success=True)
        (a if i % 2 else b).record(ex, success=True)
    merged = LatencyBook.decode(a.encode())
    merged.merge_encoded(b.encode())
    assert merged.summary(1.0) == whole.summary(1.0)


# -- the Parquet log: what a run writes -------------------------------------------------------------------------
def test_parquet_log_round_trip_and_pandas_reads_it_in_one_line(tmp_path: Path) -> None:
    import pandas as pd

    rng = random.Random(5)
    xs = [make(i, rng) for i in range(2345)]
    xs.append(Exchange("State", "EQ-1", 1.0, 2.0, 2.0, 3.0, 0, None, 10, 0, "timeout"))
    with ExchangeLog(tmp_path / "exchanges.parquet", flush_rows=100) as log:
        for i, ex in enumerate(xs):
            log.append(ex)
            if i % 1000 == 999:
                log.flush()  # a checkpoint: a part of its own
    assert list(read_exchange_log(tmp_path / "exchanges.parquet")) == xs
    assert len(list((tmp_path / "exchanges.parquet").glob("part-*.parquet"))) == 3
    df = pd.read_parquet(tmp_path / "exchanges.parquet")
    assert len(df) == len(xs) and list(df.columns) == list(COLUMNS)
    assert (df.answered_wall - df.intended_wall).median() > 0 and set(df.operation) == {ex.operation for ex in xs}
    assert df.code.isna().sum() == 1 and df.loc[df.status == 0, "error"].tolist() == ["timeout"]


KILLED_PARQUET_WRITER = """
import os, sys, time
from pathlib import Path
from twin.metrics import Exchange, ExchangeLog
log = ExchangeLog(Path(sys.argv[1]), flush_rows=1000, flush_s=0.05, part_s=0.2)
start = time.monotonic()
i = 0
while time.monotonic() - start < 1.5:
    log.append(Exchange("Heartbeat", "EQ-01", i, i, i, i + 0.01, 200, 0, 100, 30))
    i += 1
    time.sleep(0.002)
print(i, flush=True)
os._exit(9)  # killed: no close, no final flush
"""


def test_a_killed_run_keeps_all_but_its_last_moments_in_parquet(tmp_path: Path) -> None:
    """No checkpoint at all: parts are sealed every ``part_s`` as rows come, so a kill loses only the last ones."""
    import pandas as pd

    path = tmp_path / "exchanges.parquet"
    proc = subprocess.run([sys.executable, "-c", KILLED_PARQUET_WRITER, str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    written = int(proc.stdout)
    kept = len(pd.read_parquet(path))  # a part being written when it died is hidden: never read
    assert written * 0.5 < kept <= written
    assert [ex.intended_virtual_s for ex in read_exchange_log(path)] == list(range(kept))  # the first ones, in order


def test_parts_are_merged_as_the_log_grows_and_a_leftover_is_read_once(tmp_path: Path) -> None:
    import shutil

    from twin.metrics.parquetlog import ParquetSink, parts

    folder = tmp_path / "exchanges.parquet"
    sink = ParquetSink(folder, compact_parts=4)
    xs = [Exchange("Heartbeat", f"EQ-{i % 3}", i, i, i, i + 0.01, 200, 0, 100, 30) for i in range(70)]
    for k in range(7):  # seven parts of ten: the first four merged
        sink.write([ex.as_row() for ex in xs[10 * k : 10 * k + 10]])
        sink.seal()
        if k == 1:
            shutil.copy(folder / "part-000001.parquet", tmp_path / "leftover.parquet")
    sink.close()
    assert sorted(p.name for p in folder.glob("part-*")) == [
        "part-000000-000003.parquet", "part-000004.parquet", "part-000005.parquet", "part-000006.parquet"]  # fmt: skip
    shutil.copy(tmp_path / "leftover.parquet", folder / "part-000001.parquet")  # a crash between merge and removal
    read = [p.name for p in parts(folder)]
    assert read == ["part-000000-000003.parquet", *(f"part-00000{k}.parquet" for k in (4, 5, 6))]
    assert list(read_exchange_log(folder)) == xs
    again = ParquetSink(folder)  # appending to a log goes on after its last part
    again.write([xs[0].as_row()])
    again.close()
    assert (folder / "part-000007.parquet").is_file()
