"""LocalTime from epoch seconds, formatted once a second, is exactly what formatting a datetime gives."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from twin.profile.model import format_epoch, format_time


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0.0, max_value=4_102_444_800.0, allow_nan=False))  # 1970..2100
def test_format_epoch_is_format_time_of_the_same_moment(epoch: float) -> None:
    assert format_epoch(epoch) == format_time(datetime.fromtimestamp(epoch, UTC))


def test_moments_within_a_second_and_across_one() -> None:
    base = 1_796_000_000.0  # 2026-11-30
    for epoch in (base + 0.0004, base + 0.9995, base + 0.99999999, base + 1.0, base + 59.999, base - 0.0005):
        assert format_epoch(epoch) == format_time(datetime.fromtimestamp(epoch, UTC))
    assert format_epoch(base + 0.25) == "2026-11-30T00:53:20.250Z"
