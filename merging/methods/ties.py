"""PEFT's `ties` (Yadav et al. 2023) applied, as PEFT does, to A and B separately with the √-split weights of
`linear`: trim each tensor to its top `density` fraction by magnitude, elect a sign per entry ("total": sign of the
sum; "frequency": sign of the sign count; on the unweighted trimmed tensors), and average the weighted entries that
agree with it."""
from __future__ import annotations

import torch

from merging.inputs import check_density, same_rank
from merging.methods.linear import sqrt_weights


def keep_largest(t: torch.Tensor, density: float) -> torch.Tensor:
    if density >= 1:
        return t
    flat = t.reshape(-1)
    mask = torch.zeros_like(flat)
    mask[flat.abs().topk(int(density * flat.numel())).indices] = 1
    return t * mask.view_as(t)


def disjoint_mean(stacked: torch.Tensor, weights: torch.Tensor, sign_method: str) -> torch.Tensor:
    """Mean over inputs of the weighted entries whose sign agrees with the elected one."""
    signs = stacked.sign()
    votes = stacked.sum(0) if sign_method == "total" else signs.sum(0)
    elected = torch.where(votes >= 0, 1.0, -1.0)
    agree = signs == elected
    weighted = stacked * weights.view(-1, 1, 1)
    return (weighted * agree).sum(0) / agree.sum(0).clamp(min=1)


def merge_module(module, parts, config):
    same_rank(module, parts, "ties")
    density = check_density(config.density, "ties")
    w_a, w_b = sqrt_weights(parts)
    a = disjoint_mean(torch.stack([keep_largest(p.a, density) for p in parts]), w_a, config.majority_sign_method)
    b = disjoint_mean(torch.stack([keep_largest(p.b, density) for p in parts]), w_b, config.majority_sign_method)
    return a, b, {}
