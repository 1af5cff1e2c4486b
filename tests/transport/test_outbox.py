"""The outbox keeps what is owed, in order, across a restart, and forgets only what was acknowledged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twin.transport.outbox import Outbox


def test_items_come_back_in_order_per_equipment_and_leave_on_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for i in range(3):
        box.append("A", "Outbound", {"sfc": f"C{i}"}, virtual_s=i, wall=100.0 + i)
        box.append("B", "Inbound", {"sfc": f"D{i}"}, virtual_s=i, wall=100.0 + i)
    seen = []
    while (item := box.next_for("A")) is not None:
        seen.append(item.body["sfc"])
        box.ack(item)
    assert seen == ["C0", "C1", "C2"]
    assert (len(box), box.owed_by("A"), box.owed_by("B")) == (3, 0, 3)
    box.close()


WRITER = """
import os, sys
from twin.transport.outbox import Outbox
box = Outbox(sys.argv[1])
for i in range(50):
    box.append("A", "Outbound", {"sfc": f"C{i}"}, virtual_s=i, wall=i)
os._exit(3)  # killed: no close
"""


def test_what_is_owed_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    assert subprocess.run([sys.executable, "-c", WRITER, str(path)], timeout=60).returncode == 3
    box = Outbox(path)
    assert [o.body["sfc"] for o in box] == [f"C{i}" for i in range(50)]
    box.close()
