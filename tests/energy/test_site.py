"""The plant's data points from a line file, and the enterprise uploads built from them."""

from __future__ import annotations

import re

from twin.energy.site import build_site
from twin.energy.spec import load_energy_spec
from twin.line.linefile import load_line

SPEC = load_energy_spec()
LINE, _ = load_line("line-A02")
SITE = build_site(LINE, SPEC)
CODE = re.compile(r"^\d{2}-\d{2}-\d{2}-\d{2}-\d{6}-\d{2}$")


def test_one_point_per_station_and_utility_plus_the_plant_total() -> None:
    utilities = SPEC.site["plant-loads"]
    assert len(SITE.points) == 1 + len(LINE.stations) + len(utilities)
    assert SITE.total.code == "00-00-00-00-023300-11" and SITE.total.scope == 1
    assert [p.source for p in SITE.points[1 : len(LINE.stations) + 1]] == [s.id for s in LINE.stations]
    codes = [p.code for p in SITE.points]
    assert len(set(codes)) == len(codes) and all(CODE.match(c) for c in codes)
    for p in SITE.points[1:]:
        assert SITE.parents(p.code) == (SITE.total.code,)
    assert SITE.parents(SITE.total.code) == ()


def test_codes_follow_segment_to_process_and_count_units_per_process() -> None:
    coating = next(p for p in SITE.points if p.source == "coating")
    assert coating.code.startswith("01-") and coating.count == 2 and coating.power_kw == (1800.0, 900.0, 300.0)
    winding = next(p for p in SITE.points if p.source == "winding")
    assert winding.process_code == "02" and winding.unit_code == "01"
    baking = next(p for p in SITE.points if p.source == "baking")
    filling = next(p for p in SITE.points if p.source == "injection-1")
    assert baking.process_code == filling.process_code == "03" and int(filling.unit_code) == int(baking.unit_code) + 1
    dry = next(p for p in SITE.points if p.source == "dry-rooms")
    assert dry.process_code == "05" and dry.load_kw == 3000 and dry.count == 0


def test_the_enterprise_uploads_satisfy_the_profile() -> None:
    pid = "7c1e0b7a4f2d4c6e9a3b5d8f0e2a4c61"
    config = {
        "provinceId": pid,
        "enterpriseCode": SITE.enterprise_code,
        "collectItemConfig": SITE.collect_item_config(),
        "enterprise": SITE.enterprise,
        "process": SITE.process_list(),
        "processUnit": SITE.process_units(),
    }
    assert SPEC.op("UploadConfigData").check_request(config)[1] == []
    assert len(config["collectItemConfig"]) == 2 * len(SITE.points)
    assert {i["statType"] for i in config["collectItemConfig"]} == {"0", "1"}  # strings, as 8.6 writes them
    metering = {
        "provinceId": pid,
        "enterpriseCode": SITE.enterprise_code,
        "meteringData": SITE.metering_data(installed="2026-01-05"),
    }
    assert SPEC.op("UploadMeteringData").check_request(metering)[1] == []
    assert {m["dataCode"] for m in metering["meteringData"]} == {p.code for p in SITE.points}
    assert [p["processCode"] for p in config["process"]] == ["01", "02", "03", "04", "05"]
