"""PEFT's `linear`: A = Σ s_i·√|w_i·scale_i|·A_i and B = Σ √|w_i·scale_i|·B_i (s_i the sign of w_i·scale_i).

This is not the weighted sum of ΔW (cross terms B_i A_j appear); it is PEFT's cheap approximation, kept under the
same name and with the same semantics so a merge named "linear" means the same thing here and in PEFT."""
from __future__ import annotations

import math

import torch

from merging.inputs import Part, same_rank


def sqrt_weights(parts: list[Part]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights PEFT applies to A (carrying the sign) and to B, so that w·scale = w_A · w_B."""
    w_a, w_b = [], []
    for p in parts:
        ws = p.weight * p.scaling
        root = math.sqrt(abs(ws))
        w_a.append(root if ws >= 0 else -root)
        w_b.append(root)
    return torch.tensor(w_a), torch.tensor(w_b)


def weighted_sum(tensors: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    stacked = torch.stack(tensors)
    return (stacked * weights.view(-1, 1, 1)).sum(0)


def merge_module(module, parts, config):
    same_rank(module, parts, "linear")
    w_a, w_b = sqrt_weights(parts)
    a = weighted_sum([p.a for p in parts], w_a)
    b = weighted_sum([p.b for p in parts], w_b)
    return a, b, {}
