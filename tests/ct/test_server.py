"""The CT cloud: every answer in the profile's envelope, every refusal with its own error code, no crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from twin.ct.fleet import Fleet, Inverter, generate_fleet
from twin.ct.server import create_app, start_server
from twin.ct.spec import RESULT_OP, START_OP, STATUS_OP, load_ct_spec

SPEC = load_ct_spec()
TOKEN = "t-123"
CODES = SPEC.error_codes


@pytest.fixture
async def cloud() -> AsyncIterator[tuple[str, Fleet]]:
    fleet = generate_fleet(5, SPEC, seed=2, check_s=(0.2, 0.2), delivery_s=(0, 0))
    for inv in fleet.inverters.values():
        inv.topology, inv.device_status, inv.bms_alarm, inv.meter_ok, inv.run = "master", 2, 0, 1, None
    runner, port = await start_server(create_app(fleet, [TOKEN]))
    yield f"http://127.0.0.1:{port}", fleet
    await runner.cleanup()


async def _get(url: str, path: str, *, token: str | None = TOKEN, **params: str) -> dict[str, Any]:
    headers = {"Token": token} if token is not None else {}
    async with aiohttp.ClientSession() as s, s.get(url + path, params=params, headers=headers) as r:
        assert r.status == 200
        return await r.json()


async def _post(url: str, path: str, data: bytes, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + path, data=data, headers={"Token": TOKEN, **(headers or {})}) as r,
    ):
        assert r.status == 200
        return await r.json()


def _checked(op_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    assert SPEC.op(op_id).check_response(answer)[1] == [], answer
    return answer


async def test_status_start_and_result_answer_in_the_profile_shape(cloud: tuple[str, Fleet]) -> None:
    url, fleet = cloud
    sn = next(iter(fleet.inverters))
    status = _checked(STATUS_OP, await _get(url, "/device/getInerterBMSMeterStatus", sn=sn))
    assert status["successful"] and status["body"]["deviceStatus"] == 2 and status["body"]["checking"] == 0
    start = _checked(START_OP, await _post(url, "/device/startCheck", b'{"deviceSn": "%s"}' % sn.encode()))
    assert start == {"errorCode": 0, "info": None, "body": True, "successful": True}
    result = _checked(RESULT_OP, await _get(url, "/device/getCheckResult", sn=sn))
    assert result["body"]["bit1"] == 1


async def test_the_corrected_path_spelling_is_served_too(cloud: tuple[str, Fleet]) -> None:
    url, fleet = cloud
    answer = await _get(url, "/device/getInverterBMSMeterStatus", sn=next(iter(fleet.inverters)))
    assert answer["errorCode"] == 0


async def test_a_form_content_type_body_is_read_as_json(cloud: tuple[str, Fleet]) -> None:
    url, fleet = cloud
    body = b'{"deviceSn": "%s"}' % next(iter(fleet.inverters)).encode()
    answer = await _post(url, "/device/startCheck", body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer["body"] is True  # what curl --data sends (CT-3)


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("no token", "token"),
        ("wrong token", "token"),
        ("no sn", "missing"),
        ("bad sn", "malformed"),
        ("unknown sn", "not-found"),
    ],
)
async def test_query_errors_have_their_codes(cloud: tuple[str, Fleet], how: str, code: str) -> None:
    url, fleet = cloud
    sn = next(iter(fleet.inverters))
    token: str | None = {"no token": None, "wrong token": "nope"}.get(how, TOKEN)
    params = {"no sn": {}, "bad sn": {"sn": "Z1122-0010"}, "unknown sn": {"sn": "A11220019999994A"}}.get(
        how, {"sn": sn}
    )
    for path, op in (("/device/getInerterBMSMeterStatus", STATUS_OP), ("/device/getCheckResult", RESULT_OP)):
        answer = _checked(op, await _get(url, path, token=token, **params))
        assert (answer["errorCode"], answer["successful"], answer["body"]) == (CODES[code], False, None)
        assert answer["info"]


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (b"", "missing", "deviceSn"),
        (b"{}", "missing", "deviceSn"),
        (b'{"deviceSn": 12}', "malformed", "deviceSn"),
        (b"deviceSn=A11220010963004A", "malformed", "not JSON"),
        (b"[1, 2]", "missing", "JSON object"),
        (b'{"deviceSn": "A11220019999994A"}', "not-found", "A11220019999994A"),
    ],
)
async def test_start_errors_have_their_codes(cloud: tuple[str, Fleet], body: bytes, code: str, named: str) -> None:
    url, _ = cloud
    answer = _checked(START_OP, await _post(url, "/device/startCheck", body))
    assert answer["errorCode"] == CODES[code] and not answer["successful"]
    assert named in answer["info"]


async def test_sn_is_accepted_for_device_sn(cloud: tuple[str, Fleet]) -> None:
    url, fleet = cloud
    answer = await _post(url, "/device/startCheck", b'{"sn": "%s"}' % next(iter(fleet.inverters)).encode())
    assert answer["body"] is True  # x-aliases (CT-2)


async def test_a_refused_start_is_false_with_the_reason(cloud: tuple[str, Fleet]) -> None:
    url, fleet = cloud
    inv = next(iter(fleet.inverters.values()))
    inv.topology = "slave"
    answer = _checked(START_OP, await _post(url, "/device/startCheck", b'{"deviceSn": "%s"}' % inv.sn.encode()))
    assert answer["errorCode"] == 0 and answer["body"] is False and "slave" in answer["info"]


async def test_an_internal_failure_is_an_error_envelope(
    cloud: tuple[str, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, fleet = cloud
    inv = next(iter(fleet.inverters.values()))

    class Broken(Inverter):
        def status(self, now: float) -> dict[str, Any]:
            raise RuntimeError("meter bus down")

    fleet.inverters[inv.sn] = Broken(inv.sn, inv.topology, inv.device_status, inv.bms_alarm, inv.meter_ok)
    monkeypatch.setattr("twin.ct.server.log.exception", lambda *a, **k: None)
    answer = _checked(STATUS_OP, await _get(url, "/device/getInerterBMSMeterStatus", sn=inv.sn))
    assert answer["errorCode"] == CODES["internal"] and "RuntimeError" in answer["info"]
