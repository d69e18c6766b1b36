"""Checks and views shared by every method: the inputs must sit on one base, agree on module shapes, and the
weights must line up with them. Each method gets per-module lists of (weight, scaling, A, B), float32."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lora import Adapter
from merging.errors import MergeError


@dataclass
class Part:
    """One input adapter's LoRA on one module: ΔW = weight · scaling · B @ A."""

    index: int  # position of the adapter in the input list
    weight: float
    scaling: float
    a: torch.Tensor  # (r, in) float32
    b: torch.Tensor  # (out, r) float32

    @property
    def rank(self) -> int:
        return self.a.shape[0]


def check_weights(adapters: list[Adapter], weights: list[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(adapters)
    if len(weights) != len(adapters):
        raise MergeError(f"got {len(weights)} weights for {len(adapters)} adapters")
    return [float(w) for w in weights]


def parts_by_module(adapters: list[Adapter], weights: list[float]) -> dict[str, list[Part]]:
    """module path -> the parts of every input that has a LoRA there (PEFT's add_weighted_adapter also merges the
    union of target modules, skipping inputs that lack one)."""
    if not adapters:
        raise MergeError("merge needs at least one adapter")
    bases = {ad.base_model for ad in adapters}
    if len(bases) != 1:
        raise MergeError(f"adapters are on different base models: {sorted(map(str, bases))}")
    modules: dict[str, list[Part]] = {}
    for i, (ad, w) in enumerate(zip(adapters, weights)):
        if not ad.modules():
            raise MergeError(f"adapter {i} has no LoRA modules")
        for m in ad.modules():
            part = Part(i, w, ad.scaling(m), ad.a(m).float(), ad.b(m).float())
            modules.setdefault(m, []).append(part)
    for m, parts in modules.items():
        shapes = {(p.b.shape[0], p.a.shape[1]) for p in parts}
        if len(shapes) != 1:
            raise MergeError(f"{m}: adapters disagree on the module's shape (out, in): {sorted(shapes)}; "
                             "they were trained on different bases")
    return dict(sorted(modules.items()))


def same_rank(module: str, parts: list[Part], method: str) -> int:
    """linear/ties/dare add A's and B's entry by entry, so every input must have the same rank there."""
    ranks = {p.rank for p in parts}
    if len(ranks) != 1:
        raise MergeError(f"{method} needs equal ranks; {module} has ranks {sorted(ranks)} (use cat, svd or lego)")
    return ranks.pop()


def check_density(density: float | None, method: str) -> float:
    if density is None or not 0 < density <= 1:
        raise MergeError(f"{method} needs density in (0, 1], got {density}")
    return float(density)
