"""What a merge is asked to do. One plain dataclass for every method (mergekit-style): each method reads the fields
it needs and ignores the rest, so a stored merge request is one JSON object whatever the method."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class MergeConfig:
    method: str = "lego"
    # per-input weights (linear, cat, svd, ties, dare_*, and lego folds them into each unit's b); None = all 1.0
    weights: list[float] | None = None
    # output rank: LEGO's k (default: the largest input rank) and PEFT's svd_rank (default: the largest input rank)
    rank: int | None = None
    # ties / dare_*: fraction of entries kept, in (0, 1]
    density: float | None = None
    majority_sign_method: str = "total"  # "total" (sum of values) or "frequency" (count of signs), as in PEFT
    # k-means for LEGO, and the torch seed for DARE's random masks
    seed: int = 0
    n_init: int = 4
    max_iter: int = 50
    # LEGO dual reweighting
    parameter_reweighting: bool = True
    output_reweighting: bool = True
    # "separate" (default): rescale a centroid's a-part to its members' mean |a| and its b-part to their mean |b|.
    # The split between A and B is arbitrary in LoRA (B carries the folded alpha/r), so a joint norm over [a; b]
    # would be dominated by whichever side happens to be larger; "joint" is kept to measure that choice.
    parameter_norm: str = "separate"
    # fitted coefficients (merging.fit, LoraHub-style), used only by fit_merge: which coefficients are searched
    # ("input": one weight per input, any method; "cluster": LEGO only, one scale per merged rank-1 unit of every
    # module, many more dimensions), how many loss evaluations CMA-ES may spend (the unfitted start included; 40 is
    # LoraHub's default and enough for 2-8 per-input weights), the weight of the L1 term on the coefficients'
    # distance from the unfitted merge's, CMA-ES's initial step, the coefficients' range, and how many examples
    # per input are scored (the first ones)
    fit_granularity: str = "input"
    fit_budget: int = 40
    fit_l1: float = 0.05
    fit_sigma: float = 0.3
    fit_bound: float = 3.0
    fit_examples: int = 20

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MergeConfig":
        from merging.errors import MergeError

        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise MergeError(f"unknown merge config field(s): {sorted(unknown)}")
        return cls(**data)
