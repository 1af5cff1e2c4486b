import pytest

from twin.profile.casing import camel, convert, lower_keys, pascal


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EquipmentCode", "equipmentCode"),
        ("OperatorUserID", "operatorUserID"),  # as the spec's example of 2.1 spells it
        ("SFC", "sfc"),
        ("IDCard", "idCard"),
        ("IsOnline", "isOnline"),
        ("code", "code"),
        ("", ""),
    ],
)
def test_camel_follows_system_text_json(name: str, expected: str) -> None:
    assert camel(name) == expected


def test_pascal_uppercases_the_first_letter_only() -> None:
    assert pascal("operatorUserID") == "OperatorUserID"
    assert pascal("sfcList") == "SfcList"


def test_unknown_casing_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="snake"):
        convert("Sfc", "snake")  # type: ignore[arg-type]


def test_lower_keys_reads_either_casing_alike() -> None:
    pascal_body = {"SfcList": ["A"], "Code": 0, 7: "x"}
    camel_body = {"sfcList": ["A"], "code": 0, 7: "x"}
    assert lower_keys(pascal_body) == lower_keys(camel_body) == {"sfclist": ["A"], "code": 0, "7": "x"}
    assert pascal_body == {"SfcList": ["A"], "Code": 0, 7: "x"}  # the original is left as it was
