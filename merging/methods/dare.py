"""PEFT's `dare_linear` and `dare_ties` (Yu et al. 2024), on A and B separately like PEFT: drop each entry with
probability 1 - density and rescale the survivors by 1/density, then add (linear) or sign-elect (ties).

The masks come from torch's global generator, which `merging.merge` seeds with `config.seed` inside a forked RNG
state: the draws happen in the same order as PEFT's (module by module, all A's then all B's), so seeding torch the
same way before PEFT's add_weighted_adapter gives the same masks."""
from __future__ import annotations

import torch

from merging.inputs import check_density, same_rank
from merging.methods.linear import sqrt_weights, weighted_sum
from merging.methods.ties import disjoint_mean


def drop_and_rescale(t: torch.Tensor, density: float) -> torch.Tensor:
    if density >= 1:
        return t
    return t * torch.bernoulli(torch.full_like(t, density)) / density


def _dropped(parts, density):
    a = [drop_and_rescale(p.a, density) for p in parts]
    b = [drop_and_rescale(p.b, density) for p in parts]
    return a, b


def merge_linear(module, parts, config):
    same_rank(module, parts, "dare_linear")
    density = check_density(config.density, "dare_linear")
    w_a, w_b = sqrt_weights(parts)
    a, b = _dropped(parts, density)
    return weighted_sum(a, w_a), weighted_sum(b, w_b), {}


def merge_ties(module, parts, config):
    same_rank(module, parts, "dare_ties")
    density = check_density(config.density, "dare_ties")
    w_a, w_b = sqrt_weights(parts)
    a, b = _dropped(parts, density)
    sign = config.majority_sign_method
    return disjoint_mean(torch.stack(a), w_a, sign), disjoint_mean(torch.stack(b), w_b, sign), {}
