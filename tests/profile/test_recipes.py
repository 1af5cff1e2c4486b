"""2.7-2.9 as a host reads and reports them, shared by the model's equipment and the host of a real PLC."""

from __future__ import annotations

import pytest

from twin.profile.recipes import first_recipe, recipe_detail, recipe_report, recipe_version


@pytest.mark.parametrize("listing", [None, [], [None], [{}], {}])
def test_no_set_means_nothing_to_verify(listing: object) -> None:
    assert first_recipe(listing) is None


def test_the_first_set_is_read_in_either_casing() -> None:
    assert first_recipe([{"RecipeCode": "KJ-1", "Version": "V2"}, {"RecipeCode": "KJ-2"}]) == {
        "recipecode": "KJ-1",
        "version": "V2",
    }
    assert first_recipe({"recipeCode": "KJ-1"}) == {"recipecode": "KJ-1"}  # a bare object, not a list


def test_the_detail_and_its_parameters_lowered() -> None:
    data, params = recipe_detail({"Version": "V3", "ParamList": [{"ParamCode": "P1", "ParamUpper": "2"}]})
    assert data["version"] == "V3" and params == [{"paramcode": "P1", "paramupper": "2"}]
    assert recipe_detail(None) == ({}, [])


def test_the_version_comes_from_the_detail_then_the_listing_then_the_default() -> None:
    assert recipe_version({"version": "V3"}, {"version": "V2"}, "V1.0") == "V3"
    assert recipe_version({}, {"version": "V2"}, "V1.0") == "V2"
    assert recipe_version({}, {}, "V1.0") == "V1.0" and recipe_version({}, {}) == ""


def test_the_report_carries_what_the_equipment_holds() -> None:
    row = {"ParamCode": "P1", "ParamValue": "1.5", "ParamUpper": "2", "ParamLower": "1"}
    assert recipe_report("PRD", "KJ-1", "V3", iter([row])) == {
        "ProductCode": "PRD",
        "RecipeCode": "KJ-1",
        "Version": "V3",
        "ParamList": [row],
    }
