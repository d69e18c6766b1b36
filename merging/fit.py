"""Fitted merge coefficients, LoraHub-style (arXiv 2307.13269): search a merge's coefficients gradient-free on a few
examples per input, starting from the unfitted merge.

    fit_merge(adapters, config, model, tokenizer, examples, progress=None) -> (Adapter, report)

`examples[i]` are (prompt, completion) pairs of input i's task. The coefficients are one weight per input
(`fit_granularity="input"`, any method: the merge is recomputed with them as `weights`) or, for LEGO, one scale per
merged rank-1 unit, i.e. per cluster, of every module (`"cluster"`: the clustering stays the unfitted merge's).

Why gradient-free: the coefficients enter most merges non-linearly (LEGO's clustering and reweighting, TIES' sign
election, SVD's truncation) and there are few of them, so CMA-ES (the maintained `cma` package) finds good ones in
tens of loss evaluations, without a backward pass.

Objective = mean over inputs of the mean completion-token loss on that input's examples + fit_l1 · mean |c − c₀|,
c₀ the unfitted merge's coefficients. LoraHub anchors its L1 term at 0 because its pool holds adapters to switch
off; every input of a merge is one to keep, so here the term is anchored at the unfitted merge: moving away from it
must pay for itself in loss. c₀ is evaluated first and the best point seen is returned, so the fitted merge's loss on
the examples is never above the unfitted merge's; the result is a plain PEFT adapter of the unfitted merge's shape.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from peft import set_peft_model_state_dict

from lora import Adapter
from lora.evaluation import applied
from lora.training import IGNORE, collate, completion_loss_sum, encode_pair
from merging.combine import merge_with_report
from merging.config import MergeConfig
from merging.errors import MergeError
from merging.inputs import check_weights

MAX_LEN, BATCH = 256, 16


@dataclass
class CoefficientSpace:
    """What is searched: the start point (the unfitted merge's coefficients) and how a point becomes an adapter."""

    start: np.ndarray
    build: Callable[[np.ndarray], Adapter]
    describe: Callable[[np.ndarray], list | dict]  # the coefficients as the report shows them


def coefficient_space(adapters: list[Adapter], config: MergeConfig, unfitted: Adapter) -> CoefficientSpace:
    if config.fit_granularity == "input":
        start = np.array(check_weights(adapters, config.weights), dtype=float)

        def build(c):
            return merge_with_report(adapters, config.model_copy(update={"weights": [float(x) for x in c]}))[0]

        return CoefficientSpace(start, build, lambda c: [float(x) for x in c])

    modules = unfitted.modules()
    ranks = [unfitted.rank(m) for m in modules]
    bounds = np.cumsum([0, *ranks])

    def build(c):
        tensors = dict(unfitted.tensors)
        for m, lo, hi in zip(modules, bounds[:-1], bounds[1:]):
            key = next(k for k in tensors if k.endswith(f"{m}.lora_B.weight"))
            tensors[key] = unfitted.b(m) * torch.as_tensor(c[lo:hi], dtype=unfitted.b(m).dtype)
        return Adapter(config=unfitted.config, tensors=tensors)

    def describe(c):
        return {m: [float(x) for x in c[lo:hi]] for m, lo, hi in zip(modules, bounds[:-1], bounds[1:])}

    return CoefficientSpace(np.ones(int(bounds[-1])), build, describe)


class ExampleLoss:
    """Mean completion-token loss per input on its examples, with the merged LoRA loaded into a wrapped base. The
    examples are tokenised once; each evaluation only copies a candidate's tensors into the wrapper."""

    def __init__(self, model, tokenizer, examples: list[list[tuple[str, str]]]):
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.batches = []
        for pairs in examples:
            encoded = [encode_pair(tokenizer, p, c, MAX_LEN) for p, c in pairs]
            self.batches.append([collate(encoded[i:i + BATCH], pad_id) for i in range(0, len(encoded), BATCH)])
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def __call__(self, peft_model, adapter: Adapter) -> list[float]:
        tensors = {k: v.to(self.device) for k, v in adapter.tensors.items()}
        unexpected = [k for k in set_peft_model_state_dict(peft_model, tensors).unexpected_keys if "lora_" in k]
        if unexpected:
            raise MergeError(f"candidate tensors do not fit the merged adapter: {unexpected[:3]}")
        losses = []
        for batches in self.batches:
            total, count = 0.0, 0
            for batch in batches:
                loss, n = completion_loss_sum(peft_model, {k: v.to(self.device) for k, v in batch.items()})
                total, count = total + float(loss), count + n
            losses.append(total / max(count, 1))
        return losses


def _cma():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cma warns at import that matplotlib is missing: only its plots need it
        import cma
    return cma


def fit_merge(adapters: list[Adapter], config: MergeConfig, model, tokenizer,
              examples: list[list[tuple[str, str]]], progress=None) -> tuple[Adapter, dict]:
    """The merge with fitted coefficients, and the merge report with a `fit` section: the coefficients (start and
    fitted), per-input losses of the unfitted and the fitted merge, the objective per evaluation (the fit curve) and
    the best so far, evaluations spent and fit time. progress("merging", ...) then progress("fitting", i, budget,
    {"fit/objective", "fit/best"}) after each evaluation (the lora.progress protocol)."""
    if len(examples) != len(adapters):
        raise MergeError(f"fit needs one set of examples per input: got {len(examples)} for {len(adapters)} inputs")
    examples = [list(pairs)[: config.fit_examples] for pairs in examples]
    empty = [i for i, pairs in enumerate(examples) if not pairs]
    if empty:
        raise MergeError(f"fit examples of input(s) {empty} are empty")
    unfitted, report = merge_with_report(adapters, config, progress=progress)
    space = coefficient_space(adapters, config, unfitted)
    if np.abs(space.start).max() > config.fit_bound:
        raise MergeError(f"the unfitted coefficients {space.start.tolist()} lie outside ±fit_bound={config.fit_bound}")

    start_time = time.perf_counter()
    loss_of = ExampleLoss(model, tokenizer, examples)
    curve, best_curve = [], []
    best = {"objective": float("inf")}

    with applied(model, unfitted) as peft_model:
        def evaluate(c: np.ndarray, adapter: Adapter | None = None) -> float:
            adapter = adapter if adapter is not None else space.build(c)
            losses = loss_of(peft_model, adapter)
            objective = float(np.mean(losses)) + config.fit_l1 * float(np.abs(c - space.start).mean())
            curve.append(objective)
            if objective < best["objective"]:
                best.update(objective=objective, c=np.array(c, dtype=float), adapter=adapter, losses=losses)
            best_curve.append(best["objective"])
            if progress is not None:
                progress("fitting", len(curve), config.fit_budget,
                         {"fit/objective": objective, "fit/best": best["objective"]})
            return objective

        evaluate(space.start, unfitted)
        unfitted_losses = best["losses"]
        if config.fit_budget > 1:
            _search(evaluate, space.start, config)

    elapsed = time.perf_counter() - start_time
    fitted = best["adapter"]
    if config.fit_granularity == "input":
        report["config"]["weights"] = [float(x) for x in best["c"]]
    report["fit"] = {
        "granularity": config.fit_granularity,
        "budget": config.fit_budget,
        "evaluations": len(curve),
        "time_s": elapsed,
        "l1": config.fit_l1,
        "examples": [len(pairs) for pairs in examples],
        "start": space.describe(space.start),
        "coefficients": space.describe(best["c"]),
        "loss_unfitted": {"mean": float(np.mean(unfitted_losses)), "per_input": unfitted_losses},
        "loss_fitted": {"mean": float(np.mean(best["losses"])), "per_input": best["losses"]},
        "curve": curve,
        "best": best_curve,
    }
    return fitted, report


def _search(evaluate: Callable[[np.ndarray], float], start: np.ndarray, config: MergeConfig) -> None:
    """CMA-ES from the start point within ±fit_bound until the budget is spent (the start's evaluation counts), or
    CMA-ES stops on its own. Seeded (cma's seed 0 means "random", so config.seed + 1), without disturbing numpy's
    global random state, which cma seeds."""
    cma = _cma()
    options = {"bounds": [-config.fit_bound, config.fit_bound], "seed": config.seed + 1, "verbose": -9,
               "maxfevals": config.fit_budget - 1}
    state = np.random.get_state()
    try:
        x0 = start if start.size > 1 else np.concatenate([start, [0.0]])  # cma needs >= 2 dimensions
        es = cma.CMAEvolutionStrategy(x0, config.fit_sigma, options)
        left = config.fit_budget - 1
        while left > 0 and not es.stop():
            candidates = es.ask()
            if len(candidates) > left:  # the last generation is cut to the budget and not told
                for x in candidates[:left]:
                    evaluate(np.asarray(x[: start.size]))
                break
            es.tell(candidates, [evaluate(np.asarray(x[: start.size])) for x in candidates])
            left -= len(candidates)
    finally:
        np.random.set_state(state)
