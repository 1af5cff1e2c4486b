"""Material and barcodes flow for real: conservation per kind, genealogy back to the electrode rolls."""

from __future__ import annotations

from collections import Counter

from twin.line.linefile import load_line
from twin.profile import Profile
from twin.sim.builder import Simulation
from twin.sim.material import KINDS


def assert_conserved(sim: Simulation) -> Counter[str]:
    """in (made + initial) = consumed into other units + NG + held + shipped + WIP, for every kind."""
    for model in sim.lines:
        ledger, wip = model.ledger, model.wip()
        for kind in KINDS:
            assert ledger.balance(kind) == wip[kind], (
                f"{kind}: made {ledger.created[kind]} + initial {ledger.initial[kind]} - consumed "
                f"{ledger.consumed[kind]} - NG {ledger.ng[kind]} - held {ledger.held[kind]} - shipped "
                f"{ledger.shipped[kind]} != WIP {wip[kind]}")
    return sim.lines[0].ledger.created


def test_counts_in_equal_out_plus_ng_plus_wip(mini_run: Simulation) -> None:
    made = assert_conserved(mini_run)
    ledger = mini_run.lines[0].ledger
    assert made["cell"] > 500 and ledger.shipped["cell"] > 300 and ledger.ng["cell"] > 0
    assert ledger.ng["jelly_roll"] > 0 and made["roll"] > 20 and made["slurry"] > 5 and ledger.consumed["lot"] > 0


def test_conservation_holds_on_a_warm_line_a02_with_refusals(mes: Profile) -> None:
    line, _ = load_line("line-A02", profile=mes)
    sim = Simulation(line, mes, seed=9, refusal_rate=0.002)
    sim.run(1800)
    assert_conserved(sim)
    ledger = sim.lines[0].ledger
    assert ledger.initial["cell"] > 40_000 and ledger.held["jelly_roll"] + ledger.held["cell"] > 0


def test_every_cell_out_traces_back_to_its_jelly_rolls_and_electrode_rolls(mini_run: Simulation) -> None:
    shipped = mini_run.lines[0].shipped_units
    assert len(shipped) > 300
    codes = [cell.code for cell in shipped]
    assert len(set(codes)) == len(codes)
    for cell in shipped:
        assert cell.kind == "cell" and len(cell.parents) == 2
        assert all(jr.kind == "jelly_roll" for jr in cell.parents)
        for jr in cell.parents:
            lanes = {roll.lane for roll in jr.parents if roll.kind == "roll"}
            assert lanes == {"cathode", "anode"}, "each jelly roll is wound from one roll of each electrode"
        kinds = Counter(u.kind for u in cell.ancestors())
        assert kinds["slurry"] >= 2 and kinds["lot"] >= 2  # slurry batches of both electrodes, foil lots
        coated = [u for u in cell.ancestors() if u.kind == "roll" and any(p.kind == "slurry" for p in u.parents)]
        assert {r.lane for r in coated} == {"cathode", "anode"}


def test_the_traced_codes_are_the_codes_the_mes_saw(mini_run: Simulation) -> None:
    issued_rolls = {code for c in mini_run.traffic.calls if c.op.operation_id == "GenerateSfc"
                    for code in c.answer.data["sfcList"]}
    reported_jrs = {c.values["Sfc"] for c in mini_run.traffic.calls if c.op.operation_id == "CollingPolar"}
    for cell in mini_run.lines[0].shipped_units[:50]:
        for jr in cell.parents:
            assert jr.code in reported_jrs
            assert all(roll.code in issued_rolls for roll in jr.parents)


def test_ng_units_leave_where_they_were_found(mini_run: Simulation) -> None:
    ng = mini_run.lines[0].ng_units
    assert ng
    gone = {u.code for u in ng if u.kind == "cell"}
    assert not gone & {u.code for u in mini_run.lines[0].shipped_units}
