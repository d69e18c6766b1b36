"""PEFT's `cat`: stack every input's rank-1 units, weight and scaling folded into A. Exact: ΔW = Σ w_i ΔW_i, at
the price of rank Σ r_i."""
from __future__ import annotations

import torch


def merge_module(module, parts, config):
    a = torch.cat([p.a * (p.weight * p.scaling) for p in parts], dim=0)
    b = torch.cat([p.b for p in parts], dim=1)
    return a, b, {}
