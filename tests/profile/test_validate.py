"""Validation: both casings, aliases, and errors that name the field as sent."""

from __future__ import annotations

import pytest

from twin.errors import PayloadInvalid
from twin.profile import Profile

GOOD = {
    "equipmentCode": "EQ-1",
    "localTime": "2026-11-23T06:00:00.000Z",
    "sfcList": [{"sfc": "C1", "uriList": [{"passed": 1}]}],
}


def issues(profile: Profile, payload: dict) -> list[str]:
    return [str(i) for i in profile.operation("Report").check_request(payload)[1]]


def test_camel_and_pascal_and_mixed_casing_are_accepted(tiny: Profile) -> None:
    pascal = {"EquipmentCode": "EQ-1", "LocalTime": "2026-11-23T06:00:00Z", "SfcList": [{"SFC": "C1", "URILIST": []}]}
    assert issues(tiny, GOOD) == []
    assert issues(tiny, pascal) == []


def test_normalised_payload_uses_the_canonical_names(tiny: Profile) -> None:
    data, _ = tiny.operation("Report").check_request(GOOD)
    assert data["SfcList"][0]["UriList"][0]["Passed"] == 1


def test_missing_field_is_named_in_the_wire_casing(tiny: Profile) -> None:
    payload = {k: v for k, v in GOOD.items() if k != "localTime"}
    assert issues(tiny, payload) == ["localTime: required field is missing"]


def test_nested_bad_enumeration_names_the_path_as_sent(tiny: Profile) -> None:
    payload = {
        **GOOD,
        "sfcList": [
            {"sfc": "a", "uriList": []},
            {"sfc": "b", "uriList": []},
            {"sfc": "c", "uriList": [{"passed": "x"}]},
        ],
    }
    assert issues(tiny, payload) == ['sfcList[2].uriList[0].passed: expected integer 0 or 1, got "x"']


def test_nested_error_keeps_the_senders_pascal_spelling(tiny: Profile) -> None:
    payload = {
        "EquipmentCode": "E",
        "LocalTime": "2026-11-23T06:00:00Z",
        "SfcList": [{"Sfc": "c", "UriList": [{"Passed": 3}]}],
    }
    assert issues(tiny, payload) == ["SfcList[0].UriList[0].Passed: expected integer 0 or 1, got 3"]


def test_wrong_type_is_refused(tiny: Profile) -> None:
    assert issues(tiny, {**GOOD, "equipmentCode": 7}) == ["equipmentCode: expected string, got 7"]


def test_bad_date_time_is_refused(tiny: Profile) -> None:
    (msg,) = issues(tiny, {**GOOD, "localTime": "yesterday"})
    assert msg.startswith("localTime: expected a date-time string")


def test_missing_nested_field(tiny: Profile) -> None:
    assert issues(tiny, {**GOOD, "sfcList": [{"uriList": []}]}) == ["sfcList[0].sfc: required field is missing"]


def test_alias_is_accepted_and_renamed(tiny: Profile) -> None:
    data, found = tiny.operation("Report").check_request({**GOOD, "productSfc": "P-1"})
    assert found == [] and data["ProductCode"] == "P-1"


def test_validate_request_raises_with_operation_and_path(tiny: Profile) -> None:
    with pytest.raises(PayloadInvalid, match=r"Report: equipmentCode: expected string"):
        tiny.operation("Report").validate_request({**GOOD, "equipmentCode": None})


def test_response_validation(tiny: Profile) -> None:
    op = tiny.operation("Report")
    assert op.check_response({"Code": 0, "Data": None})[1] == []
    assert [str(i) for i in op.check_response({"code": "0"})[1]] == ['code: expected integer, got "0"']
