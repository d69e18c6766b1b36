"""The three scales. `smoke` proves the pipeline runs (tiny random bases, a few items, minutes); `cpu` and `gpu`
decide (real small models, >= 200 test items per task, converged inputs).

Every number a method's jobs use lives here, per scale, so a method module holds only which jobs it runs and
which goals it checks. `-p KIND.key=value` on the command line overrides a job kind's params for one run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# hub name -> weight spec (lora.bases.load_base): tiny random models, or GGUF files shipped by PyPI packages
TINY = {"tiny-llama": "tiny:llama?seed=0", "tiny-qwen2": "tiny:qwen2?seed=0"}
REAL = {"smollm2": "smollm2", "gemma3-270m": "gemma3-270m"}


@dataclass(frozen=True)
class Scale:
    name: str
    base: str  # the base every method starts from (transfer: the source)
    target: str  # transfer's target base (another family, another tokenizer at cpu/gpu scale)
    specs: dict[str, str]
    n_train: int  # train-split rows of a built-in task
    n_test: int  # test-split rows (every accuracy's n)
    converge_items: int  # train-split rows scored per convergence check
    start_steps: int
    max_steps: int
    plateau: float = 0.02  # a doubling that gains no more than this much train exact match has converged
    solved: float = 0.98
    lora: dict = field(default_factory=dict)
    transfer: dict = field(default_factory=dict)
    unlearn: dict = field(default_factory=dict)
    merge: dict = field(default_factory=dict)
    generate: dict = field(default_factory=dict)


_LORA = {"rank": 8, "lora_alpha": 16, "lr": 1e-3, "batch_size": 8, "max_len": 128, "seed": 0}
_TASKS = ["boolean_expressions", "word_sorting", "two_step_arithmetic", "object_counting", "caesar_shift"]
# The first three are forgotten one per request, so each must be known on held-out inputs before (issue 24: test
# exact match >= 0.5); the 2026-12-07 run's object_counting (0.43) and packed-letter caesar_shift (0.00) were not.
_UNLEARN_TASKS = ["caesar_shift", "add_constant", "word_sorting", "boolean_expressions"]
_GATES = ["auto", "off", "paper"]  # paper: the floored, uncalibrated gate (the ablation)
_MERGES = {  # name -> merge params (without inputs); "fit" = fit on each input's train split (a few examples)
    "lego_k8": {"method": "lego", "rank": 8},
    "linear": {"method": "linear"},
    "ties": {"method": "ties", "density": 0.5},
    "cat": {"method": "cat"},
    "svd": {"method": "svd", "rank": 8},
    "dare_ties": {"method": "dare_ties", "density": 0.5},
    "lego_k8_fit": {"method": "lego", "rank": 8, "fit": "train", "fit_examples": 20},
    "linear_fit": {"method": "linear", "fit": "train", "fit_examples": 20},
    # not results: coefficients fitted on the very test items the merge is scored on, with 1.5x the examples and
    # budget, so their scores bound what per-input coefficient search can keep (issue 23's 70 % goal), for LEGO and
    # for task arithmetic (cat: the exact sum of the deltas, each scaled by its fitted coefficient)
    "lego_k8_fit_on_test": {"method": "lego", "rank": 8, "fit": "test", "fit_examples": 30, "fit_budget": 60},
    "cat_fit_on_test": {"method": "cat", "fit": "test", "fit_examples": 30, "fit_budget": 60},
    # the routed merge: the router from the same few examples per input (prototypes in the sentence encoder's space),
    # and Arrow's router from the adapters alone
    "route": {"method": "route", "fit": "train", "fit_examples": 20},
    "route_arrow": {"method": "route", "router": "arrow"},
}

SCALES = {
    "smoke": Scale(
        name="smoke", base="tiny-llama", target="tiny-qwen2", specs=TINY, n_train=24, n_test=8, converge_items=8,
        start_steps=4, max_steps=8, lora={**_LORA, "batch_size": 4, "lr": 1e-2, "max_len": 64},
        transfer={"tasks": ["boolean_expressions"], "ablations": ["unfiltered"],
                  "kit": {"seeds": 3, "steps": 4, "max_new_tokens": 16},
                  "job": {"synthetic_size": 8, "max_new_tokens": 16, "label_max_new_tokens": 8, "steps": 4,
                          "give_up_after": 64}},
        unlearn={"tasks": ["boolean_expressions", "word_sorting", "object_counting"], "requests": 1,
                 "job": {"steps": 3, "detector_steps": 4, "batch_size": 4, "detector_batch_size": 4,
                         "min_forget_examples": 4}},
        merge={"tasks": ["boolean_expressions", "word_sorting"],
               "merges": {"lego_k8": _MERGES["lego_k8"], "linear": _MERGES["linear"],
                          "lego_k8_fit": {**_MERGES["lego_k8_fit"], "fit_examples": 4, "fit_budget": 6},
                          "lego_k8_fit_on_test": {**_MERGES["lego_k8_fit_on_test"], "fit_examples": 4, "fit_budget": 6},
                          "route": {**_MERGES["route"], "fit_examples": 4}, "route_arrow": _MERGES["route_arrow"]}},
        generate={"families": {"add_constant": {"members": [1, 2, 3], "held_out": [2]}}, "checkpoints": 4,
                  "samples": 2, "subspace_fit": {"fit_examples": 4, "fit_budget": 6}, "generator": {"epochs": 5, "latent": 8, "basis": 4, "batch_size": 4,
                                              "condition_examples": 4}}),
    "cpu": Scale(
        name="cpu", base="smollm2", target="gemma3-270m", specs=REAL, n_train=256, n_test=200, converge_items=100,
        # 200, 400, 800 steps, each continuing the last (protocol doc): SmolLM2 solves boolean_expressions and
        # word_sorting's train splits by 200; the unlearning assistant (four tasks in one LoRA) was at 0.44 train
        # exact match after 400 with object_counting's test split at 0.33. (The merge report of 2026-12-07 ran with
        # a 400 cap: two_step_arithmetic 0.93 train / 0.355 test there, 1.00 / 0.33 after 800.)
        start_steps=200, max_steps=800, lora=_LORA,
        transfer={"tasks": _TASKS, "ablations": ["unfiltered", "seeds_only"],
                  "kit": {"seeds": 5, "steps": 100, "max_new_tokens": 48},
                  "job": {"synthetic_size": 128, "max_new_tokens": 48, "label_max_new_tokens": 32, "steps": 200}},
        unlearn={"tasks": _UNLEARN_TASKS, "requests": 3,
                 "gates": _GATES, "job": {"steps": 80, "detector_steps": 100}},
        merge={"tasks": _TASKS[:4], "merges": _MERGES},
        generate={"families": {"add_constant": {"members": list(range(1, 10)), "held_out": [3, 5, 7]},
                               "caesar_shift": {"members": [1, 2, 3, 4, 5], "held_out": [2, 4]}},
                  "checkpoints": 20, "samples": 8, "subspace_fit": {"fit_examples": 20}, "generator": {"epochs": 150}}),
    "gpu": Scale(
        name="gpu", base="smollm2", target="gemma3-270m", specs=REAL, n_train=512, n_test=400, converge_items=200,
        start_steps=200, max_steps=1600, lora={**_LORA, "batch_size": 16},
        transfer={"tasks": _TASKS, "ablations": ["unfiltered", "seeds_only"],
                  "kit": {"seeds": 5, "steps": 200, "max_new_tokens": 48},
                  "job": {"synthetic_size": 256, "max_new_tokens": 48, "label_max_new_tokens": 32, "steps": 400}},
        unlearn={"tasks": _UNLEARN_TASKS, "requests": 3,
                 "gates": _GATES, "job": {"steps": 120, "detector_steps": 200}},
        merge={"tasks": _TASKS[:4], "merges": _MERGES},
        generate={"families": {"add_constant": {"members": list(range(1, 10)), "held_out": [3, 5, 7]},
                               "caesar_shift": {"members": [1, 2, 3, 4, 5], "held_out": [2, 4]}},
                  "checkpoints": 20, "samples": 8, "subspace_fit": {"fit_examples": 20}, "generator": {"epochs": 300}}),
}
