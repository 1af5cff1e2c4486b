"""Durations as people type them on a command line or in a file: ``90``, ``90s``, ``15m``, ``10min``, ``24h``,
``2d``, ``1h30m``, ``0.5h``. One grammar for every option that takes one (``twin run``, ``twin energy``,
load shapes), so a duration that works in one place works in all.
"""

from __future__ import annotations

import re

from twin.errors import ConfigError

UNITS_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})\s*(min|[smhd])")


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in ``text``: a plain number of seconds, or number-unit parts summed (``1h30m``).

    ``option`` names what was parsed in the error (``--upload-every '2 hours': expected e.g. 90s, ...``).
    """
    raw = text.strip().lower()
    if re.fullmatch(_NUMBER, raw):
        return float(raw)
    parts = _PART.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw.replace(" ", ""):
        raise ConfigError(f"{option} {text!r}: expected e.g. 90s, 15m, 10min, 24h, 2d, 1h30m or seconds")
    return sum(float(n) * UNITS_S[u] for n, u in parts)
