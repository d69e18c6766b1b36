"""lora.gating: the calibrated gate (exact 0 and 1 at its ends, fitted on held-out positives and negatives, a
fallback when they overlap), its reports, and the row-wise delta scaling restricted to named adapters."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from lora.gating import (GateCalibration, auroc, cross_validated_weights, fit_gate, gate_summary,
                         lora_delta_scale)

rng = np.random.default_rng(0)
# the scales O3's detector produces: held-out forget inputs in the thousands below zero, others near −1e6
POSITIVES = -np.exp(rng.normal(8.0, 0.5, 40))
NEGATIVES = -np.exp(rng.normal(13.5, 0.2, 200))


def test_the_fitted_gate_is_exactly_zero_on_negatives_and_open_on_unseen_positives():
    gate = fit_gate(POSITIVES[:20], NEGATIVES[:100])
    assert gate.separable
    assert (gate.weights(NEGATIVES) == 0.0).all()  # also the 100 negatives it was not fitted on
    assert (gate.weights(POSITIVES[20:]) >= 0.9).all()
    assert (gate.weights(POSITIVES[20:]) == 1.0).mean() > 0.9


def test_weights_rise_monotonically_through_the_ramp_from_exact_zero_to_exact_one():
    gate = fit_gate(POSITIVES, NEGATIVES)
    z = np.linspace(gate.closed_at - 1, gate.open_at + 1, 401)
    w = gate.weights_from_normalised(z)
    assert (np.diff(w) >= 0).all()
    assert (w[z <= gate.closed_at] == 0).all() and (w[z >= gate.open_at] == 1).all()
    inside = w[(z > gate.closed_at) & (z < gate.open_at)]
    assert ((inside > 0) & (inside < 1)).all()
    assert gate.weights_from_normalised([gate.threshold])[0] == pytest.approx(0.5)
    assert gate.open_at - gate.closed_at <= 2.0 and gate.temperature == pytest.approx((gate.open_at - gate.threshold) / 4)


def test_the_ramp_sits_between_the_negatives_and_the_positives_edge_with_the_largest_margin():
    gate = fit_gate(POSITIVES, NEGATIVES, max_width=100.0)
    zp, zn = gate.normalise(POSITIVES), gate.normalise(NEGATIVES)
    edge = zp.mean() - 2.33 * max(zp.std(ddof=1), 1.0)
    assert gate.closed_at == pytest.approx(zn.max()) and gate.open_at == pytest.approx(edge)
    narrow = fit_gate(POSITIVES, NEGATIVES, max_width=0.5)
    assert narrow.threshold == pytest.approx(gate.threshold) and narrow.open_at - narrow.closed_at == pytest.approx(0.5)


def test_two_held_out_positives_still_give_a_wide_enough_edge():
    # two nearly equal held-out scores understate the spread: the edge assumes at least one z unit per sd
    gate = fit_gate([-3000.0, -3001.0], NEGATIVES, center=10.0, scale=12.0)
    assert gate.separable and (gate.weights([-3000.0 * np.e ** 2]) == 1.0).all()


def test_overlapping_scores_give_a_youden_threshold_and_say_so():
    pos, neg = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.5, 2.5, -1.0])
    gate = fit_gate(pos, neg)
    assert not gate.separable and gate.open_at - gate.closed_at == pytest.approx(0.5)
    # the best cut (TPR − FPR = 1 − 1/4) keeps every positive above it and 3 of 4 negatives below: between 0.5 and 1
    assert gate.normalise([0.5])[0] < gate.threshold < gate.normalise([1.0])[0]
    assert gate.weights([4.0])[0] == 1.0 and gate.weights([-1.0])[0] == 0.0


def test_normalised_scores_of_different_detectors_are_comparable():
    a = fit_gate(POSITIVES, NEGATIVES)
    b = fit_gate(1000.0 * POSITIVES + 7.0, 1000.0 * NEGATIVES + 7.0)  # same ranking, another scale and offset
    np.testing.assert_allclose(a.normalise(POSITIVES), b.normalise(1000.0 * POSITIVES + 7.0), atol=1e-9)
    assert b.weights(1000.0 * POSITIVES[:5] + 7.0).tolist() == pytest.approx(a.weights(POSITIVES[:5]).tolist())


def test_a_calibration_survives_its_dict():
    gate = fit_gate(POSITIVES, NEGATIVES)
    again = GateCalibration.from_dict(gate.to_dict())
    assert again == gate and (again.weights(NEGATIVES) == gate.weights(NEGATIVES)).all()


@pytest.mark.parametrize("positives, negatives, message", [
    ([1.0], [0.0], "at least 2"), ([1.0, 2.0], [], "at least 2"), ([1.0, float("nan")], [0.0], "finite")])
def test_bad_calibration_data_is_refused(positives, negatives, message):
    with pytest.raises(ValueError, match=message):
        fit_gate(positives, negatives)


def test_summary_reports_quantiles_and_the_fractions_open_and_closed():
    s = gate_summary([0.0, 0.0, 0.03, 0.5, 0.95, 1.0, float("nan")])
    assert s["n"] == 6 and s["frac_closed"] == pytest.approx(0.5) and s["frac_open"] == pytest.approx(2 / 6)
    assert s["quantiles"]["min"] == 0.0 and s["quantiles"]["max"] == 1.0 and s["mean"] == pytest.approx(2.48 / 6)
    assert gate_summary([]) == {"n": 0}


def test_auroc_is_a_ranking_that_can_be_perfect_while_the_gate_is_half_open():
    assert auroc([3.0, 4.0], [1.0, 2.0]) == 1.0 and auroc([1.0], [1.0]) == 0.5 and auroc([], [1.0]) is None
    # the failure the issue describes: AUROC 1.0 with every positive at weight ~0.5
    gate = GateCalibration(center=0.0, scale=1.0, threshold=0.0, temperature=1.0, open_at=4.0, closed_at=-4.0,
                           separable=True)
    assert auroc([0.0, 0.1], [-9.0]) == 1.0 and gate_summary(gate.weights([0.0, 0.1]))["frac_open"] == 0.0


def test_cross_validated_weights_never_weigh_an_input_with_a_gate_fitted_on_it():
    wp, wn = cross_validated_weights(POSITIVES, NEGATIVES, folds=5)
    assert wp.shape == POSITIVES.shape and np.isfinite(wp).all() and (wn == 0).all()
    assert (wp >= 0.9).mean() > 0.9
    # a fold left with fewer than 2 positives cannot be fitted: NaN, never an in-sample weight in its place
    wp, wn = cross_validated_weights(POSITIVES[:2], NEGATIVES[:4], folds=2)
    assert np.isnan(wp).all() and np.isnan(wn).all()


def _two_adapter_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["0"], init_lora_weights=False))
    peft_model.add_adapter("other", LoraConfig(r=2, target_modules=["0"], init_lora_weights=False))
    peft_model.base_model.set_adapter(["default", "other"])
    return peft_model


@torch.no_grad()
def test_delta_scale_restricted_to_one_adapter_leaves_the_other_delta_alone():
    m = _two_adapter_model()
    x = torch.randn(3, 4)
    both = m(x)
    with lora_delta_scale(m, [0.0, 0.0, 0.0], adapter_names=["other"]):
        without_other = m(x)
    m.base_model.set_adapter(["default"])
    only_default = m(x)
    m.base_model.set_adapter(["default", "other"])
    assert torch.equal(without_other, only_default) and not torch.equal(both, only_default)
    with lora_delta_scale(m, [1.0, 1.0, 1.0], adapter_names=["other"]):
        assert torch.equal(m(x), both)
    with pytest.raises(ValueError, match="no \\['nope'\\] LoRA layers"):
        with lora_delta_scale(m, [1.0], adapter_names=["nope"]):
            pass


# ---------------------------------------------------------------------------------------------------- the router

def _expert_scores(n: int, own: int, spread=(0.03, 0.1)) -> np.ndarray:
    """(n, 2) cosine-like scores of inputs of expert `own`: near 0.8 for their own expert, near 0.3 for the other,
    with expert 0's inputs tighter than expert 1's (so each needs its own units)."""
    s = np.empty((n, 2))
    s[:, own] = rng.normal(0.8, spread[own], n)
    s[:, 1 - own] = rng.normal(0.3, 0.05, n)
    return s


def test_the_router_sends_held_out_inputs_to_their_expert_alone_and_mixes_where_unsure():
    from lora.gating import Router, fit_router, routing_summary

    router = fit_router([_expert_scores(10, 0), _expert_scores(10, 1)])
    for k in (0, 1):
        w = router.weights(_expert_scores(50, k))
        assert (w[:, k] == 1.0).all() and (w[:, 1 - k] == 0.0).all()  # one-hot: exactly that expert's output
    # an input two spreads below both experts' own inputs: neither is sure, so it gets the softmax mix
    between = [[c.center - 2 * c.scale for c in router.calibrations]]
    unsure = router.weights(between)
    assert 0.0 < unsure.min() and unsure.max() < router.confidence and unsure.sum() == pytest.approx(1.0)
    summary = routing_summary(np.vstack([router.weights(_expert_scores(6, 0)), unsure]))
    assert summary["top1_counts"][0] >= 6 and summary["frac_single_expert"] == pytest.approx(6 / 7)
    again = Router.from_dict(router.to_dict())
    np.testing.assert_array_equal(again.weights(between), unsure)


def test_the_router_compares_experts_in_their_own_units():
    from lora.gating import fit_router

    # expert 0's own inputs sit within ±0.01 of 0.8, expert 1's within ±0.1: 0.75 is far out for expert 0 but
    # typical for expert 1, so an input scoring 0.75 for both goes to expert 1
    tight = np.c_[rng.normal(0.8, 0.01, 10), rng.normal(0.3, 0.05, 10)]
    wide = np.c_[rng.normal(0.3, 0.05, 10), rng.normal(0.8, 0.1, 10)]
    router = fit_router([tight, wide])
    assert router.weights([[0.75, 0.75]]).argmax() == 1
