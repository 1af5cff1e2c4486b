"""Line KPIs as the line model computes them (``Kpis.to_dict``) become cards and named tables on the page."""

from __future__ import annotations

import pytest

from twin.report.kpis import blocks, fmt
from twin.sim.runner import RunConfig, simulate


@pytest.fixture(scope="module")
def kpis() -> dict:  # type: ignore[type-arg]
    """One virtual hour of the mini line, offline: the KPIs a run puts in summary.json."""
    return simulate("mini", RunConfig(duration_s=3600, seed=2)).kpis.to_dict()


def test_scalars_are_cards_and_lists_are_tables_named_by_their_records(kpis: dict) -> None:  # type: ignore[type-arg]
    b = blocks(kpis)
    assert [k for k, _ in b.cards[:3]] == ["good cells", "cells per hour", "yield rty"]  # the headline first
    cards = dict(b.cards)
    assert cards["good cells"] == fmt(kpis["good_cells"]) and cards["bottleneck"] == kpis["bottleneck"]
    assert cards["yield rty"] == f"{kpis['yield_rty'] * 100:.2f} %"  # a fraction reads as percent
    tables = {t.title: t for t in b.tables}
    stations = tables["stations"]
    assert [r[0] for r in stations.rows] == [s["id"] for s in kpis["stations"]]  # named by id, not numbered
    assert "id" not in stations.columns and "oee" in stations.columns
    oee = stations.columns.index("oee")
    assert stations.rows[0][oee] == f"{kpis['stations'][0]['oee'] * 100:.2f} %"
    assert [r[0] for r in tables["calls"].rows] == [c["operation"] for c in kpis["calls"]]
