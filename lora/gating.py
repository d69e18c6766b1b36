"""A per-input scale on the LoRA delta: h = W x + w_i · ΔW x for batch row i (O3's gated inference).

PEFT's LoRA Linear computes base(x) + lora_B(lora_A(dropout(x))) · scaling. The delta is the output of lora_B
times a constant, so multiplying lora_B's output row-wise by w scales exactly ΔW x per input and leaves W x
alone. A forward hook on each lora_B does that without touching PEFT's code; the hooks are removed on exit.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from peft.tuners.lora import LoraLayer


def _lora_b_modules(peft_model) -> list[torch.nn.Module]:
    found = []
    for module in peft_model.modules():
        if isinstance(module, LoraLayer):
            if getattr(module, "merged", False):
                raise ValueError("gating needs unmerged LoRA layers: the delta of a merged layer cannot be scaled")
            for name in module.active_adapters:
                if name in module.lora_B:
                    found.append(module.lora_B[name])
    if not found:
        raise ValueError("model has no active LoRA layers to gate")
    return found


@contextmanager
def lora_delta_scale(peft_model, weights: torch.Tensor):
    """Inside the block every forward pass of `peft_model` scales row i's LoRA delta by weights[i].

    weights: shape (batch,), matching the batch of every forward call made inside the block (generation keeps the
    batch size, so it works for generate() too). w = 0 gives the base model's output, w = 1 the adapter's."""
    weights = torch.as_tensor(weights, dtype=torch.float32).flatten()

    def hook(module, inputs, output):
        if output.shape[0] != weights.shape[0]:
            raise ValueError(f"gate has {weights.shape[0]} weights but the batch has {output.shape[0]} rows")
        w = weights.to(device=output.device, dtype=output.dtype)
        return output * w.view(-1, *([1] * (output.dim() - 1)))

    handles = [m.register_forward_hook(hook) for m in _lora_b_modules(peft_model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
