"""TensorBoard's debiased EMA, checked against series computed by hand step for step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from losslens.showing.smoothing import describe, smooth, tensorboard_ema, window_for


def _by_hand(ys: list[float], w: float) -> list[float]:
    """The algorithm of FORMATS.md 1.9 written out literally, as a second opinion."""
    last, n, out = 0.0, 0, []
    for y in ys:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * w + (1 - w) * y
        n += 1
        out.append(last / (1 - w**n))
    return out


def test_three_points_by_hand() -> None:
    w = 0.6
    got = tensorboard_ema([1.0, 2.0, 3.0], w)
    first = (0.0 * w + (1 - w) * 1.0) / (1 - w)
    second_acc = (0.0 * w + (1 - w) * 1.0) * w + (1 - w) * 2.0
    third_acc = second_acc * w + (1 - w) * 3.0
    assert got.tolist() == [first, second_acc / (1 - w**2), third_acc / (1 - w**3)]
    assert got.tolist() == pytest.approx([1.0, 1.625, 2.326530612244898], abs=1e-15)


def test_nonfinite_values_pass_through_without_advancing_the_debias_count() -> None:
    w = 0.6
    got = tensorboard_ema([1.0, float("nan"), 3.0, float("inf")], w)
    acc2 = (1 - w) * 1.0 * w + (1 - w) * 3.0
    assert got[0] == 1.0 and math.isnan(got[1]) and got[3] == math.inf
    assert got[2] == acc2 / (1 - w**2)  # n == 2, not 3


def test_constant_series_returned_unchanged() -> None:
    assert tensorboard_ema([0.7, 0.7, 0.7], 0.9).tolist() == [0.7, 0.7, 0.7]


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.95, 0.999])
def test_matches_literal_algorithm_bit_for_bit(weight: float) -> None:
    rng = np.random.default_rng(3)
    ys = list(rng.lognormal(0, 1, 500))
    ys[17] = float("nan")
    got = tensorboard_ema(ys, weight).tolist()
    want = _by_hand(ys, weight)
    assert [
        g == w or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want, strict=True)
    ] == [True] * 500


def test_weight_is_clamped_and_nan_weight_means_no_smoothing() -> None:
    ys = [1.0, 5.0, 2.0]
    assert tensorboard_ema(ys, float("nan")).tolist() == ys
    assert tensorboard_ema(ys, -3).tolist() == ys
    assert tensorboard_ema(ys, 1.0).tolist() == [0.0, 0.0, 0.0]  # TB: weight 1 never moves


def test_other_methods_and_off() -> None:
    ys = np.array([1.0, 3.0, 2.0, 10.0, 2.0])
    assert smooth(ys, "ema", 0).tolist() == ys.tolist()
    assert window_for(0.6) == 4
    assert smooth(ys, "median", 0.6).tolist() == [1.0, 2.0, 2.0, 2.5, 2.5]
    assert smooth(ys, "mean", 0.6).tolist() == [1.0, 2.0, 2.0, 4.0, 4.25]
    with pytest.raises(ValueError, match="expected one of: ema, median, mean"):
        smooth(ys, "gauss", 0.6)


def test_describe_says_what_the_framework_did_first() -> None:
    text = describe("ema", 0.6, "median of 20")
    assert text == "TensorBoard EMA 0.6 on top of the logged values (median of 20)"
    assert describe("ema", 0, None) == "no smoothing"
