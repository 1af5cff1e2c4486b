"""Durations from the line file: constants, distributions, pools; mistakes named."""

from __future__ import annotations

import random

import pytest

from twin.line.dist import cycle_dist, make_dist, pooled


@pytest.mark.parametrize(
    ("spec", "mean"),
    [
        (2.5, 2.5),
        ({"dist": "constant", "value_s": 4}, 4.0),
        ({"dist": "exponential", "mean_s": 10}, 10.0),
        ({"dist": "normal", "mean_s": 100, "sd_s": 5}, 100.0),
        ({"dist": "lognormal", "mean_s": 300, "cv": 0.5}, 300.0),
        ({"dist": "gamma", "mean_s": 2.5, "cv": 0.04}, 2.5),
        ({"dist": "uniform", "min_s": 30, "max_s": 120}, 75.0),
        ({"dist": "triangular", "min_s": 1, "mode_s": 2, "max_s": 6}, 3.0),
    ],
)
def test_samples_have_the_stated_mean(spec: object, mean: float) -> None:
    dist = make_dist(spec)  # type: ignore[arg-type]
    rng = random.Random(1)
    samples = [dist(rng) for _ in range(20_000)]
    assert dist.mean == pytest.approx(mean, rel=1e-6)
    assert sum(samples) / len(samples) == pytest.approx(mean, rel=0.03)
    assert min(samples) >= 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dist": "normal", "sd_s": 1}, "needs mean_s"),
        ({"dist": "lognormal", "median_s": 0.01, "p99_s": 0.005}, "p99_s must be greater"),
        ({"dist": "weibull", "mean_s": 1}, "unknown dist 'weibull'"),
        (-1, "must be >= 0"),
        ("fast", "expected seconds"),
    ],
)
def test_mistakes_are_named(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_dist(spec)  # type: ignore[arg-type]


def test_cycle_from_rate_or_cycle() -> None:
    assert cycle_dist(rate_ppm=24).mean == pytest.approx(2.5)
    assert cycle_dist(cycle_s=3600, cv=0.1).kind == "gamma"
    assert cycle_dist(cycle={"dist": "constant", "value_s": 7}).mean == 7
    with pytest.raises(ValueError, match="needs cycle"):
        cycle_dist()


def test_a_pool_is_reproducible_and_keeps_the_mean() -> None:
    a = pooled(make_dist({"dist": "gamma", "mean_s": 2.5, "cv": 0.05}), seed=9)
    b = pooled(make_dist({"dist": "gamma", "mean_s": 2.5, "cv": 0.05}), seed=9)
    assert a.values == b.values and len(a.values) == 4096
    assert a.mean == pytest.approx(2.5, rel=0.01)
    rng = random.Random(3)
    assert a.draw(rng) in a.values
