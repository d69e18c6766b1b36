"""What an unlearning request is asked to do: one flat, torch-free dataclass (the hub's params model mirrors it).

Defaults follow methods.md (O3 section) where it fixes a value (λ = 0.1, r = 8, α = 16, 80/20 split, 15 % masking,
ν = 0.1, ζ = 10); where it leaves a choice open the comment beside the field says why we picked the value.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

RELABEL_MODES = ("refusal", "wrong_option")
GATES = ("calibrated", "paper")


@dataclass
class UnlearnConfig:
    # ---------------------------------------------------------------- the unlearning LoRA (methods.md O3 step 1)
    # "refusal": free-text forget data, every completion becomes a refusal drawn from a fixed list;
    # "wrong_option": multiple choice, every completion becomes another option (see unlearning/relabelling.py for
    # how the options of an example are found).
    relabel: Literal["refusal", "wrong_option"] = "refusal"
    options: tuple[str, ...] = ()  # wrong_option: one option list for the whole forget set (empty = find per example)
    lambda_orth: float = 0.1  # weight of the orthogonality term (the paper's value)
    rank: int = 8  # the paper's r; later requests keep the rank of the LoRA they resume
    lora_alpha: float = 16  # the paper's α (scaling 2)
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # the usual attention targets, as lora.training
    # 1e-3 rather than the SFT default 2e-4: a forget set is small and must be overwritten in ~100 steps
    lr: float = 1e-3
    steps: int = 100  # a few epochs of a typical forget set (tens to hundreds of examples) at batch 8
    batch_size: int = 8  # the paper's batch size for LoRA training
    max_len: int = 256  # forget prompts are questions, not documents
    seed: int = 0  # LoRA init, batch order, relabel draws, the 80/20 split, the detector's masks

    # ---------------------------------------------------------------- the OOD detector (methods.md O3 step 2)
    used_fraction: float = 0.8  # 80 % of the forget set fits the detector, 20 % ("rest") calibrates the gate
    mask_prob: float = 0.15  # masked-LM: the BERT fraction of masked tokens
    detector_rank: int = 8  # LoRA on the encoder's query/value: same small rank as the unlearning LoRA
    detector_alpha: float = 16
    detector_target_modules: tuple[str, ...] = ("query", "value")  # BERT's attention projections
    detector_steps: int = 100  # MiniLM forward+backward is cheap; 100 steps take seconds on a CPU
    detector_lr: float = 5e-4  # usual LoRA range; higher than SFT because the run is short
    detector_batch_size: int = 8  # the contrastive entropy term needs several inputs per batch to contrast
    detector_max_len: int = 128  # MiniLM was trained on 128-token inputs
    gamma: float = 1.0  # weight of the cosine (local) term against the Mahalanobis (global) term per layer
    nu: float = 0.1  # one-class SVM ν (the paper's value): ~10 % of the used split may fall outside
    zeta: float = 10.0  # soft-weight sharpness ζ (the paper's value)
    # True: inputs scoring above the forget set's typical score keep weight 1 (methods.md's two-sided formula
    # would unload the LoRA for inputs that look *more* like the forget set than its own examples); False: the
    # formula exactly as written. See unlearning/gate.py.
    one_sided_gate: bool = True
    # "calibrated" (default): per-detector normalised scores, a gate fitted on held-out forget inputs and on
    # reference inputs, exactly 0 far from every forget set (lora/gating.py). "paper": the soft weight above
    # (m1, m2, s from the detector's own splits; never below σ(−2) ≈ 0.12), kept as the ablation.
    gate: Literal["calibrated", "paper"] = "calibrated"
    # calibrated gate: fully open from this many standard deviations below the held-out forget inputs' mean
    # normalised score (2.33: ~1 % of a normal tail left under it), ...
    gate_tail_sd: float = 2.33
    # ... and the ramp from closed to open at most this wide (normalised units ≈ e-folds of distance far out), so
    # an input between the forget set and every reference input is not half gated
    gate_max_width: float = 2.0
    # calibrated gate: also shut it for generic everyday prompts and the built-in tasks' prompts (bar any the
    # detector cannot tell from the forget set), besides the caller's reference inputs (unlearning/reference.py)
    builtin_reference: bool = True
    # The fewest forget examples a request may have: with the 80/20 split, 10 leaves 8 to fit the detector and 2 to
    # calibrate the gate (a standard deviation needs two). The API refuses smaller forget sets (422).
    min_forget_examples: int = 10

    def to_dict(self) -> dict:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "UnlearnConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown unlearn config field(s): {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def check(self) -> None:
        """Raise ValueError naming the first bad field, so a caller can refuse a request before queuing it."""
        if self.relabel not in RELABEL_MODES:
            raise ValueError(f"relabel must be one of {list(RELABEL_MODES)}, got {self.relabel!r}")
        for name in ("rank", "steps", "batch_size", "max_len", "detector_rank", "detector_steps",
                     "detector_batch_size", "detector_max_len", "min_forget_examples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lambda_orth", "lora_alpha", "lr", "detector_alpha", "detector_lr", "gamma", "zeta",
                     "gate_tail_sd"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {list(GATES)}, got {self.gate!r}")
        if not isinstance(self.gate_max_width, (int, float)) or isinstance(self.gate_max_width, bool) \
                or self.gate_max_width <= 0:
            raise ValueError(f"gate_max_width must be a positive number, got {self.gate_max_width!r}")
        for name in ("used_fraction", "mask_prob", "nu"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
                raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
        for name in ("one_sided_gate", "builtin_reference"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name in ("target_modules", "detector_target_modules"):
            value = getattr(self, name)
            if isinstance(value, str) or not value or not all(isinstance(m, str) and m for m in value):
                raise ValueError(f"{name} must be a non-empty list of module names, got {value!r}")
        if isinstance(self.options, str) or not all(isinstance(o, str) and o.strip() for o in self.options):
            raise ValueError(f"options must be a list of non-empty strings, got {self.options!r}")
        if self.options and len(set(o.strip() for o in self.options)) < 2:
            raise ValueError(f"options must hold at least two distinct options, got {self.options!r}")
        if self.min_forget_examples < 4:
            raise ValueError(f"min_forget_examples must be at least 4 (two per split side), "
                             f"got {self.min_forget_examples!r}")
