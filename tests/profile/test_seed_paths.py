"""Paths cannot drift: every address, method, content type and port of seed 000, read from the seed's own text.

The profile was written by hand from the seed; a single wrong path is an HTTP 404 for every call of that
interface against a real MES. This test reads ``shared/seeds/000_*.txt`` itself (not the profile's notes
about it) and holds each section against the profile. A printed address the profile had to clean up (a
stray space) must be recorded there as a ``path`` contradiction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
PROFILE = ROOT / "profiles" / "qingke-mes-v1.openapi.yaml"
HEADING = re.compile(r"^(?P<n>[23]\.\d+)\. (?:\[bookmark: [^\]]*\])*(?P<title>\S.*)$")
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


def seed_text() -> str:
    files = sorted(SEEDS.glob("000_*.txt"))
    if not files:
        pytest.skip(f"seed 000 not found beside the project ({SEEDS})")
    return files[0].read_text(encoding="utf-8")


def seed_sections(text: str) -> dict[str, list[str]]:
    """The lines of every top-level interface section (2.N and 3.N), by section number."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            current = sections.setdefault(m["n"], [])
            continue
        if current is not None:
            current.append(line.strip())
    return sections


def interface(lines: list[str], default_type: str | None) -> dict[str, Any]:
    """Address, method and content types as the section prints them (else the document's own format)."""
    raw_url = next(line for line in lines if re.match(r"^(URL\s*[：:/]|http://)", line))
    printed = re.sub(r"^URL\s*[：:]?\s*", "", raw_url)
    path = re.sub(r"\s+", "", printed.split("}", 1)[1] if printed.startswith("http://{") else printed)
    method = next(line for line in lines if line in METHODS)
    types = {m.group(1) for line in lines for m in [re.search(r"Content-Type\s*[:：为]?\s*([\w/+-]+)", line)] if m}
    if any(line == "JSON" for line in lines):  # section 3 prints 内容格式 JSON
        types.add("application/json")
    if not types and default_type:
        types.add(default_type)
    return {"printed": printed, "path": path, "method": method, "types": types}


@pytest.fixture(scope="module")
def seed() -> dict[str, dict[str, Any]]:
    text = seed_text()
    default = "application/json" if "数据传输格式为JSON" in text else None  # section 1's opening statement
    return {n: interface(lines, default) for n, lines in seed_sections(text).items()}


@pytest.fixture(scope="module")
def profile_ops() -> dict[str, dict[str, Any]]:
    doc = yaml.load(PROFILE.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    ops: dict[str, dict[str, Any]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            sections = op.get("x-sections") or [op.get("x-section")]
            for section in sections:
                ops[str(section)] = {"path": path, "method": method.upper(), "op": op}
    return ops


def test_the_seed_is_read_whole(seed: dict[str, dict[str, Any]]) -> None:
    assert set(seed) == {f"2.{i}" for i in range(1, 59)} | {"3.1", "3.2"}


def test_every_path_and_method_is_the_seeds(seed: dict[str, dict[str, Any]], profile_ops: dict) -> None:
    wrong = [
        f"{n}: seed {s['method']} {s['path']}, profile {profile_ops[n]['method']} {profile_ops[n]['path']}"
        for n, s in seed.items()
        if (s["path"], s["method"]) != (profile_ops[n]["path"], profile_ops[n]["method"])
    ]
    assert not wrong, "\n".join(wrong)


def test_every_content_type_is_the_seeds(seed: dict[str, dict[str, Any]], profile_ops: dict) -> None:
    wrong = []
    for n, s in seed.items():
        offered = set((profile_ops[n]["op"].get("requestBody") or {}).get("content", {}))
        if not s["types"] or not s["types"] <= offered:
            wrong.append(f"{n}: seed {sorted(s['types'])}, profile {sorted(offered)}")
    assert not wrong, "\n".join(wrong)


def test_a_cleaned_up_address_is_a_recorded_contradiction(seed: dict[str, dict[str, Any]], profile_ops: dict) -> None:
    unrecorded = []
    for n, s in seed.items():
        tail = s["printed"].split("/api/", 1)[1]
        if tail != re.sub(r"\s+", "", tail) or "：" in s["printed"]:
            op = profile_ops[n]["op"]
            variants = [v for v in (op.get("x-variants") or {}).values() if v.get("x-section") == n]
            recorded = [*op.get("x-contradictions", []), *(c for v in variants for c in v.get("x-contradictions", []))]
            kinds = {c.get("kind") for c in recorded}
            if "path" not in kinds:
                unrecorded.append(f"{n}: {s['printed']!r}")
    assert not unrecorded, "\n".join(unrecorded)


def test_section_3_is_served_on_the_seeds_port() -> None:
    text = seed_text()
    port = int(re.search(r"要求设备端口为\s*(\d+)", text)[1])
    mes = load_profile("qingke-mes-v1")
    for op_id in ("SendInterLock", "SendBatchSfc"):
        servers = mes.operation(op_id).servers
        assert servers and all(str(s["url"]).endswith(f":{port}") for s in servers), (op_id, servers)
    from twin.transport.equipment_server import DEFAULT_PORT

    assert port == DEFAULT_PORT
