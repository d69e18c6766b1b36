"""The merge methods, torch-free: name -> where its per-module function lives and which params it needs.

Adding a method = one module in merging/methods + one line here. The registry is read without importing torch (the
hub's params model takes its choices from METHODS and refuses a missing required param at submit), so each line
names its function instead of importing it; `merge_function` imports it when a merge runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module


@dataclass(frozen=True)
class MergeMethod:
    module: str  # merging.methods.<module>
    function: str = "merge_module"  # merge_module(module, parts, config) -> (A, B, info)
    # params the method cannot run without -> what the caller must give (the message when it is missing)
    needs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


DENSITY = {"density": "a density in (0, 1]: the fraction of entries it keeps"}

METHODS: dict[str, MergeMethod] = {
    "lego": MergeMethod("lego", summary="LoRA-LEGO: cluster the inputs' rank-1 units into k and reweight"),
    "linear": MergeMethod("linear", summary="weighted sum of the A and B matrices (equal ranks)"),
    "cat": MergeMethod("cat", summary="concatenate the inputs' ranks (exact weighted sum of the deltas)"),
    "svd": MergeMethod("svd", summary="weighted sum of the deltas, truncated to rank by SVD"),
    "ties": MergeMethod("ties", needs=DENSITY, summary="TIES: trim to density, elect signs, disjoint mean"),
    "dare_linear": MergeMethod("dare", "merge_linear", DENSITY, "DARE: random drop to density, rescale, sum"),
    "dare_ties": MergeMethod("dare", "merge_ties", DENSITY, "DARE drop, then TIES sign election"),
    # the routed merge keeps every input as an expert (merging.route); its primary adapter, what a plain PEFT loader
    # gets, is their cat merge
    "route": MergeMethod("cat", summary="keep every input as an expert behind a router (merging.route); plain "
                         "PEFT loaders get the cat merge"),
}


def merge_function(name: str):
    method = METHODS[name]
    return getattr(import_module(f"merging.methods.{method.module}"), method.function)
