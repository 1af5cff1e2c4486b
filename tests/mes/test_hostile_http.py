"""Hostile HTTP against section 2: body limits answered before the body is read, wrong media types, broken
multipart forms, idle and half-sent connections, clients that vanish mid-body. Nothing of it is a 500, a
stored body, a held connection or a traceback."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mes.conftest import COATER, Host
from twin.mes import RunningMes
from twin.mes.guard import BODY_LIMITS, SECTION2_BODY_LIMIT

HEARTBEAT = "/EquipmentService/api/v1/Heartbeat"
UPLOAD = "/EquipmentService/api/v1/EquFileUpload"


async def _raw(mes: RunningMes, data: bytes, *, wait_s: float = 5.0) -> bytes | None:
    """Send raw bytes on a fresh connection; return what the MES answers until it closes, or None if it
    says nothing for ``wait_s``."""
    host, port = mes.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), wait_s)
    except TimeoutError:
        return None
    finally:
        writer.close()


def _head(path: str, length: int, content_type: str = "application/json", token: str | None = None) -> bytes:
    auth = f"Authorization: {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: mes\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_an_oversized_body_is_413_before_it_is_read(host: Host, mes: RunningMes) -> None:
    # Only the headers are sent: the answer comes without waiting for the 10 MB the header promises.
    answer = await _raw(mes, _head(HEARTBEAT, 10 * 1024 * 1024, token=host.token), wait_s=2)
    assert answer.startswith(b"HTTP/1.1 413") and b"at most 1048576 bytes" in answer
    stats = await _stats(host)
    assert stats["refusals"]["too-large"] == 1


async def test_2_54_file_upload_takes_more_than_the_json_interfaces(host: Host, mes: RunningMes) -> None:
    assert BODY_LIMITS["EquFileUpload"] > 2 * 1024 * 1024 > SECTION2_BODY_LIMIT
    form = "multipart/form-data; boundary=x"
    answer = await _raw(mes, _head(UPLOAD, 2 * 1024 * 1024, form, host.token), wait_s=1)
    assert answer is None  # 2 MB is within 2.54's limit: the MES waits for the body (none comes)
    answer = await _raw(mes, _head(UPLOAD, 40 * 1024 * 1024, form, host.token), wait_s=2)
    assert answer.startswith(b"HTTP/1.1 413")


async def test_a_chunked_body_past_the_limit_is_413(host: Host) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536  # 2.5 MB without a Content-Length

    headers = {"Authorization": host.token or "", "Content-Type": "application/json"}
    async with host.session.post(host.url + HEARTBEAT, data=chunks(), headers=headers) as resp:
        assert resp.status == 413


async def test_a_refused_body_is_logged_by_size_not_stored(make_mes: Any, tmp_path: Path, profile: Any) -> None:
    """The issue: a 10 MB body refused with 401 grew the database by 10 MB."""
    db = tmp_path / "mes.sqlite"
    running = await make_mes(db=str(db))
    body = b'{"equipmentCode": "' + b"x" * (900 * 1024) + b'"}'
    async with aiohttp.ClientSession() as session:
        async with session.post(
            running.url + HEARTBEAT, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 401
        host = Host(session, running.url, profile, running.admin_headers)
        await host.login()
        status, doc = await host.post(HEARTBEAT, None, raw=b"[" * (600 * 1024))
        assert status == 400 and doc["code"] == 1002
    await running.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT reason, length(request) FROM exchanges WHERE operation = 'Heartbeat'").fetchall()
        stored = conn.execute("SELECT request FROM exchanges WHERE reason = 'unauthorised'").fetchone()[0]
    assert sorted(reason for reason, _ in rows) == ["not-json", "unauthorised"]
    assert all(size < 100 for _, size in rows), rows
    assert b'"bytes":921621' in stored
    assert db.stat().st_size < 512 * 1024


@pytest.mark.parametrize(
    ("content_type", "path"),
    [
        ("text/plain", HEARTBEAT),
        ("application/x-www-form-urlencoded", HEARTBEAT),
        ("multipart/form-data; boundary=x", HEARTBEAT),
        (None, HEARTBEAT),
        ("text/plain", UPLOAD),
    ],
)
async def test_a_wrong_content_type_is_415(host: Host, content_type: str | None, path: str) -> None:
    headers = {"Authorization": host.token or ""}
    if content_type:
        headers["Content-Type"] = content_type
    async with host.session.post(
        host.url + path, data=b'{"isOnline": true}', headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        assert resp.status == 415
        doc = await resp.json()
    assert "application/json" in doc["msg"]
    assert f"got Content-Type {content_type!r}" in doc["msg"] if content_type else "got no Content-Type" in doc["msg"]


async def test_only_the_json_media_types_that_asp_net_takes_are_taken(host: Host) -> None:
    body = host.body("Heartbeat", {"IsOnline": True})
    for content_type, status in (
        ("application/json; charset=utf-8", 200),
        ("text/json", 200),
        ("application/problem+json", 200),
        ("text/plain; charset=utf-8", 415),  # read as JSON before
    ):
        headers = {"Authorization": host.token or "", "Content-Type": content_type}
        payload = aiohttp.payload.JsonPayload(body, content_type=content_type)
        async with host.session.post(host.url + HEARTBEAT, data=payload, headers=headers) as resp:
            assert resp.status == status, content_type
            assert status != 200 or (await resp.json())["code"] == 0


def _form(boundary: str = "b0und", *, close: bool = True) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (
            ("EquipmentCode", COATER), ("ResourceCode", f"R-{COATER}"), ("LocalTime", "2026-11-23T06:00:01.000Z"),
            ("Type", "1"), ("Sfc", "CR-FORM-1"), ("Passed", "1"), ("CollectionTime", "2026-11-23T06:00:00.000Z"),
        )
    ]  # fmt: skip
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="FormCollection"; filename="ccd.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n{'x' * 5000}\r\n"
    )
    return "".join(parts).encode() + (f"--{boundary}--\r\n".encode() if close else b"")


async def test_multipart_upload_is_read_and_broken_forms_are_a_400(host: Host) -> None:
    headers = {"Authorization": host.token or ""}
    form = _form()
    cases = [
        ("multipart/form-data; boundary=b0und", form, 200),  # a good 2.54 form: read (its rule may refuse it)
        ("multipart/form-data", form, 400),  # no boundary
        ("multipart/form-data; boundary=b0und", form[: len(form) // 2], 400),  # truncated
        ("multipart/form-data; boundary=b0und", _form(close=False), 400),  # never closed
        ("multipart/form-data; boundary=other", form, 400),  # a boundary that is not in the body
    ]
    for content_type, body, expected in cases:
        async with host.session.post(
            host.url + UPLOAD, data=body, headers={**headers, "Content-Type": content_type}
        ) as resp:
            assert resp.status == expected, (content_type, len(body), resp.status, await resp.text())
            doc = await resp.json()
            if expected == 400:
                assert "multipart/form-data body of 2.54 EquFileUpload cannot be read" in doc["msg"]


async def test_idle_and_half_sent_connections_are_closed(
    make_mes: Any, session: aiohttp.ClientSession, profile: Any
) -> None:
    running = await make_mes(idle_timeout_s=0.5, body_timeout_s=0.5)
    host = Host(session, running.url, profile)
    await host.login()
    loop = asyncio.get_running_loop()
    for data in (b"", b"POST /EquipmentService/api/v1/Heartbeat HTTP/1.1\r\nHost: m"):  # idle; headers half-sent
        started = loop.time()
        assert await _raw(running, data, wait_s=5) == b""  # closed by the MES, nothing answered
        assert 0.4 < loop.time() - started < 3
    started = loop.time()  # headers complete, body half-sent: 408 once the body timeout has passed
    answer = await _raw(running, _head(HEARTBEAT, 100, token=host.token) + b'{"equip', wait_s=5)
    assert answer.startswith(b"HTTP/1.1 408") and 0.4 < loop.time() - started < 3


async def test_a_client_gone_mid_body_is_one_log_line(
    host: Host, mes: RunningMes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    address, port = mes.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(address, int(port))
    writer.write(_head(HEARTBEAT, 5000, token=host.token) + b'{"equipmentCode": "A02')
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()  # a reset, mid-body
    for _ in range(100):
        await asyncio.sleep(0.05)
        if any("went away" in r.getMessage() for r in caplog.records):
            break
    await asyncio.sleep(0.1)
    records = [r for r in caplog.records if r.name.startswith(("twin.mes", "aiohttp"))]
    assert len([r for r in records if "went away" in r.getMessage()]) == 1, records
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records]
    assert (await _stats(host))["refusals"]["client-gone"] == 1


async def _stats(host: Host) -> dict[str, Any]:
    async with host.session.get(host.url + "/admin/stats", headers=host.admin) as resp:
        return await resp.json()
