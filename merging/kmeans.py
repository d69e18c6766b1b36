"""Seeded k-means in torch (k-means++ init, Lloyd iterations, best of n_init by inertia).

Written here rather than taken from scikit-learn because LEGO runs it once per target module (hundreds of small
problems): a torch version avoids numpy round trips and its determinism depends only on our torch.Generator."""
from __future__ import annotations

import torch


def _plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    chosen = [int(torch.randint(n, (1,), generator=gen))]
    dist = ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:  # fewer distinct points than k: take any not yet chosen
            i = next(j for j in range(n) if j not in chosen)
        else:
            i = int(torch.multinomial(dist / total, 1, generator=gen))
        chosen.append(i)
        dist = torch.minimum(dist, ((x - x[i]) ** 2).sum(1))
    return x[chosen].clone()


def _lloyd(x: torch.Tensor, centers: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, float]:
    k = centers.shape[0]
    labels = None
    for _ in range(max_iter):
        new = torch.cdist(x, centers).argmin(1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, labels, x)
        for c in torch.nonzero(counts == 0).flatten().tolist():
            # an empty cluster takes the point farthest from its current center
            far = ((x - centers[labels]) ** 2).sum(1).argmax()
            labels[far] = c
            counts = torch.bincount(labels, minlength=k)
            sums = torch.zeros_like(centers).index_add_(0, labels, x)
        centers = sums / counts.unsqueeze(1)
    labels = torch.cdist(x, centers).argmin(1)
    inertia = float(((x - centers[labels]) ** 2).sum())
    return labels, inertia


def kmeans(x: torch.Tensor, k: int, *, seed: int, n_init: int, max_iter: int) -> torch.Tensor:
    """Cluster label (0..k-1) of each row of x (n, d), n >= k; every label is used."""
    best, best_inertia = None, float("inf")
    for run in range(n_init):
        gen = torch.Generator().manual_seed(seed + run)
        labels, inertia = _lloyd(x, _plus_plus(x, k, gen), max_iter)
        if torch.bincount(labels, minlength=k).min() == 0:
            continue
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    if best is None:
        raise RuntimeError("k-means left a cluster empty in every run")  # only with duplicate points
    return best
