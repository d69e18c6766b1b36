"""One request and the next: the orthogonality term, the concatenated adapter, continuation of the sequence,
the detector, determinism and the input checks of `unlearn`."""
from __future__ import annotations


import pytest
import torch

from tests.unlearning.conftest import BASE, FAST
from lora.evaluation import loglik
from unlearning import detector_weights, gate_weights, unlearn
from unlearning.relabelling import relabel


def test_orthogonality_term_is_zero_on_the_first_request_and_positive_on_the_second(first, second):
    result = first[0]
    assert result.report["orth_losses"] == [0.0] * FAST.steps and result.report["overlap"] == []
    assert len(second.report["orth_losses"]) == FAST.steps and min(second.report["orth_losses"]) > 0
    assert [row["request"] for row in second.report["overlap"]] == [0]


def test_orthogonality_term_keeps_the_new_a_matrices_further_from_the_earlier_ones(second, second_without_orth):
    with_term = second.report["overlap"][0]
    without = second_without_orth.report["overlap"][0]
    assert without["mean_sq_fro"] > with_term["mean_sq_fro"]
    assert without["mean_fro"] > with_term["mean_fro"]


def test_merged_adapter_delta_is_task_plus_unlearning_delta(first):
    result = first[0]
    merged, task, unl = result.merged_adapter, result.state.task, result.state.unlearn
    assert set(merged.modules()) == set(task.modules()) | set(unl.modules())
    for module in merged.modules():
        assert merged.rank(module) == task.rank(module) + unl.rank(module)
        torch.testing.assert_close(merged.delta_weight(module),
                                   task.delta_weight(module) + unl.delta_weight(module), atol=1e-6, rtol=1e-5)
    assert merged.base_model == BASE


def test_unlearning_makes_the_relabelled_answers_more_likely(base, first, forget_sets):
    model, tok = base
    pairs = relabel([{"prompt": p, "completion": c} for p, c in forget_sets[0]], FAST.relabel, FAST.seed)
    before = sum(loglik(model, tok, pairs, adapter=first[0].state.task))
    after = sum(loglik(model, tok, pairs, adapter=first[0].merged_adapter))
    assert after > before
    assert first[0].report["losses"][-1] < first[0].report["losses"][0]


def test_second_request_resumes_and_keeps_the_first_requests_detector_and_a_matrices(first, second):
    one, two = first[0].state, second.state
    assert second.report["resumed"] and not first[0].report["resumed"]
    assert two.n_requests == 2 and len(two.a_history) == 2 and len(two.requests) == 2
    assert two.task is one.task
    for module, a in one.a_history[0].items():
        assert torch.equal(two.a_history[0][module], a)
    assert two.detectors[0].to_files("d/") == one.detectors[0].to_files("d/")
    # the unlearning LoRA continued from the first request's weights, so it moved on from them
    assert not torch.equal(two.unlearn.a(two.unlearn.modules()[0]), one.unlearn.a(one.unlearn.modules()[0]))


def test_gate_is_the_max_over_every_requests_detector(first, second, forget_sets, reference_prompts):
    prompts = [p for p, _ in forget_sets[0][:3] + forget_sets[1][:3]] + reference_prompts[:3]
    per_detector = detector_weights(second.state, prompts)
    assert per_detector.shape == (2, len(prompts))
    assert (per_detector[0] == detector_weights(first[0].state, prompts)[0]).all()
    assert (gate_weights(second.state, prompts) == per_detector.max(axis=0)).all()
    assert ((per_detector >= 0) & (per_detector <= 1)).all()
    assert (per_detector[:, -3:] == 0).all() and (per_detector[:, :6] > 0.9).all()  # calibrated: shut / open


def test_detector_ranks_held_out_forget_prompts_above_other_inputs(first):
    detector = first[0].report["detector"]
    assert detector["n_used"] == 10 and detector["n_rest"] == 2 and detector["n_reference"] == 12
    assert detector["auroc"] >= 0.9
    assert detector["rest_weight_mean"] > detector["reference_weight_mean"]
    assert {"m1", "m2", "s"} <= set(detector) and detector["s"] > 0
    assert len(detector["mlm_losses"]) == len(detector["cel_losses"]) == FAST.detector_steps


def test_report_times_every_stage(first):
    seconds = first[0].report["seconds"]
    assert set(seconds) == {"unlearning", "detector", "scoring", "total"}
    assert seconds["total"] >= seconds["unlearning"] + seconds["detector"] > 0


def test_same_inputs_config_and_seed_give_bit_identical_files_and_leave_the_callers_rng_alone(
        base, first, task_adapter, forget_sets, reference_prompts):
    result, rng_before, rng_after = first
    assert torch.equal(rng_before, rng_after)
    model, tok = base
    again = unlearn(task_adapter, model, tok, forget_sets[0], FAST, base_name=BASE, reference_inputs=reference_prompts)
    assert again.files() == result.files()


def test_forget_set_below_the_minimum_is_refused_naming_the_minimum(base, task_adapter, forget_sets):
    model, tok = base
    with pytest.raises(ValueError, match="min_forget_examples=10"):
        unlearn(task_adapter, model, tok, forget_sets[0][:9], FAST)
    with pytest.raises(ValueError, match="min_forget_examples=20"):
        unlearn(task_adapter, model, tok, forget_sets[0], FAST.replace(min_forget_examples=20))


def test_unknown_relabel_mode_is_refused_before_any_training(base, task_adapter, forget_sets):
    model, tok = base
    calls = []
    with pytest.raises(ValueError, match="relabel"):
        unlearn(task_adapter, model, tok, forget_sets[0], FAST.replace(relabel="shuffle"),
                progress=lambda *a: calls.append(a))
    assert calls == []
