"""The energy-uplink profile: valid OpenAPI, the eight interfaces, table 3's codes, every contradiction in full."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from twin.energy.spec import OPERATIONS, load_energy_spec

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "energy-uplink-v1.openapi.yaml"
SPEC = load_energy_spec()


def test_the_document_passes_the_openapi_validator() -> None:
    validate(copy.deepcopy(yaml.safe_load(PROFILE.read_text(encoding="utf-8"))))


def test_the_eight_interfaces_by_section() -> None:
    sections = {op.section: op.operation_id for op in SPEC.profile}
    assert sections == {
        "8.3": "Register",
        "8.4": "DownloadBaseData",
        "8.5": "VersionCheck",
        "8.6": "UploadConfigData",
        "8.7": "UploadMeteringData",
        "8.8": "UploadEnergyData",
        "8.9": "DownloadConfigData",
        "8.10": "DownloadEnergyData",
    }
    assert set(sections.values()) == set(OPERATIONS)
    assert all(op.method == "post" for op in SPEC.profile)
    assert {op.operation_id for op in SPEC.profile if op.extensions.get("x-optional")} == {
        "DownloadConfigData",
        "DownloadEnergyData",
    }
    assert set(SPEC.url_fields) == set(OPERATIONS) - {"Register"}  # register returns every other address


def test_return_codes_are_table_3_and_say_which_are_worth_a_resend() -> None:
    assert set(SPEC.codes) == {"0", "E1001", "E1002", "E2001", "E2002"}
    assert {c for c, rc in SPEC.codes.items() if rc.retry} == {"E1001", "E1002"}
    assert SPEC.retries == 3 and SPEC.realtime_s == 900 and SPEC.version_check_s == 86400


@pytest.mark.parametrize("op_id", OPERATIONS)
def test_every_example_satisfies_its_schema(op_id: str) -> None:
    op = SPEC.op(op_id)
    assert op.request_examples, op_id
    for name, example in op.request_examples.items():
        assert op.check_request(example)[1] == [], (op_id, name)
    for examples in op.response_examples.values():
        for name, example in examples.items():
            assert op.check_response(example)[1] == [], (op_id, name)


def test_contradictions_are_recorded_in_full() -> None:
    found = SPEC.profile.contradictions
    assert len(found) >= 20
    assert len({c["id"] for c in found}) == len(found)
    for c in found:
        assert {"id", "kind", "fields", "table", "example", "choice", "why"} <= set(c), c["id"]
        assert all(str(c[k]).strip() for k in ("table", "example", "choice", "why")), c["id"]


def test_a_field_name_alias_of_the_spec_is_accepted() -> None:
    op = SPEC.op("UploadMeteringData")
    example = op.request_examples["spec"]
    data, issues = op.check_request(example)
    assert issues == [] and "manuFacturer" in data["meteringData"][1]  # manuFacter read as manuFacturer (EN-9)
