"""LoRA-LEGO (arXiv 2409.16167): merge by clustering rank-1 units.

A LoRA is a sum of rank-1 units ΔW = Σ_i b_i a_iᵀ (a_i row i of A, b_i column i of B with weight and alpha/r
folded into b_i), so units from several adapters can be pooled freely. Per module we cluster the pool on the
direction [a/|a|; b/|b|], average the raw units of each cluster, then
- parameter reweighting: averaging shrinks norms, so each centroid is rescaled to its members' mean norm
  (a and b separately by default, see MergeConfig.parameter_norm);
- output reweighting: k units instead of r change the variance of ΔW, so B is multiplied by √(r/k), with r the
  largest input rank (the default k, where the factor is 1).
The pool is put in a canonical order (per input, units by descending |a|·|b|) before clustering, so permuting an
input's ranks cannot change the result for a given seed."""
from __future__ import annotations

import math

import torch

from merging.errors import MergeError
from merging.kmeans import kmeans

def units(parts) -> tuple[torch.Tensor, torch.Tensor]:
    """All rank-1 units of a module as rows: A (n, in), B (n, out), weight and scaling folded into B."""
    a_rows, b_rows = [], []
    for p in parts:
        a, b = p.a, (p.b * (p.weight * p.scaling)).T
        order = torch.argsort(a.norm(dim=1) * b.norm(dim=1), descending=True, stable=True)
        a_rows.append(a[order])
        b_rows.append(b[order])
    return torch.cat(a_rows), torch.cat(b_rows)


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=1, keepdim=True).clamp(min=1e-12)


def merge_module(module, parts, config):
    k = config.rank
    a, b = units(parts)
    if a.shape[0] < k:
        raise MergeError(f"{module}: {a.shape[0]} rank-1 units in all inputs, fewer than k={k}")
    features = torch.cat([_unit(a), _unit(b)], dim=1)
    labels = kmeans(features, k, seed=config.seed, n_init=config.n_init, max_iter=config.max_iter)
    sizes = torch.bincount(labels, minlength=k)
    a_c = torch.zeros(k, a.shape[1]).index_add_(0, labels, a) / sizes.unsqueeze(1)
    b_c = torch.zeros(k, b.shape[1]).index_add_(0, labels, b) / sizes.unsqueeze(1)
    if config.parameter_reweighting:
        a_c, b_c = _reweight(a, b, a_c, b_c, labels, sizes, config.parameter_norm)
    if config.output_reweighting:
        r = max(p.rank for p in parts)
        b_c = b_c * math.sqrt(r / k)
    return a_c.contiguous(), b_c.T.contiguous(), {"cluster_sizes": sorted(sizes.tolist(), reverse=True)}


def _reweight(a, b, a_c, b_c, labels, sizes, norm):
    """Rescale each centroid to the mean norm of its members."""
    k = sizes.shape[0]

    def mean_norm(t):
        return torch.zeros(k).index_add_(0, labels, t.norm(dim=1)) / sizes

    if norm == "separate":
        a_c = a_c * (mean_norm(a) / a_c.norm(dim=1).clamp(min=1e-12)).unsqueeze(1)
        b_c = b_c * (mean_norm(b) / b_c.norm(dim=1).clamp(min=1e-12)).unsqueeze(1)
        return a_c, b_c
    joint = torch.cat([a_c, b_c], dim=1)
    factor = (mean_norm(torch.cat([a, b], dim=1)) / joint.norm(dim=1).clamp(min=1e-12)).unsqueeze(1)
    return a_c * factor, b_c * factor
