"""The industrial-PC AsyncAPI profile and its loader: every command, answer and code of the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.errors import ProfileError, UnknownOperation
from twin.ipc.spec import load_ipc_spec
from twin.profile.asyncapi import available_asyncapi, load_asyncapi

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "ipc-open-platform-v1.asyncapi.yaml"
SPEC = load_ipc_spec()
REQUESTS = {
    0xE001: 0xF001,
    0xE002: 0xF002,
    0xE003: 0xF003,
    0xE011: 0xF011,
    0xE012: 0xF012,
    0xE013: 0xF013,
    0xE014: 0xF014,
    0xE015: 0xF015,
    0xE016: 0xF016,
}


def test_found_by_name_and_an_asyncapi_3_document() -> None:
    assert available_asyncapi()["ipc-open-platform-v1"].resolve() == PROFILE.resolve()
    doc = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["messenger"]["address"] == "/WebSocketMessenger"
    assert doc["servers"]["ipc"]["protocol"] == "ws" and doc["servers"]["ipc"]["host"].endswith(":5000")


def test_every_request_of_the_spec_has_its_answer() -> None:
    profile = SPEC.profile
    for request, reply in REQUESTS.items():
        msg = profile.by_cmd(request)
        assert msg is not None and msg.role == "request", hex(request)
        answer = profile.reply_to(msg)
        assert answer is not None and answer.cmd == reply and answer.role == "reply"
    push = profile.by_cmd(0xF0A1)
    assert push is not None and push.role == "push" and push.reply is None


def test_cmd_in_every_payload_is_the_message_number() -> None:
    for msg in SPEC.profile:
        assert msg.cmd is not None
        assert msg.check({"cmd": msg.cmd + 1, "messageID": 1})[1], msg.name  # another cmd is refused
        for example in msg.examples:
            assert example["cmd"] == msg.cmd
            assert msg.check(example)[1] == [], msg.name


def test_the_codes_of_the_spec_are_all_there() -> None:
    values = {c.value for c in SPEC.codes.values()}
    assert {0x01, *range(0x30, 0x38), *range(0x1000, 0x1006)} <= values
    assert SPEC.codes["CannotReadCardNo"].value == 0x1004 and SPEC.codes["Interrupted"].value == 0x1005
    assert set(SPEC.positions.values()) == set(range(0x30, 0x38))
    assert set(SPEC.move_targets) == set(range(0x30, 0x37)) and set(SPEC.reset_targets) == set(range(0x30, 0x34))


def test_contradictions_are_recorded_in_full() -> None:
    found = SPEC.profile.contradictions
    assert len(found) >= 12
    assert len({c["id"] for c in found}) == len(found)
    for c in found:
        assert {"id", "kind", "fields", "table", "example", "choice", "why"} <= set(c), c["id"]


def test_lookups_and_issues_name_the_field() -> None:
    profile = SPEC.profile
    assert profile.message("0xE014").name == "CardMove" and profile.message("cardmove").cmd == 0xE014
    data, issues = profile.message("CameraFocus").check({"cmd": 0xE002, "messageID": 3, "focus": 1})
    assert issues == [] and data["focuse"] == 1  # the alias of the misspelt field (IPC-8)
    _, issues = profile.message("CardMove").check({"cmd": 0xE014, "messageID": 3, "location": 0x40})
    assert [str(i) for i in issues] == ["location: expected integer one of 48, 49, 50, 51, 52, 53, 54, got 64"]
    with pytest.raises(UnknownOperation):
        profile.message(0xE0FF)


def test_an_openapi_file_is_not_taken_for_asyncapi(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="AsyncAPI 3"):
        load_asyncapi(Path(__file__).resolve().parents[2] / "profiles" / "ct-check-v1.openapi.yaml")
    bad = tmp_path / "x.asyncapi.yaml"
    bad.write_text("asyncapi: 3.0.0\ninfo: {title: x, version: '1'}\ncomponents:\n  messages:\n    M: {name: M}\n")
    with pytest.raises(ProfileError, match="no payload schema"):
        load_asyncapi(bad)
