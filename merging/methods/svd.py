"""PEFT's `svd`: ΔW = Σ w_i ΔW_i, truncated to the top `rank` singular directions (B = U·S, A = Vᵀ)."""
from __future__ import annotations

import torch

from merging.errors import MergeError


def weighted_delta(parts) -> torch.Tensor:
    return sum(p.weight * p.scaling * (p.b @ p.a) for p in parts)


def truncate(module: str, delta: torch.Tensor, rank: int):
    if rank > min(delta.shape):
        raise MergeError(f"{module}: rank {rank} exceeds the module's size {tuple(delta.shape)}")
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return vh[:rank].contiguous(), (u[:, :rank] * s[:rank]).contiguous()


def merge_module(module, parts, config):
    a, b = truncate(module, weighted_delta(parts), config.rank)
    return a, b, {}
