"""The CT check profile: valid OpenAPI, the spec's three calls and tables, every contradiction in full."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from twin.ct.spec import RESULT_OP, START_OP, STATUS_OP, load_ct_spec

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "ct-check-v1.openapi.yaml"
SPEC = load_ct_spec()


def test_the_document_passes_the_openapi_validator() -> None:
    validate(copy.deepcopy(yaml.safe_load(PROFILE.read_text(encoding="utf-8"))))


def test_three_calls_with_the_printed_paths_and_the_token_header() -> None:
    ops = {op.operation_id: op for op in SPEC.profile}
    assert set(ops) == {STATUS_OP, START_OP, RESULT_OP}
    assert (ops[STATUS_OP].method, ops[STATUS_OP].path) == ("get", "/device/getInerterBMSMeterStatus")
    assert (ops[START_OP].method, ops[START_OP].path) == ("post", "/device/startCheck")
    assert (ops[RESULT_OP].method, ops[RESULT_OP].path) == ("get", "/device/getCheckResult")
    assert all(op.needs_auth for op in ops.values())
    scheme = SPEC.profile.document["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Token")


def test_preconditions_are_the_spec_tables() -> None:
    allowed = {p.field: set(p.allowed) for p in SPEC.preconditions}
    assert allowed == {"deviceStatus": {2, 5}, "faultArmFlag2": {0}, "meterStatus": {1}, "checking": {0}}


def test_bit_decoding_is_the_spec_steps() -> None:
    assert SPEC.progress_state(1, 0) == "checking"
    assert SPEC.progress_state(0, 0) == "failed"
    assert SPEC.progress_state(0, 1) == "complete"
    assert SPEC.progress_state(1, 1) == "undefined"
    assert SPEC.results == {0: "normal", 1: "wiring-error"}
    assert SPEC.poll_s == 10


@pytest.mark.parametrize("op_id", [STATUS_OP, START_OP, RESULT_OP])
def test_every_example_satisfies_its_schema(op_id: str) -> None:
    op = SPEC.op(op_id)
    for example in op.request_examples.values():
        assert op.check_request(example)[1] == []
    for examples in op.response_examples.values():
        for name, example in examples.items():
            assert op.check_response(example)[1] == [], name


def test_contradictions_are_recorded_in_full() -> None:
    found = SPEC.profile.contradictions
    assert len(found) >= 15
    ids = [c["id"] for c in found]
    assert len(ids) == len(set(ids))
    for c in found:
        assert {"id", "kind", "fields", "table", "example", "choice", "why"} <= set(c), c["id"]
        assert all(str(c[k]).strip() for k in ("table", "example", "choice", "why")), c["id"]
    kinds = {c["kind"] for c in found}
    assert {"path", "field-name", "enum", "missing-in-example", "success-code"} <= kinds


def test_error_codes_are_named_in_the_profile() -> None:
    failures = {k: v for k, v in SPEC.error_codes.items() if k != "success"}
    assert set(failures) == {"token", "missing", "malformed", "not-found", "internal"}
    assert len(set(failures.values())) == len(failures) and 0 not in failures.values()
    assert SPEC.error_codes["success"] == 0
