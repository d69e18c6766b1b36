"""What a Trans-LoRA kit and a Trans-LoRA transfer are asked to do: two flat, torch-free dataclasses.

The hub keeps a pydantic params model per job kind with the same field names and defaults (a test compares them),
and the API process must not import torch, so this module uses the stdlib only and every field is JSON-friendly.
`check()` raises ValueError naming the first bad field, so a notebook user or the API can refuse a request before
any model is loaded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

DATA_MODES = ("filtered", "unfiltered", "seeds_only")
FILTERS = ("calibrated", "rank", "fixed")


def _positive_int(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _non_negative_int(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _positive_number(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _sampling(config) -> None:
    _positive_number(config, "temperature")
    if not 0 < config.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {config.top_p!r}")


class _Plain:
    """to_dict / from_dict shared by both configs (from_dict refuses unknown fields instead of dropping them)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {sorted(unknown)}")
        values = dict(data)
        for name, value in values.items():
            if isinstance(value, list):  # JSON has lists where the dataclass has tuples
                values[name] = tuple(value)
        return cls(**values)


@dataclass
class KitConfig(_Plain):
    """Source time: train the discriminator and keep the seeds, while the real task data still exists."""

    # seed examples kept with the kit and shown to the generator; 5 as in the paper (more help on some tasks)
    seeds: int = 5
    # the task name in the discriminator's question "...from the <task> dataset?"; the name only has to be the same
    # at kit time and at transfer time (the kit records it), so a neutral word is the default
    task_name: str = "given"
    # synthetic inputs (the discriminator's "no" class) the source base generates; 0 = as many as there are real
    # inputs, so the two classes are balanced and neither answer wins by prior alone
    synthetic: int = 0
    # share of each class held out to measure the discriminator's accuracy (reported, never trained on);
    # 0.2 leaves 80 % for training and still gives a few dozen held-out examples for |D| = 100-250
    heldout_fraction: float = 0.2
    # sampling of the synthetic inputs: the model's own distribution (temperature 1) with the far tail cut (top_p),
    # because small bases put real mass on junk tokens; use the same values as the transfer for matching negatives
    temperature: float = 1.0
    top_p: float = 0.95
    # longest synthetic input in tokens; task inputs here are one line, 64 tokens covers them with room to spare
    max_new_tokens: int = 64
    # candidates generated per generate() call: memory vs. speed, no effect on results
    candidate_batch_size: int = 16
    # the discriminator LoRA: the same small shape as the student (q, v; r=8, alpha=16), batch 8 as in the paper,
    # 100 steps as the train job. lr 1e-3, not the paper's 2e-4: in 100 steps 2e-4 leaves it at chance (measured on
    # a tiny llama, word_sorting, |D| = 64: held-out balanced accuracy 0.50, AUROC 0.37; 1e-3: 0.96, AUROC 0.99)
    rank: int = 8
    lora_alpha: float = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    steps: int = 100
    lr: float = 1e-3
    batch_size: int = 8
    # the discriminator prompt is the input plus the question; inputs longer than this lose their start
    max_len: int = 256
    # one seed for the seed choice, the split, the sampling and the LoRA init: same inputs + seed => same kit
    seed: int = 0

    def check(self) -> None:
        for name in ("seeds", "max_new_tokens", "candidate_batch_size", "rank", "steps", "batch_size", "max_len"):
            _positive_int(self, name)
        _non_negative_int(self, "synthetic")
        _non_negative_int(self, "seed")
        if not isinstance(self.task_name, str) or not self.task_name.strip():
            raise ValueError(f"task_name must be a non-empty string, got {self.task_name!r}")
        if not isinstance(self.heldout_fraction, (int, float)) or not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction!r}")
        _sampling(self)
        _positive_number(self, "lora_alpha")
        _positive_number(self, "lr")
        _target_modules(self)


