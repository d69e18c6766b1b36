"""merge and merge_with_report: run a registered method over every module of the inputs (merging.registry)."""
from __future__ import annotations

import re
import time

import torch

from lora import Adapter
from merging.config import MergeConfig
from merging.inputs import check_weights, parts_by_module
from merging.registry import merge_function


def merge(adapters: list[Adapter], config: MergeConfig) -> Adapter:
    return merge_with_report(adapters, config)[0]


def merge_with_report(adapters: list[Adapter], config: MergeConfig, progress=None) -> tuple[Adapter, dict]:
    """Merge and say how: method, inputs' ranks, output rank, time, and per-module details (LEGO's cluster sizes).
    progress("merging", done, total) after each module (the lora.progress protocol)."""
    merge_module = merge_function(config.method)
    weights = check_weights(adapters, config.weights)
    modules = parts_by_module(adapters, weights)
    input_rank = max(p.rank for parts in modules.values() for p in parts)
    resolved = config.model_copy(update={"rank": config.rank or input_rank})

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
        "config": resolved.model_dump(),
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

