"""Cancelling from the progress callback stops the request in either stage and leaves the base and the encoder as
they were (no LoRA layers, original weights)."""
from __future__ import annotations

import pytest
import torch
from peft.tuners.lora import LoraLayer

from tests.unlearning.conftest import BASE, FAST
from lora.progress import Cancelled
from unlearning import unlearn
from lora.encoder import load_encoder


def _cancel_at(stage: str, step: int):
    seen = []

    def progress(name, done, total, metrics=None):
        seen.append((name, done, dict(metrics or {})))
        if name == stage and done == step:
            raise Cancelled()

    return progress, seen


def _unwrapped(model) -> bool:
    return not hasattr(model, "peft_config") and not any(isinstance(m, LoraLayer) for m in model.modules())


@pytest.mark.parametrize("stage", ["unlearning", "detector"])
def test_cancel_propagates_and_leaves_base_and_encoder_untouched(base, task_adapter, forget_sets, stage):
    model, tok = base
    encoder, _ = load_encoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    progress, seen = _cancel_at(stage, 1)
    with pytest.raises(Cancelled):
        unlearn(task_adapter, model, tok, forget_sets[0], FAST, progress=progress, base_name=BASE)
    assert seen[-1][:2] == (stage, 1)
    assert _unwrapped(model) and _unwrapped(encoder)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training


def test_progress_reports_both_loss_terms_then_the_detector_losses(base, task_adapter, forget_sets):
    model, tok = base
    progress, seen = _cancel_at("detector", 1)
    with pytest.raises(Cancelled):
        unlearn(task_adapter, model, tok, forget_sets[0], FAST, progress=progress)
    training = [s for s in seen if s[0] == "unlearning"]
    assert [s[1] for s in training] == list(range(1, FAST.steps + 1))
    assert all({"loss", "orth_loss", "lr"} <= set(m) for _, _, m in training)
    assert {"loss", "mlm_loss", "cel_loss"} <= set(seen[-1][2])
