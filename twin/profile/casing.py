"""Field-name casing as an ASP.NET service sees it.

The spec's tables print PascalCase names and its examples camelCase ones (Swagger UI output). The twin
sends one casing and accepts both. The camelCase rule is System.Text.Json's ``JsonNamingPolicy.CamelCase``
(lower the leading run of capitals, keeping the last one of a run that starts a word: ``IDCard`` ->
``idCard``, ``SFC`` -> ``sfc``), hand-written here because no maintained Python library reproduces that
exact rule and the MES compares names with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Casing = Literal["camelCase", "PascalCase"]
CASINGS: tuple[Casing, ...] = ("camelCase", "PascalCase")


def camel(name: str) -> str:
    """``OperatorUserID`` -> ``operatorUserID``, ``SFC`` -> ``sfc``, ``IDCard`` -> ``idCard``."""
    if not name or not name[0].isupper():
        return name
    chars = list(name)
    for i, ch in enumerate(chars):
        if i == 1 and not ch.isupper():
            break
        has_next = i + 1 < len(chars)
        if i > 0 and has_next and not chars[i + 1].isupper():
            if chars[i + 1] == " ":
                chars[i] = ch.lower()
            break
        chars[i] = ch.lower()
    return "".join(chars)


def pascal(name: str) -> str:
    """``operatorUserID`` -> ``OperatorUserID``."""
    return name[:1].upper() + name[1:]


def convert(name: str, casing: Casing) -> str:
    """The name as sent on the wire in the given casing."""
    if casing == "camelCase":
        return camel(name)
    if casing == "PascalCase":
        return pascal(name)
    raise ValueError(f"casing must be one of {', '.join(CASINGS)}, got {casing!r}")


def lower_keys(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """The mapping with its names in lower case, to read a body or schema that may come in either casing
    (``{"SfcList": ...}`` and ``{"sfcList": ...}`` both read as ``"sfclist"``)."""
    return {str(k).lower(): v for k, v in mapping.items()}
