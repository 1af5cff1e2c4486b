"""Request validations per second through the profile's compiled schemas.

Reference: the ``jsonschema`` library's cached ``Draft202012Validator`` on the same normalised payloads in
the same run (what a hand-rolled validator would use). Payloads are the realistic examples of the busiest
interfaces (heartbeat, state, inbound, outbound, process parameters, tray outbound) in both casings.
"""

from __future__ import annotations

import time

import jsonschema

from twin.profile import load_profile
from twin.profile.casing import pascal

BUSY = ("Heartbeat", "State", "Inbound", "Outbound", "EquipmentProcessParam", "OutboundInContainer")
SECONDS = 1.5


def _pascal_keys(value):
    if isinstance(value, dict):
        return {pascal(k): _pascal_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal_keys(v) for v in value]
    return value


def _rate(fn, payloads) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        for p in payloads:
            fn(p)
        n += len(payloads)
    return n / (time.perf_counter() - start)


def main() -> None:
    profile = load_profile("qingke-mes-v1")
    cases = []
    for op_id in BUSY:
        op = profile.operation(op_id)
        example = op.request_examples["realistic"]
        cases += [(op, example), (op, _pascal_keys(example))]
    for op, payload in cases:
        assert op.check_request(payload)[1] == [], op

    twin_rate = _rate(lambda c: c[0].check_request(c[1]), cases)

    ref = {op.operation_id: jsonschema.Draft202012Validator(op._schema("request").json_schema) for op, _ in cases}
    normalised = [(op, op.normalise(p)) for op, p in cases]

    def reference(c):
        errors = list(ref[c[0].operation_id].iter_errors(c[1]))
        assert not errors

    ref_rate = _rate(reference, normalised)
    print(f"twin (normalise both casings + fastjsonschema): {twin_rate:10,.0f} validations/s")
    print(f"reference jsonschema (already normalised):       {ref_rate:10,.0f} validations/s")
    print(
        f"ratio twin / jsonschema: {twin_rate / ref_rate:.1f}x  ({1e6 / twin_rate:.1f} µs per request on the hot path)"
    )


if __name__ == "__main__":
    main()
