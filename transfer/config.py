"""What a Trans-LoRA kit and a Trans-LoRA transfer are asked to do: two torch-free pydantic configs.

They are the `transfer_kit` and `transfer` jobs' params too (the hub's params models extend them with the objects a
job names), so each field's limits and description are written here once. A config that exists is valid: a bad
field is a ValidationError (a ValueError) naming it, before any model is loaded.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from lora.config import ESSENTIAL, MAX_COUNT, MAX_SEED, LoraFields

DATA_MODES = ("filtered", "unfiltered", "seeds_only")
FILTERS = ("calibrated", "rank", "fixed")


class _Sampling(LoraFields):
    """How candidate inputs are sampled (the kit's negatives and the transfer's candidates use the same values):
    the model's own distribution (temperature 1) with the far tail cut (top_p), because small bases put real mass
    on junk tokens."""

    temperature: float = Field(1.0, gt=0, le=10, description="sampling temperature of synthetic inputs")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling of synthetic inputs")
    max_new_tokens: int = Field(64, ge=1, le=2048, description="longest synthetic input, in tokens")
    candidate_batch_size: int = Field(16, ge=1, le=1024, description="candidates generated per call (memory vs. "
                                      "speed; no effect on results)")


class KitConfig(_Sampling):
    """Source time: train the discriminator and keep the seeds, while the real task data still exists."""

    seeds: int = Field(5, ge=1, le=1000, description="seed examples kept with the kit and shown to the generator "
                       "(5 as in the paper)", json_schema_extra=ESSENTIAL)
    # the name only has to be the same at kit time and at transfer time (the kit records it)
    task_name: str = Field("given", min_length=1, max_length=200, pattern=r"\S",
                           description='the task name in the discriminator\'s question "...from the <task> dataset?"')
    # 0 balances the two classes, so neither answer wins by prior alone
    synthetic: int = Field(0, ge=0, le=100_000, description="synthetic inputs (the discriminator's 'no' class); "
                           "0: as many as there are real inputs")
    # 0.2 leaves 80 % for training and still a few dozen held-out examples for |D| = 100-250
    heldout_fraction: float = Field(0.2, ge=0, lt=1, description="share of each class held out to measure the "
                                    "discriminator's accuracy (never trained on)")
    # not the paper's 2e-4: in 100 steps 2e-4 leaves the discriminator at chance (measured on a tiny llama,
    # word_sorting, |D| = 64: held-out balanced accuracy 0.50, AUROC 0.37; 1e-3: 0.96, AUROC 0.99)
    lr: float = Field(1e-3, ge=0, le=1, description="the discriminator LoRA's learning rate",
                      json_schema_extra=ESSENTIAL)
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the seed choice, the split, the sampling and the "
                      "LoRA init: same inputs and seed give the same kit")


class TransferConfig(_Sampling):
    """Transfer time: synthesise inputs on the target base, filter them, label them with the source adapter, and
    distil a fresh LoRA on the target base."""

    # One field rather than flags, so no meaningless combination exists; the two ablations of the paper.
    data: Literal[DATA_MODES] = Field("filtered", description='what the student learns from: "filtered" '
                                      '(Trans-LoRA), "unfiltered" (every candidate) or "seeds_only" (the kit\'s seeds)',
                                      json_schema_extra=ESSENTIAL)
    # "calibrated" fills a short set with the best-ranked rejected candidates; "fixed" (an ablation) accepts 0-5 %
    # on some tasks with small bases and then fails loudly (transfer.calibration)
    filter: Literal[FILTERS] = Field("calibrated", description='how "filtered" decides: "calibrated" (as real as '
                                     'the kit\'s held-out inputs), "rank" (keep the best) or "fixed" (p(yes) > p(no))')
    calibration_quantile: float = Field(0.1, ge=0, lt=1, description='"calibrated": accept what scores at least '
                                        "this quantile of real held-out inputs (higher is stricter)")
    synthetic_size: int | None = Field(None, ge=1, le=100_000, description="synthetic training set size; none: "
                                       "synthetic_multiple x the kit's real-set size")
    synthetic_multiple: float = Field(1.0, gt=0, le=100, description="synthetic set size as a multiple of the real "
                                      "set's (when synthetic_size is none)")
    seeds: int | None = Field(None, ge=1, le=1000, description="how many of the kit's seeds the generator is shown "
                              "(the first k); none: all")
    max_attempts: int = Field(0, ge=0, le=MAX_COUNT, description="cap on candidate draws; 0: 4 x the set size "
                              '("calibrated", "rank") or 20 x ("fixed")')
    give_up_after: int = Field(64, ge=1, le=MAX_COUNT, description='"fixed": stop when this many candidates were '
                               "judged and none accepted")
    # greedy as in the paper; a positive label_temperature samples the labels instead (the paper's ablation)
    label_max_new_tokens: int = Field(64, ge=1, le=2048, description="longest teacher label, in tokens")
    label_temperature: float = Field(0.0, ge=0, le=10, description="teacher sampling temperature (0: greedy)")
    label_stop: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["\n"], max_length=16, strict=False,
        description="teacher labels are cut before the first of these")
    measure_mmd: bool = Field(True, description="report the MMD of filtered and unfiltered inputs to the seeds "
                              "(loads all-MiniLM-L6-v2)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of seed orders, sampling and the student's init: "
                      "same inputs and seed give the same adapter")