@dataclass
class TransferConfig(_Plain):
    """Transfer time: synthesise inputs on the target base, filter them, label them with the source adapter, and
    distil a fresh LoRA on the target base."""

    # what the student is trained on: "filtered" is Trans-LoRA; "unfiltered" keeps every candidate (no discriminator
    # calls) and "seeds_only" trains on the kit's seed examples with their real completions (no generation, no
    # teacher); the two ablations of the paper. One field rather than flags, so no meaningless combination exists.
    data: Literal["filtered", "unfiltered", "seeds_only"] = "filtered"
    # how "filtered" decides (transfer.calibration): "calibrated" accepts a candidate scoring at least as "real" as
    # the calibration_quantile of the kit's held-out real inputs and, if max_attempts draws leave the set short,
    # fills it with the best-ranked rejected candidates; "rank" draws max_attempts candidates and keeps the best
    # `synthetic_size`; "fixed" is the paper's p(yes) > p(no) with no fill (an ablation: with small bases it accepts
    # 0-5 % on some tasks and nothing on tiny ones, and then fails loudly)
    filter: Literal["calibrated", "rank", "fixed"] = "calibrated"
    # q for "calibrated": 0.1 = as real as the least real tenth of the task's own held-out inputs, i.e. a real
    # input would pass 90 % of the time; higher is stricter
    calibration_quantile: float = 0.1
    # size of the synthetic training set; None = synthetic_multiple x the real-set size recorded in the kit (the
    # paper uses |D_syn| = |D| and finds more helps)
    synthetic_size: int | None = None
    synthetic_multiple: float = 1.0
    # how many of the kit's seed examples the generator is shown (the first k); None = all of them. The seed count
    # ablation without making a new kit
    seeds: int | None = None
    # cap on candidate draws; 0 = automatic: 4 x the synthetic set size for "calibrated" and "rank" (the pool the
    # best are ranked from), 20 x for "fixed" (it gives up below a 5 % acceptance rate, raising TransferError)
    max_attempts: int = 0
    # "fixed" only, fail fast: when this many candidates have been judged and none was accepted, stop (checked after
    # each batch); a discriminator that accepts nothing would otherwise burn all max_attempts draws first
    give_up_after: int = 64
    # sampling of candidates on the target base; see KitConfig for why these values
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 64
    # candidates generated (and judged) per batch: memory vs. speed only
    candidate_batch_size: int = 16
    # teacher labels: the source base + source LoRA completes each kept input, up to this many tokens, cut before
    # the first stop string (one-line answers, as the built-in tasks and the evaluate job use). Greedy (temperature
    # 0) as in the paper; a positive label_temperature samples the labels instead (the paper's ablation)
    label_max_new_tokens: int = 64
    label_temperature: float = 0.0
    label_stop: tuple[str, ...] = ("\n",)
    # the student LoRA on the target base: q, v with r=8, alpha=16 (methods.md); the paper's AdamW without weight
    # decay, linear schedule, lr 2e-4, batch 8; 100 steps is the train job's default
    rank: int = 8
    lora_alpha: float = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    steps: int = 100
    lr: float = 2e-4
    batch_size: int = 8
    max_len: int = 256
    # report the MMD (mean-embedding distance, all-MiniLM-L6-v2) of filtered and unfiltered inputs to the seeds;
    # off skips loading the encoder
    measure_mmd: bool = True
    # one seed for seed orders, sampling and the student's init and batch order: same inputs + seed => same adapter
    seed: int = 0

    def check(self) -> None:
        if self.data not in DATA_MODES:
            raise ValueError(f"data must be one of {DATA_MODES}, got {self.data!r}")
        if self.filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {self.filter!r}")
        if not _number(self.calibration_quantile) or not 0 <= self.calibration_quantile < 1:
            raise ValueError(f"calibration_quantile must be in [0, 1), got {self.calibration_quantile!r}")
        _positive_number(self, "synthetic_multiple")
        if self.seeds is not None:
            _positive_int(self, "seeds")
        if not _number(self.label_temperature) or self.label_temperature < 0:
            raise ValueError(f"label_temperature must be a non-negative number, got {self.label_temperature!r}")
        for name in ("give_up_after", "max_new_tokens", "candidate_batch_size", "label_max_new_tokens", "rank",
                     "steps", "batch_size", "max_len"):
            _positive_int(self, name)
        if self.synthetic_size is not None:
            _positive_int(self, "synthetic_size")
        for name in ("max_attempts", "seed"):
            _non_negative_int(self, name)
        _sampling(self)
        _positive_number(self, "lora_alpha")
        _positive_number(self, "lr")
        _target_modules(self)
        if isinstance(self.label_stop, str) or not all(isinstance(s, str) for s in self.label_stop):
            raise ValueError(f"label_stop must be a list of strings, got {self.label_stop!r}")
        if not isinstance(self.measure_mmd, bool):
            raise ValueError(f"measure_mmd must be true or false, got {self.measure_mmd!r}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _target_modules(config) -> None:
    modules = config.target_modules
    if isinstance(modules, str) or not modules or not all(isinstance(m, str) and m for m in modules):
        raise ValueError(f"target_modules must be a non-empty list of module names, got {modules!r}")
