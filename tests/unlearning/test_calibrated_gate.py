"""The calibrated gate (the default): a held-out input of the forgotten task opens it, a retained input gets
exactly 0 (so exactly the adapter it had before the request, to the bit), and the request's report shows the
calibration and the gate's distribution next to AUROC."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lora.evaluation import applied
from lora.tasks import make_task
from tests.unlearning.conftest import BASE, FAST
from unlearning import O3State, gate_weights, o3_applied, unlearn, unlearn_delta_scale

# inputs no calibration saw: other tasks with a seed of their own, and sentences outside unlearning/reference.py
RETAINED = ([e["prompt"] for e in make_task("object_counting", n=4, test=1, seed=3).train]
            + [e["prompt"] for e in make_task("word_sorting", n=4, test=1, seed=3).train]
            + ["Which river flows through Vienna?", "Write a short story about a lighthouse keeper."])


def _batch(tok, prompts):
    tok.padding_side = "left"
    return tok(prompts, return_tensors="pt", padding=True)


def test_held_out_inputs_of_the_forgotten_task_open_the_gate(first, task):
    # the forget set is boolean_expressions' train[:12]; its test split was never seen by the detector or the gate
    held_out = [e["prompt"] for e in task.test]
    weights = gate_weights(first[0].state, held_out)
    assert (weights >= 0.9).all(), weights


def test_retained_inputs_get_exactly_zero_and_the_pre_unlearning_adapters_logits(base, second):
    model, tok = base
    weights = gate_weights(second.state, RETAINED)
    assert (weights == 0.0).all(), weights
    enc = _batch(tok, RETAINED)
    with torch.no_grad():
        with o3_applied(model, second.state) as m, unlearn_delta_scale(m, weights):
            gated = m(**enc).logits
        with applied(model, second.state.task) as m:
            before = m(**enc).logits
        with o3_applied(model, second.state) as m:
            ungated = m(**enc).logits
    assert torch.equal(gated, before)
    assert not torch.equal(ungated, before)  # the unlearning delta is not zero: the gate is what keeps it out


def test_the_paper_gate_stays_an_ablation_with_its_floor(first, task):
    state = first[0].state
    paper = gate_weights(state, RETAINED, gate="paper")
    assert (paper > 0.1).all()  # σ(−2) ≈ 0.12: what the calibrated gate removes
    assert (gate_weights(state, RETAINED, gate="calibrated") == 0.0).all()
    assert (gate_weights(state, RETAINED) == gate_weights(state, RETAINED, gate="calibrated")).all()


def test_report_shows_the_calibration_the_distributions_and_auroc(first):
    gate = first[0].report["detector"]["gate"]
    calibration = gate["calibration"]
    assert gate["gate"] == "calibrated" and calibration["separable"]
    assert calibration["closed_at"] < calibration["threshold"] < calibration["open_at"]
    assert calibration["temperature"] > 0 and calibration["n_positive"] == 2
    # negatives: the caller's 12 reference prompts, the generic ones, the built-in tasks bar the forgotten one
    assert gate["sources"]["caller"] == 12 and gate["sources"]["generic"] > 0
    assert gate["sources"]["builtin_left_out"] == ["boolean_expressions"]
    assert "boolean_expressions" not in gate["sources"]["builtin_tasks"]
    assert calibration["n_negative"] == 12 + gate["sources"]["generic"] + 24 * len(gate["sources"]["builtin_tasks"])
    held_out, reference = gate["held_out_forget"]["in_sample"], gate["reference"]["in_sample"]
    assert set(held_out["quantiles"]) == {"min", "q05", "q25", "median", "q75", "q95", "max"}
    assert held_out["frac_open"] == 1.0 and reference["frac_closed"] == 1.0 and reference["quantiles"]["max"] == 0
    assert gate["reference_by_source"]["caller"]["n"] == 12
    assert gate["auroc"] == first[0].report["detector"]["auroc"] == 1.0
    assert gate["paper_gate"]["reference"]["quantiles"]["min"] > 0.1
    json.dumps(first[0].report)  # the report goes into a version's metrics


def test_calibration_survives_the_files_and_old_states_read_as_the_paper_gate(first):
    files = first[0].state.to_files()
    again = O3State.from_files(files)
    assert again.detectors[0].calibration == first[0].state.detectors[0].calibration
    assert again.detectors[0].gate == "calibrated"
    old = dict(files)
    meta = json.loads(old["o3/detectors/000/detector.json"])
    del meta["gate"], meta["calibration"]
    old["o3/detectors/000/detector.json"] = json.dumps(meta).encode()
    legacy = O3State.from_files(old)
    assert legacy.detectors[0].gate == "paper" and legacy.detectors[0].calibration is None
    assert (gate_weights(legacy, RETAINED) == gate_weights(first[0].state, RETAINED, gate="paper")).all()
    with pytest.raises(ValueError, match="no calibrated gate"):
        gate_weights(legacy, RETAINED, gate="calibrated")


def test_a_paper_gate_request_keeps_the_floor_and_still_reports_the_calibration(base, task_adapter, forget_sets):
    model, tok = base
    config = FAST.replace(gate="paper", builtin_reference=False)
    result = unlearn(task_adapter, model, tok, forget_sets[0], config, base_name=BASE,
                     reference_inputs=RETAINED[:4])
    assert result.state.detectors[0].gate == "paper"
    assert (gate_weights(result.state, RETAINED) > 0.1).all()
    gate = result.report["detector"]["gate"]
    assert gate["gate"] == "paper" and gate["sources"]["generic"] == 0 and gate["sources"]["builtin_tasks"] == []
    assert gate["calibration"]["n_negative"] == 4


def test_calibrated_gate_without_any_reference_is_refused(base, task_adapter, forget_sets):
    model, tok = base
    with pytest.raises(ValueError, match="reference"):
        unlearn(task_adapter, model, tok, forget_sets[0], FAST.replace(builtin_reference=False),
                base_name=BASE)
