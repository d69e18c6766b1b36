"""Merging LoRA adapters: LoRA-LEGO and PEFT's add_weighted_adapter methods, on `lora.Adapter` values.

    merge(adapters, MergeConfig(method="lego")) -> Adapter
    merge_with_report(adapters, config, progress=None) -> (Adapter, report dict)
    fit_merge(adapters, config, model, tokenizer, examples, progress=None) -> (Adapter, report dict)
        the same merge with coefficients fitted on a few examples per input (merging.fit)

The output is a plain PEFT adapter on the same base with scaling 1 on every module (alpha = rank there)."""
from __future__ import annotations

import dataclasses
import re
import time

import torch

from lora import Adapter
from merging.config import MergeConfig
from merging.errors import MergeError
from merging.inputs import check_weights, parts_by_module
from merging.registry import METHODS

__all__ = ["METHODS", "MergeConfig", "MergeError", "fit_merge", "merge", "merge_with_report"]


def merge(adapters: list[Adapter], config: MergeConfig) -> Adapter:
    return merge_with_report(adapters, config)[0]


def merge_with_report(adapters: list[Adapter], config: MergeConfig, progress=None) -> tuple[Adapter, dict]:
    """Merge and say how: method, inputs' ranks, output rank, time, and per-module details (LEGO's cluster sizes).
    progress("merging", done, total) after each module (the lora.progress protocol)."""
    if config.method not in METHODS:
        raise MergeError(f"unknown merge method {config.method!r}; known: {sorted(METHODS)}")
    merge_module = METHODS[config.method]
    weights = check_weights(adapters, config.weights)
    modules = parts_by_module(adapters, weights)
    input_rank = max(p.rank for parts in modules.values() for p in parts)
    if config.rank is not None and config.rank < 1:
        raise MergeError(f"rank must be >= 1, got {config.rank}")
    if config.n_init < 1 or config.max_iter < 1:
        raise MergeError("n_init and max_iter must be >= 1")
    resolved = dataclasses.replace(config, rank=config.rank or input_rank)

    start = time.perf_counter()
    merged, details = {}, {}
    with torch.random.fork_rng(devices=[]):  # DARE's masks: seeded, without touching the caller's RNG state
        torch.manual_seed(resolved.seed)
        for done, (module, parts) in enumerate(modules.items(), 1):
            a, b, info = merge_module(module, parts, resolved)
            merged[module] = (a, b)
            if info:
                details[module] = info
            if progress is not None:
                progress("merging", done, len(modules))
    elapsed = time.perf_counter() - start

    ranks = [a.shape[0] for a, _ in merged.values()]
    r = max(set(ranks), key=ranks.count)  # the common rank; modules that differ get rank/alpha patterns
    alpha_pattern = {f"^{re.escape(m)}": a.shape[0] for m, (a, _) in merged.items() if a.shape[0] != r}
    adapter = Adapter.from_modules(adapters[0].base_model, merged, r=r, lora_alpha=r, alpha_pattern=alpha_pattern)
    report = {
        "method": config.method,
        "config": resolved.to_dict(),
        "n_inputs": len(adapters),
        "input_rank": input_rank,
        "output_rank": r,
        "n_modules": len(merged),
        "time_s": elapsed,
        "modules": details,
    }
    if config.method == "lego":
        report["k"] = resolved.rank
    return adapter, report


from merging.fit import fit_merge  # noqa: E402 - fit builds on merge_with_report above
