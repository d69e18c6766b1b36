"""The soft weight w(x) = σ(ζ(1 − |2F(x) − 1|) − 2), F the two-Gaussian CDF mixture of methods.md, and its
one-sided default (inputs more forget-like than the forget set keep full weight)."""
from __future__ import annotations

import math

import pytest

from unlearning.gate import calibration, normal_cdf, sigmoid, soft_weight

M1, M2, S = 2.0, -1.0, 0.5


def _paper(x, zeta=10.0):
    f = 0.5 * normal_cdf((x - M1) / S) + 0.5 * normal_cdf((x - M2) / S)
    return 1 / (1 + math.exp(-(zeta * (1 - abs(2 * f - 1)) - 2)))


@pytest.mark.parametrize("x", [-6.0, -2.0, -1.0, 0.0, 0.4])
def test_two_sided_gate_is_the_methods_md_formula(x):
    assert soft_weight(x, M1, M2, S, one_sided=False) == pytest.approx(_paper(x), abs=1e-12)


def test_weight_is_near_one_between_the_means_and_falls_to_the_floor_far_below():
    middle = soft_weight((M1 + M2) / 2, M1, M2, S)
    assert middle == pytest.approx(sigmoid(8.0), abs=1e-3)
    assert soft_weight(M2 - 20 * S, M1, M2, S) == pytest.approx(sigmoid(-2.0), abs=1e-9)
    xs = [M2 - k * S for k in range(0, 12)]
    ws = [soft_weight(x, M1, M2, S) for x in xs]
    assert all(a >= b for a, b in zip(ws, ws[1:])) and ws[0] > 0.5 > ws[-1]


def test_one_sided_gate_keeps_full_weight_above_the_forget_set_where_the_formula_would_drop():
    far_above = M1 + 20 * S
    assert soft_weight(far_above, M1, M2, S, one_sided=False) == pytest.approx(sigmoid(-2.0), abs=1e-9)
    assert soft_weight(far_above, M1, M2, S, one_sided=True) == pytest.approx(sigmoid(8.0), abs=1e-12)
    # below the mixture's median the two agree exactly
    assert soft_weight(M2, M1, M2, S, one_sided=True) == soft_weight(M2, M1, M2, S, one_sided=False)


def test_calibration_uses_used_mean_rest_mean_and_rest_sample_std():
    m1, m2, s = calibration([1.0, 3.0], [0.0, 2.0, 4.0])
    assert (m1, m2, s) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        calibration([1.0], [0.0])
