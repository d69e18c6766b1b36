"""Gated inference: gate 0 is the task adapter bit for bit, gate 1 / "off" is the primary (concatenated) adapter,
and "auto" uses the detectors' per-input weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import PeftModel

from tests.unlearning.conftest import BASE
from lora.bases import tiny_model
from lora.evaluation import applied, generate
from lora.gating import gate_summary
from unlearning import gated_evaluate, gated_generate, gate_weights, o3_applied, unlearn_delta_scale


def _batch(tok, prompts):
    tok.padding_side = "left"
    return tok(prompts, return_tensors="pt", padding=True)


@torch.no_grad()
def _gated_logits(model, state, enc, weights):
    with o3_applied(model, state) as m:
        if weights is None:
            return m(**enc).logits
        with unlearn_delta_scale(m, weights):
            return m(**enc).logits


@torch.no_grad()
def _adapter_logits(model, adapter, enc):
    with applied(model, adapter) as m:
        return m(**enc).logits


def test_gate_zero_gives_exactly_the_task_adapters_logits(base, second, forget_sets):
    model, tok = base
    enc = _batch(tok, [p for p, _ in forget_sets[1][:4]])
    gated = _gated_logits(model, second.state, enc, [0.0] * 4)
    assert torch.equal(gated, _adapter_logits(model, second.state.task, enc))
    assert not torch.equal(gated, _adapter_logits(model, second.merged_adapter, enc))


def test_gate_one_and_off_give_the_merged_primary_adapters_logits(base, second, forget_sets):
    model, tok = base
    enc = _batch(tok, [p for p, _ in forget_sets[1][:4]])
    merged = _adapter_logits(model, second.merged_adapter, enc)
    off = _gated_logits(model, second.state, enc, None)
    torch.testing.assert_close(off, merged, atol=1e-5, rtol=0)
    assert torch.equal(_gated_logits(model, second.state, enc, [1.0] * 4), off)


def test_gate_scales_only_its_own_row(base, second, forget_sets):
    model, tok = base
    enc = _batch(tok, [p for p, _ in forget_sets[1][:2]])
    mixed = _gated_logits(model, second.state, enc, [0.0, 1.0])
    zero = _gated_logits(model, second.state, enc, [0.0, 0.0])
    one = _gated_logits(model, second.state, enc, None)
    assert torch.equal(mixed[0], zero[0])
    torch.testing.assert_close(mixed[1], one[1], atol=1e-6, rtol=0)


def test_primary_files_load_with_plain_peft_and_match_gate_off(tmp_path, second, forget_sets):
    second.merged_adapter.save(tmp_path / "v")
    model, tok = tiny_model("llama", seed=0)  # a private copy of the base: from_pretrained wraps it in place
    enc = _batch(tok, [p for p, _ in forget_sets[1][:3]])
    with torch.no_grad():
        peft_logits = PeftModel.from_pretrained(model, str(tmp_path / "v")).eval()(**enc).logits
        fresh, _ = tiny_model("llama", seed=0)
        off = _gated_logits(fresh, second.state, enc, None)
    torch.testing.assert_close(peft_logits, off, atol=1e-5, rtol=0)


def test_gated_generate_matches_task_and_merged_adapters_at_the_extremes(base, second, forget_sets, reference_prompts):
    model, tok = base
    prompts = [p for p, _ in forget_sets[0][:3]] + reference_prompts[:2]
    zero, w0 = gated_generate(model, tok, second.state, prompts, gate=0.0, max_new_tokens=6)
    assert zero == generate(model, tok, prompts, max_new_tokens=6, adapter=second.state.task) and w0 == [0.0] * 5
    off, w1 = gated_generate(model, tok, second.state, prompts, gate="off", max_new_tokens=6)
    assert off == generate(model, tok, prompts, max_new_tokens=6, adapter=second.merged_adapter) and w1 == [1.0] * 5
    auto, weights = gated_generate(model, tok, second.state, prompts, max_new_tokens=6)
    assert weights == pytest.approx(list(gate_weights(second.state, prompts)), abs=0)
    assert len(auto) == len(prompts)
    with pytest.raises(ValueError, match="gate"):
        gated_generate(model, tok, second.state, prompts, gate=1.5)


def test_gated_evaluate_scores_exact_match_with_the_gate(base, second, task):
    model, tok = base
    examples = task.test[:4]
    result = gated_evaluate(model, tok, second.state, examples, gate=0.0)
    longest = max(len(tok(e["completion"], add_special_tokens=False)["input_ids"]) for e in examples)
    predictions = generate(model, tok, [e["prompt"] for e in examples], max_new_tokens=longest + 2,
                           adapter=second.state.task)
    expected = np.mean([p.strip() == e["completion"].strip() for p, e in zip(predictions, examples)])
    correct = [int(p.strip() == e["completion"].strip()) for p, e in zip(predictions, examples)]
    assert result == {"exact_match": pytest.approx(expected), "n": 4, "gate_mean": 0.0, "correct": correct,
                      "gate_weights": [0.0] * 4, "gate": gate_summary([0.0] * 4)}
    assert result["gate"]["frac_closed"] == 1.0 and result["gate"]["frac_open"] == 0.0
    assert gated_evaluate(model, tok, second.state, examples)["gate_mean"] > 0.9  # the forgotten task: gate open


def test_gated_inference_leaves_the_base_unwrapped(base, second, forget_sets):
    model, tok = base
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gated_generate(model, tok, second.state, [forget_sets[0][0][0]], max_new_tokens=2)
    assert not hasattr(model, "peft_config")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
