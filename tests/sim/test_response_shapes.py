"""Both documented response shapes of a contradicted interface are understood (profile x-contradictions).

2.7, 2.15, 2.20 and 2.23 each answer in the table's shape or in the example's (``response-shape`` in the
profile's contradictions). A host must behave the same whichever its MES sends: same seed, same line.
"""

from __future__ import annotations

from typing import Any

from twin.line.linefile import load_line
from twin.profile import load_profile
from twin.profile.calls import Answer, Call
from twin.sim.builder import Simulation
from twin.sim.kpi import compute


def example_shape(op: str, data: Any) -> Any:
    """The other documented shape of ``data`` (the spec examples' shape where the twin's MES sends the table's)."""
    if op in ("GetRecipeList", "FormulaDetailGet") and isinstance(data, list) and len(data) == 1:
        return data[0]  # a lone object instead of a one-element list (2.7-1, 2.15-1)
    if op == "OutputEqu" and isinstance(data, dict):
        return data.get("sfc") or data.get("Sfc")  # a bare string (2.20-1)
    if op == "GenerateSfc" and isinstance(data, dict):
        return data.get("sfcList") or data.get("SfcList")  # a bare list (2.23-1)
    return data


def run(reshape: bool) -> tuple[Simulation, dict[str, int]]:
    profile = load_profile("qingke-mes-v1")
    line, _ = load_line("mini", profile=profile)
    sim = Simulation(line, profile, seed=3)
    seen: dict[str, int] = {}
    model_answer = sim.mes.answer

    def answer(call: Call) -> Answer:
        got = model_answer(call)
        op = call.op.operation_id
        other = example_shape(op, got.data)
        if reshape and other is not got.data:
            seen[op] = seen.get(op, 0) + 1
            return Answer(got.status, got.code, got.msg, other)
        return got

    sim.mes.answer = answer  # type: ignore[method-assign]
    sim.run(4 * 3600)
    return sim, seen


def test_hosts_read_either_shape_and_behave_the_same() -> None:
    table, _ = run(reshape=False)
    example, reshaped = run(reshape=True)
    assert {"GetRecipeList", "OutputEqu", "GenerateSfc", "FormulaDetailGet"} <= set(reshaped), reshaped
    a, b = compute(table).to_dict(), compute(example).to_dict()
    assert a == b and a["good_cells"] > 0 and a["refusals"] == 0
    codes = [u.code for m in example.lines for u in m.shipped_units]
    assert codes == [u.code for m in table.lines for u in m.shipped_units]
