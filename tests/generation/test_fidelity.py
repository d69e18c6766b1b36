"""generation.fidelity: the per-member numbers a generator's page shows. Anchored at both ends (the trained adapter
itself, no update at all), then a trained generator is checked to give its one member back better than nothing."""
from __future__ import annotations

import pytest
import torch

from generation import member_fidelity
from generation.fidelity import fidelity
from lora import Adapter


def _zeroed(adapter: Adapter) -> Adapter:
    """The same LoRA with B = 0: it changes nothing (what a fresh PEFT LoRA is)."""
    tensors = {k: torch.zeros_like(v) if "lora_B" in k else v.clone() for k, v in adapter.tensors.items()}
    return Adapter(config=dict(adapter.config), tensors=tensors)


def test_the_trained_adapter_scores_zero_error_and_recovers_everything(trajectory, base, task):
    model, tok = base
    trained = trajectory.adapter
    same = fidelity(trained, trained, model, tok, task.pairs()[:8])
    assert same["weight_error"] == 0.0 and same["recovered"] == pytest.approx(1.0)
    assert same["loglik_trained"] > same["loglik_base"]  # the member learned something, so the ratio means something


def test_no_update_scores_error_one_and_recovers_nothing(trajectory, base, task):
    model, tok = base
    none = fidelity(_zeroed(trajectory.adapter), trajectory.adapter, model, tok, task.pairs()[:8])
    assert none["weight_error"] == pytest.approx(1.0) and none["recovered"] == pytest.approx(0.0, abs=1e-6)


def test_without_examples_only_the_weight_error_is_reported(trajectory):
    assert set(fidelity(trajectory.adapter, trajectory.adapter)) == {"weight_error"}


def test_a_trained_generator_gives_its_member_back_closer_than_no_update(generator, condition, trajectory, base, task):
    model, tok = base
    row = member_fidelity(generator, "word_sorting", condition, trajectory.checkpoints[-1][1], model, tok,
                          task.pairs()[:8])
    assert row["member"] == "word_sorting"
    assert row["weight_error"] < 1.0 and row["recovered"] > 0.0, row
