"""One duration grammar for every option (twin run, twin energy, load shapes): what each accepted before, and
the mistakes, named with the option."""

from __future__ import annotations

import re

import pytest

from twin.durations import parse_duration
from twin.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("600", 600),
        ("2.5", 2.5),
        ("90s", 90),
        ("45s", 45),
        ("15m", 900),
        ("90m", 5400),
        ("10min", 600),
        ("24h", 86400),
        ("0.5h", 1800),
        ("2d", 172800),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2 h", 7200),
        (" 2H ", 7200),
        ("1d2h3m4s", 93784),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "2 hours", "10 parsecs", "-5", "1h-30m", "1.2.3s", "s10"])
def test_mistakes_name_the_option_and_the_value(text: str) -> None:
    expected = f"--duration {text!r}: expected e.g. 90s, 15m, 10min, 24h, 2d, 1h30m or seconds"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_duration(text, "--duration")


def test_the_default_name_is_duration() -> None:
    with pytest.raises(ConfigError, match=r"^duration 'soon': expected"):
        parse_duration("soon")
