"""What an unlearning request is asked to do: one torch-free pydantic config, which is also the `unlearn` job's
params (the hub's params model extends it with the forget set and the reference data), so the API accepts exactly
the range the method takes.

Defaults follow methods.md (O3 section) where it fixes a value (λ = 0.1, r = 8, α = 16, 80/20 split, 15 % masking,
ν = 0.1, ζ = 10); where it leaves a choice open the comment beside the field says why we picked the value.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lora.config import ESSENTIAL, MAX_COUNT, MAX_ITEMS, MAX_SEED, LoraFields, Text, module_list

RELABEL_MODES = ("refusal", "wrong_option")
GATES = ("calibrated", "paper")


class UnlearnConfig(LoraFields):
    # ---------------------------------------------------------------- the unlearning LoRA (methods.md O3 step 1)
    # unlearning/relabelling.py says how the options of an example are found
    relabel: Literal[RELABEL_MODES] = Field("refusal", description='"refusal": every completion becomes a refusal; '
                                            '"wrong_option": multiple choice, every completion becomes another option',
                                            json_schema_extra=ESSENTIAL)
    options: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS, strict=False,
                                description="wrong_option: one option list for the whole forget set (empty: found "
                                "per example)")
    lambda_orth: float = Field(0.1, ge=0, le=1e6, description="weight of the orthogonality term (the paper's 0.1)")
    # 1e-3 rather than the SFT default 2e-4: a forget set is small and must be overwritten in ~100 steps
    lr: float = Field(1e-3, ge=0, le=1, description="the unlearning LoRA's learning rate", json_schema_extra=ESSENTIAL)
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the LoRA init, batch order, relabel draws, the "
                      "80/20 split and the detector's masks")

    # ---------------------------------------------------------------- the OOD detector (methods.md O3 step 2)
    used_fraction: float = Field(0.8, gt=0, lt=1, description="share of the forget set that fits the detector; the "
                                 "rest calibrates the gate")
    mask_prob: float = Field(0.15, gt=0, lt=1, description="masked-LM: fraction of masked tokens (BERT's)")
    detector_rank: int = Field(8, ge=1, le=1024, description="rank of the detector's LoRA on the encoder")
    detector_alpha: float = Field(16.0, gt=0, le=1e6, description="alpha of the detector's LoRA")
    detector_target_modules: list[Text] = module_list(["query", "value"], "encoder modules the detector's LoRA wraps")
    # MiniLM forward+backward is cheap; 100 steps take seconds on a CPU
    detector_steps: int = Field(100, ge=1, le=100_000, description="detector training steps")
    detector_lr: float = Field(5e-4, gt=0, le=1, description="detector learning rate")
    # the contrastive entropy term needs several inputs per batch to contrast
    detector_batch_size: int = Field(8, ge=2, le=1024, description="detector batch size (at least 2: it contrasts)")
    detector_max_len: int = Field(128, ge=8, le=512, description="detector input tokens (MiniLM saw 128)")
    gamma: float = Field(1.0, ge=0, le=1e6, description="weight of the cosine (local) term against the "
                         "Mahalanobis (global) term per layer")
    nu: float = Field(0.1, gt=0, le=1, description="one-class SVM ν (the paper's 0.1)")
    zeta: float = Field(10.0, gt=0, le=1e6, description="soft-weight sharpness ζ (the paper's 10)")
    # methods.md's two-sided formula would unload the LoRA for inputs that look *more* like the forget set than its
    # own examples (unlearning/gate.py)
    one_sided_gate: bool = Field(True, description="inputs scoring above the forget set's typical score keep "
                                 "weight 1 (false: the paper's two-sided formula)")
    # "calibrated" is exactly 0 far from every forget set (lora/gating.py); "paper" never goes below σ(−2) ≈ 0.12
    gate: Literal[GATES] = Field("calibrated", description='"calibrated": a gate fitted on held-out forget and '
                                 'reference inputs; "paper": the soft weight of the paper (the ablation)')
    gate_tail_sd: float = Field(2.33, ge=0, le=100, description="calibrated gate: fully open from this many "
                                "standard deviations below the held-out forget inputs' mean (2.33: ~1 % tail)")
    gate_max_width: float = Field(2.0, gt=0, le=100, description="calibrated gate: widest ramp from closed to open "
                                  "(normalised units)")
    builtin_reference: bool = Field(True, description="calibrated gate: also close it for everyday prompts and the "
                                    "built-in tasks' prompts (unlearning/reference.py)")
    # with the 80/20 split, 10 leaves 8 to fit the detector and 2 to calibrate the gate (a standard deviation needs
    # two); below 4 one side of the split would hold fewer than two
    min_forget_examples: int = Field(10, ge=4, le=MAX_COUNT, description="the fewest forget examples a request "
                                     "may have (the detector's 80/20 split needs two on each side)")

    @model_validator(mode="after")
    def _two_distinct_options(self):
        if self.options and len({o.strip() for o in self.options}) < 2:
            raise ValueError(f"options must hold at least two distinct options, got {self.options!r}")
        return self
