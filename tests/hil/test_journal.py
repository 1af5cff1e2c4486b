"""The proxy's journal: readable after a crash, numbering continues, secrets not kept."""

from __future__ import annotations

from pathlib import Path

from twin.hil.journal import JournalWriter, Recorded, digest, read_journal, redact


def _rec(seq: int) -> Recorded:
    return Recorded(seq, "host", "/p", "Heartbeat", "2.2", "A", "10.0.0.1", 1.0, 1.0, 1.1, 200, 0, {"x": 1}, {})


def test_a_half_written_last_line_is_skipped_and_numbering_continues(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writer = JournalWriter(path)
    for _ in range(3):
        writer.append(_rec(writer.next_seq()))
    writer.close()
    with path.open("ab") as fh:
        fh.write(b'{"seq": 4, "direction": "ho')  # the proxy was killed mid-write
    assert [r.seq for r in read_journal(path)] == [1, 2, 3]
    again = JournalWriter(path)
    assert again.next_seq() == 4
    again.close()


def test_login_password_and_token_are_not_kept() -> None:
    request = {"equipmentCode": "A", "operatorUserID": "op1001", "operatorPassword": "pa55word"}
    response = {"code": 0, "msg": "ok", "data": {"accountType": "2", "authorization": "Bearer abc"}}
    req, resp = redact(request, response, password_field="OperatorPassword", token_field="authorization")
    assert req["operatorPassword"] == "***" and req["operatorUserID"] == "op1001"
    assert resp["data"]["authorization"] == digest("Bearer abc") and resp["data"]["accountType"] == "2"
    assert response["data"]["authorization"] == "Bearer abc"  # the answer the host gets is untouched
    empty, _ = redact({"OperatorPassword": ""}, None, password_field="OperatorPassword", token_field="authorization")
    assert empty["OperatorPassword"] == ""  # an empty password stays visible to the login rule
    assert digest("") == "" and digest("x").startswith("sha256:")
