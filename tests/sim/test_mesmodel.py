"""The offline MES model: answers in the shapes the profile gives, unique barcodes, refusals on purpose."""

from __future__ import annotations

from twin.line.dist import make_dist, pooled
from twin.profile import Profile
from twin.sim.builder import Simulation


def test_answers_are_valid_responses(mini_run: Simulation) -> None:
    seen = set()
    for call in mini_run.traffic.calls:
        op_id = call.op.operation_id
        if op_id in seen or call.answer is None:
            continue
        seen.add(op_id)
        payload = {"code": call.answer.code, "msg": call.answer.msg}
        if call.answer.data is not None:
            payload["data"] = call.answer.data
        _, issues = call.op.check_response(payload)
        assert not issues, f"{op_id}: {issues[0]}"
    assert {"OperatorLogin", "GenerateSfc", "GenerateCellSfc", "OutputEqu", "SortingRule", "GetSfcInfo"} <= seen


def test_barcodes_handed_out_are_unique(mini_run: Simulation) -> None:
    rolls, cells, batches = [], [], []
    for call in mini_run.traffic.calls:
        data = call.answer.data if call.answer else None
        if call.op.operation_id == "GenerateSfc":
            assert len(data["sfcList"]) == call.values["Qty"]
            rolls += data["sfcList"]
        elif call.op.operation_id == "GenerateCellSfc":
            cells.append(data)
        elif call.op.operation_id == "OutputEqu":
            batches.append(data["sfc"])
    for codes in (rolls, cells, batches):
        assert codes and len(codes) == len(set(codes))
    assert all(c.startswith("SLC-") or c.startswith("SLA-") for c in batches)


def test_ccd_barcode_is_the_last_roll_of_the_equipment(mini_run: Simulation) -> None:
    last: dict[str, str] = {}
    checked = 0
    for call in mini_run.traffic.calls:
        if call.op.operation_id == "GenerateSfc":
            last[call.equipment_code] = call.answer.data["sfcList"][-1]
        elif call.op.operation_id == "CcdGetBarcode":
            assert call.answer.data["sfc"] == last[call.equipment_code]
            checked += 1
    assert checked


def test_refusals_at_a_rate(mini_run: Simulation, mes: Profile) -> None:
    sim = Simulation(mini_run.line, mes, seed=3, keep_calls=True, refusal_rate=0.05)
    sim.run(1800)
    refused = [c for c in sim.traffic.calls if not c.ok]
    assert sim.mes.refused == len(refused) > 0
    assert not {c.op.operation_id for c in refused} & {"OperatorLogin", "Heartbeat"}
    assert all("fault injection" in c.answer.msg for c in refused)


def test_latency_model_percentiles() -> None:
    latency = pooled(make_dist({"dist": "lognormal", "median_s": 0.004, "p99_s": 0.03}), seed=1)
    values = sorted(latency.values)
    assert 0.0035 < values[len(values) // 2] < 0.0045
    assert 0.022 < values[int(len(values) * 0.99)] < 0.04
