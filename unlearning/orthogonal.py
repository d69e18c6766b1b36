"""The orthogonal unlearning LoRA (methods.md O3 step 1) and the one-adapter form of its result.

- L_orth = mean over adapted modules of Σ_{k<t} ‖A_k·A_tᵀ‖_F², where A_k are the unlearning LoRA's A matrices saved at
  the end of request k: keeping each request's input subspace orthogonal to the earlier ones stops a new request
  from overwriting what an earlier one unlearned (the paper's "parameter disentanglement").
- The unlearning LoRA learns on top of the task adapter (it must override what the task adapter answers), but
  lora.training.train_lora wraps a bare base with one LoRA. `task_merged` therefore adds ΔW_task into the adapted
  base weights for the duration of the training and puts the saved originals back afterwards, bit for bit.
- `concatenate` gives the plain PEFT adapter whose ΔW is ΔW_task + ΔW_unlearn: ranks stacked, scalings folded in.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import torch
from peft.tuners.lora import LoraLayer

from lora import Adapter
from lora.adapter import PREFIX
from lora.bases import module_shapes
from lora.wrapping import exclusive


def live_a_matrices(peft_model, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """Module path (as in Adapter.modules()) -> the trainable lora_A weight of that module (r, in), live."""
    found = {}
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
            found[name[len(PREFIX):] if name.startswith(PREFIX) else name] = module.lora_A[adapter_name].weight
    return found


def a_matrices(adapter: Adapter) -> dict[str, torch.Tensor]:
    """The A matrices of an adapter (float32 copies): what a request saves for the later requests' L_orth."""
    return {m: adapter.a(m).detach().float().clone() for m in adapter.modules()}


def orthogonality_loss(current: dict[str, torch.Tensor], earlier: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """mean over modules of Σ_k ‖A_k A_tᵀ‖_F² (differentiable in `current`); exactly 0 when there is no earlier
    request, returned as a leaf so train_lora can call backward() on it uniformly."""
    if not earlier:
        return torch.zeros((), requires_grad=True)
    terms = []
    for module, a_t in current.items():
        a_t = a_t.float()
        total = a_t.new_zeros(())
        for saved in earlier:
            if module in saved:
                total = total + (saved[module].to(a_t.device) @ a_t.T).pow(2).sum()
        terms.append(total)
    return torch.stack(terms).mean()


def overlap_norms(current: dict[str, torch.Tensor], earlier: list[dict[str, torch.Tensor]]) -> list[dict]:
    """For the report: ‖A_k A_tᵀ‖_F against every earlier request k (mean and max over modules, and the squared
    mean that L_orth uses). Compare with a λ = 0 run to see what the term buys."""
    rows = []
    for k, saved in enumerate(earlier):
        norms = {m: float(torch.linalg.matrix_norm(saved[m].float() @ a.float().T)) for m, a in current.items()
                 if m in saved}
        values = list(norms.values())
        rows.append({
            "request": k,
            "mean_fro": sum(values) / len(values),
            "max_fro": max(values),
            "mean_sq_fro": sum(v * v for v in values) / len(values),
        })
    return rows


@contextmanager
def task_merged(model, task: Adapter):
    """Inside the block the base computes W + ΔW_task on the task adapter's modules; on exit (also on an exception,
    e.g. Cancelled) the original weights are restored exactly from copies. Holds the base's lock throughout, so
    no other thread sees the modified weights."""
    problems = task.mismatches(module_shapes(model))
    if problems:
        raise ValueError(f"the task adapter does not fit this base: {problems[:3]}")
    with exclusive(model):
        saved: dict[str, torch.Tensor] = {}
        try:
            with torch.no_grad():
                for module in task.modules():
                    weight = model.get_submodule(module).weight
                    saved[module] = weight.detach().clone()
                    weight.add_(task.delta_weight(module).to(device=weight.device, dtype=weight.dtype))
            yield model
        finally:
            with torch.no_grad():
                for module, original in saved.items():
                    model.get_submodule(module).weight.copy_(original)


def concatenate(task: Adapter, unlearn: Adapter, base_name: str | None = None) -> Adapter:
    """One LoRA with ΔW = ΔW_task + ΔW_unlearn on every module: A = [A_task; A_unlearn] (ranks stacked),
    B = [s_task·B_task, s_unlearn·B_unlearn] (scalings folded in), alpha = rank so PEFT's scaling is 1.

    Exact up to float rounding (no truncation, unlike an SVD merge), and PeftModel.from_pretrained loads it like any
    adapter: whoever ignores the O3 files still gets the forgetting at full weight."""
    modules = {}
    for module in sorted(set(task.modules()) | set(unlearn.modules())):
        a_parts, b_parts = [], []
        for adapter in (task, unlearn):
            if module in adapter.modules():
                a_parts.append(adapter.a(module).float())
                b_parts.append(adapter.scaling(module) * adapter.b(module).float())
        modules[module] = (torch.cat(a_parts, dim=0), torch.cat(b_parts, dim=1))
    ranks = [a.shape[0] for a, _ in modules.values()]
    r = max(set(ranks), key=ranks.count)
    alpha_pattern = {f"^{re.escape(m)}": a.shape[0] for m, (a, _) in modules.items() if a.shape[0] != r}
    return Adapter.from_modules(base_name or task.base_model, modules, r=r, lora_alpha=r,
                                alpha_pattern=alpha_pattern)
