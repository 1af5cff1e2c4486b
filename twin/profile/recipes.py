"""Startup parameters as a host reads and reports them (2.7 GetRecipeList -> 2.8 GetRecipeDetail -> 2.9 Recipe).

The model's equipment (``twin.sim.equipment``, inside SimPy) and the host of a real PLC (``twin.hil``, over
asyncio) send the same three calls in their own way; what they read from the answers and what they send back
is written once here. Answers are read in either casing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from twin.profile.casing import lower_keys


def first_recipe(listing: Any) -> dict[str, Any] | None:
    """The first set of a 2.7 answer, names lowered (``recipecode``, ``version``); None when the MES has none
    for this process (nothing to verify: production is not gated)."""
    rows = listing if isinstance(listing, list) else [listing]
    if not any(rows):
        return None
    return lower_keys(rows[0]) if isinstance(rows[0], Mapping) else {}


def recipe_detail(detail: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A 2.8 answer: its fields and its parameter rows (``paramcode``, ``paramupper``, ...), names lowered."""
    data = lower_keys(detail) if isinstance(detail, Mapping) else {}
    return data, [lower_keys(p) for p in data.get("paramlist") or ()]


def recipe_version(detail: Mapping[str, Any], listed: Mapping[str, Any], default: str = "") -> str:
    """The set's version: 2.8's, else 2.7's, else ``default``."""
    return str(detail.get("version") or listed.get("version") or default)


def recipe_report(product: str, recipe: str, version: str, params: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """The 2.9 request's values: the set the equipment holds, one row per parameter (``ParamCode``, ...)."""
    return {"ProductCode": product, "RecipeCode": recipe, "Version": version, "ParamList": list(params)}
