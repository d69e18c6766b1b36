"""What a merge is asked to do: one torch-free pydantic config for every method (mergekit-style; each method reads
the fields it needs), which is also the `merge` job's params (the hub's model adds the fit example sets). The
method names come from merging.registry, and so does what each method needs (ties and dare need a density)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lora.config import ESSENTIAL, MAX_SEED, MethodConfig
from merging.registry import METHODS

MergeMethodName = Literal[tuple(METHODS)]


class MergeConfig(MethodConfig):
    method: MergeMethodName = Field("lego", description="merge method: " + "; ".join(
        f"{name}: {m.summary}" for name, m in METHODS.items()), json_schema_extra=ESSENTIAL)
    # lego folds the weights into each unit's b
    weights: list[float] | None = Field(None, min_length=1, max_length=64, strict=False,
                                        description="one weight per input (none: all 1.0)",
                                        json_schema_extra=ESSENTIAL)
    rank: int | None = Field(None, ge=1, le=4096, description="output rank: LEGO's k, svd's rank (none: the "
                             "largest input rank)")
    density: float | None = Field(None, gt=0, le=1, description="ties, dare_*: fraction of entries kept")
    majority_sign_method: Literal["total", "frequency"] = Field("total", description='ties, dare_ties: sign '
                                                                 'election by "total" (sum) or "frequency" (count)')
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of LEGO's k-means and DARE's random masks")
    n_init: int = Field(4, ge=1, le=100, description="LEGO: k-means restarts")
    max_iter: int = Field(50, ge=1, le=10_000, description="LEGO: k-means iterations")
    parameter_reweighting: bool = Field(True, description="LEGO: rescale each centroid to its members' norms")
    output_reweighting: bool = Field(True, description="LEGO: rescale the output to the inputs' output norm")
    # The split between A and B is arbitrary in LoRA (B carries the folded alpha/r), so a joint norm over [a; b]
    # would be dominated by whichever side happens to be larger; "joint" is kept to measure that choice.
    parameter_norm: Literal["separate", "joint"] = Field("separate", description='LEGO: rescale a centroid\'s a and '
                                                         'b parts "separate"ly or "joint"ly')
    # fitted coefficients (merging.fit, LoraHub-style), used only by fit_merge
    fit_granularity: Literal["input", "cluster"] = Field("input", description='fit: one weight per "input", or '
                                                         'one scale per LEGO "cluster" (many more dimensions)')
    # 40 is LoraHub's default and enough for 2-8 per-input weights
    fit_budget: int = Field(40, ge=1, le=2000, description="fit: loss evaluations CMA-ES may spend, the unfitted "
                            "start included")
    fit_l1: float = Field(0.05, ge=0, le=100, description="fit: weight of the L1 term on the coefficients' distance "
                          "from the unfitted merge's")
    fit_sigma: float = Field(0.3, gt=0, le=10, description="fit: CMA-ES's initial step")
    fit_bound: float = Field(3.0, gt=0, le=100, description="fit: coefficients stay within ±fit_bound")
    fit_examples: int = Field(20, ge=1, le=256, description="fit: examples scored per input (the first ones)")
    # the routed merge (merging.route): where its router's scores come from, and from which top probability an input
    # goes to one expert alone
    router: Literal["examples", "arrow"] = Field("examples", description='route: "examples" (prototypes of the fit '
                                                 'examples in the sentence encoder\'s space; needs fit) or "arrow" '
                                                 "(each adapter's top singular vectors; calibrated on fit if given)")
    route_confidence: float = Field(0.9, gt=0, le=1, description="route: an input whose top routing probability "
                                    "reaches this goes to that expert alone; below it, a soft mix of the experts")

    @model_validator(mode="after")
    def _what_the_method_needs(self):
        for name, why in METHODS[self.method].needs.items():
            if getattr(self, name) is None:
                raise ValueError(f"method {self.method!r} needs {why}")
        if self.fit_granularity == "cluster" and self.method != "lego":
            raise ValueError(f'fit_granularity "cluster" needs method "lego" (its clusters), got {self.method!r}')
        return self
