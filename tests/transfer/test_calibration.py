"""The statistics behind the calibrated filter and the chance warning, on plain numbers."""
from __future__ import annotations

import pytest

from transfer.calibration import auroc, calibration_table, chance_warning, heldout_quality, quantile, wilson_interval


def test_quantile_interpolates_between_order_statistics_like_numpy():
    values = [0.9, 0.1, 0.5, 0.3]  # sorted: 0.1 0.3 0.5 0.9
    assert quantile(values, 0) == 0.1 and quantile(values, 1) == 0.9
    assert quantile(values, 0.5) == pytest.approx(0.4)
    assert quantile(values, 0.1) == pytest.approx(0.1 + 0.3 * 0.2)
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_wilson_interval_is_wide_for_few_examples_and_narrow_for_many():
    low, high = wilson_interval(8, 10)
    assert low < 0.5 < 0.8 < high  # 8 of 10 does not rule out a coin
    low, high = wilson_interval(80, 100)
    assert 0.7 < low < 0.8 < high < 0.88
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_auroc_counts_order_not_the_half_way_mark():
    assert auroc([0.2, 0.3], [0.1, 0.15]) == 1.0  # all below 0.5, perfectly ordered
    assert auroc([0.1], [0.2]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None


def test_heldout_quality_balances_the_classes():
    # a discriminator that says "real" to everything: 10 real right, 30 synthetic wrong
    quality = heldout_quality([0.9] * 10, [0.9] * 30)
    assert quality["heldout_accuracy"] == 0.25
    assert quality["heldout_balanced_accuracy"] == 0.5
    assert quality["heldout_real_accuracy"] == 1.0 and quality["heldout_synthetic_accuracy"] == 0.0


def test_chance_warning_for_a_coin_and_not_for_a_clear_discriminator():
    coin = heldout_quality([0.6, 0.4] * 10, [0.6, 0.4] * 10)
    warning = chance_warning(coin, 40)
    assert warning.startswith("discriminator at chance on held-out data: balanced accuracy 0.50")
    assert "40 held-out examples" in warning
    clear = heldout_quality([0.9] * 20, [0.1] * 20)
    assert chance_warning(clear, 40) is None
    assert "not measured" in chance_warning(heldout_quality([], []), 0)


def test_calibration_table_says_how_much_synthetic_each_quantile_lets_through():
    real = [0.2, 0.4, 0.6, 0.8, 1.0]
    synthetic = [0.1, 0.3, 0.5, 0.7]
    rows = {row["quantile"]: row for row in calibration_table(real, synthetic, quantiles=(0.0, 0.5))}
    assert rows[0.0]["threshold"] == 0.2 and rows[0.0]["heldout_synthetic_accepted"] == 0.75
    assert rows[0.5]["threshold"] == 0.6 and rows[0.5]["heldout_synthetic_accepted"] == 0.25
    assert calibration_table([], synthetic) == []
