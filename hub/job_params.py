"""Per-kind job parameters, validated by the API before anything is queued (torch-free, so the API stays light).

Each kind's params are a Pydantic model with `extra="forbid"` (a typo is a 422 naming the field, not a silently
ignored setting) and no NaN/Infinity (JSON parsers accept them; a LoRA trained with alpha=Infinity is all NaN).
Fields that name registry objects are typed with `ref(...)`: the marker says which kind of object they name and the
lineage relation the job's result gets to it, and `hub.job_kinds` reads the markers to authorise, resolve and link
every reference, whatever the kind. Hyper-parameters mirror the method's own config dataclass (`KindSpec.config`);
tests/workers/test_job_kinds.py fails when a field or a default drifts between the two.
Cross-field rules (ties needs a density) are model validators here, so they fail at submit with a 422.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# The built-in task names of lora.tasks (kept here so the API need not import torch; a test pins them equal).
BUILTIN_TASKS = ("add_constant", "boolean_expressions", "caesar_shift", "object_counting", "two_step_arithmetic",
                 "word_sorting")
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
# Bounds the worker can take: a seed goes to numpy and torch, and numpy's legacy seeding takes at most 2**32-1 (a seed
# of 10**30 passed submit and failed in the worker); free-form strings and lists are bounded so a job's params stay
# small (a 1 MB `options` list was accepted).
MAX_SEED = 2**32 - 1
MAX_COUNT = 10_000_000  # any other count without a tighter limit of its own
MAX_TEXT, MAX_ITEMS = 500, 256
Text = Annotated[str, Field(max_length=MAX_TEXT)]
REF = re.compile(rf"^{NAME}/{NAME}(@[A-Za-z0-9._-]{{1,64}})?$")


class JobParamsError(ValueError):
    pass


@dataclass(frozen=True)
class Ref:
    """Marks a params field whose value names a registry object ("adapter", "dataset", "generator" or "base").

    relation: the lineage edge from the job's result to that object (None: no edge).
    builtin: the field may instead hold "builtin:<task>?..." (a procedural task; no registry object)."""

    object: str
    relation: str | None = None
    builtin: bool = False


def check_task(spec: str) -> str:
    if not spec.startswith("builtin:"):
        raise ValueError(f"task must look like builtin:<name>?n=256&seed=0, got {spec!r}")
    name = spec.removeprefix("builtin:").split("?", 1)[0]
    if name not in BUILTIN_TASKS:
        raise ValueError(f"unknown built-in task {name!r}; one of {', '.join(BUILTIN_TASKS)}")
    return spec


def _checker(marker: Ref):
    def check(value: str) -> str:
        if marker.builtin and value.startswith("builtin:"):
            return check_task(value)
        if marker.object == "base":
            if not value.strip():
                raise ValueError("base name is empty")
            return value
        if not REF.match(value):
            hint = " or builtin:<task>" if marker.builtin else ""
            raise ValueError(f"must be namespace/name[@version]{hint}, got {value!r}")
        return value

    return check


def ref(object: str, relation: str | None = None, builtin: bool = False):
    """The type of a params field naming a registry object: a string checked for shape, carrying its Ref marker."""
    marker = Ref(object, relation, builtin)
    return Annotated[str, Field(max_length=MAX_TEXT), marker, AfterValidator(_checker(marker))]


def Seed():
    return Field(0, ge=0, le=MAX_SEED)


Task = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(check_task)]


class Params(BaseModel):
    """Base of every kind's params: unknown fields and non-finite numbers are refused, and types are strict ("8" is
    not 8 and true is not 1: a coerced value is a guess about what the caller meant; an int is still a float)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    def check_inputs(self, inputs: list[str]) -> None:
        """Rules that tie params to the job's inputs (raise ValueError); none by default."""


class TaskOrDataset(Params):
    task: Task | None = None
    dataset: ref("dataset", relation="trained_from") | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.task is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'task' (builtin:...) or 'dataset' (namespace/name@version)")
        return self


class LoraFields(Params):
    """The LoRA every method trains (train's adapter, a kit's discriminator, a transfer's student, the unlearning
    LoRA): the same fields and defaults as lora.training.TrainConfig."""

    rank: int = Field(8, ge=1, le=1024)
    lora_alpha: float = Field(16.0, gt=0)
    target_modules: list[Text] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1, max_length=MAX_ITEMS)
    steps: int = Field(100, ge=1, le=100_000)
    lr: float = Field(2e-4, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=1024)
    max_len: int = Field(256, ge=8, le=8192)
    seed: int = Seed()


class TrainParams(TaskOrDataset, LoraFields):
    """lora.training.TrainConfig, plus the base to train on and the data."""

    base: ref("base")
    grad_accum: int = Field(1, ge=1, le=1024)
    warmup: int = Field(0, ge=0, le=100_000)
    weight_decay: float = Field(0.0, ge=0)
    checkpoint_every: int | None = Field(None, ge=1, le=100_000)
    use_rslora: bool = False
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    # also make a Trans-LoRA kit (discriminator + seeds, default KitConfig) at the end, while the data is at hand
    transfer_kit: bool = False

    @model_validator(mode="after")
    def _warmup_within_steps(self):
        if self.warmup > self.steps:
            raise ValueError(f"warmup ({self.warmup}) must not exceed steps ({self.steps})")
        return self


class EvaluateParams(TaskOrDataset):
    """Scores an input version (into its metrics), or with no input a base model alone (`base`; result data only).
    An O3 (unlearned) version is scored with its gate unless gate is "off" (the plain PEFT files); "calibrated" /
    "paper" put that gate on every request's detector (the ablation)."""

    base: ref("base") | None = None
    gate: Literal["auto", "off", "calibrated", "paper"] = "auto"
    # a built-in task's "train" or "test" (default); a dataset's rows whose "split" field has this value (default:
    # every row)
    split: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    limit: int | None = Field(None, ge=1, le=100_000)
    max_new_tokens: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="after")
    def _builtin_splits(self):
        if self.task is not None and self.split not in (None, "train", "test"):
            raise ValueError(f"split: a built-in task has the splits train and test, not {self.split!r}")
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if bool(inputs) == (self.base is not None):
            raise ValueError("evaluate takes one input version, or no input and params.base (the base alone)")


class MergeParams(Params):
    """merging.MergeConfig."""

    method: Literal["lego", "linear", "cat", "svd", "ties", "dare_linear", "dare_ties"] = "lego"
    weights: list[float] | None = Field(None, max_length=64)
    rank: int | None = Field(None, ge=1, le=4096)
    density: float | None = Field(None, gt=0, le=1)
    majority_sign_method: Literal["total", "frequency"] = "total"
    seed: int = Seed()
    n_init: int = Field(4, ge=1, le=100)
    max_iter: int = Field(50, ge=1, le=10_000)
    parameter_reweighting: bool = True
    output_reweighting: bool = True
    parameter_norm: Literal["separate", "joint"] = "separate"
    # fitted coefficients: a few examples per input (a dataset version or builtin:<task>, one per input, in order);
    # without `fit` the fit_* fields are unused. merging.config.MergeConfig documents each field and its default.
    fit: list[ref("dataset", relation="fitted_on", builtin=True)] | None = Field(None, min_length=1, max_length=64)
    fit_granularity: Literal["input", "cluster"] = "input"
    fit_budget: int = Field(40, ge=1, le=2000, description="loss evaluations CMA-ES may spend, the unfitted start "
                                                            "included")
    fit_l1: float = Field(0.05, ge=0, le=100)
    fit_sigma: float = Field(0.3, gt=0, le=10)
    fit_bound: float = Field(3.0, gt=0, le=100)
    fit_examples: int = Field(20, ge=1, le=256, description="examples scored per input (the first ones)")

    @model_validator(mode="after")
    def _cross_field_rules(self):
        if self.method in ("ties", "dare_linear", "dare_ties") and self.density is None:
            raise ValueError(f"method {self.method!r} needs a density in (0, 1]: the fraction of entries it keeps")
        if self.fit_granularity == "cluster" and self.method != "lego":
            raise ValueError(f'fit_granularity "cluster" needs method "lego" (its clusters), got {self.method!r}')
        if self.fit is not None and self.weights is not None and max(map(abs, self.weights)) > self.fit_bound:
            raise ValueError(f"fitting starts from params.weights, which must lie within ±fit_bound ({self.fit_bound})")
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if self.weights is not None and len(self.weights) != len(inputs):
            raise ValueError(f"params.weights has {len(self.weights)} entries for {len(inputs)} inputs")
        if self.fit is not None and len(self.fit) != len(inputs):
            raise ValueError(f"params.fit has {len(self.fit)} entries for {len(inputs)} inputs: give one example "
                             "set (a dataset or builtin:<task>) per input, in the inputs' order")


class NoopParams(Params):
    seconds: float = Field(0.0, ge=0, le=600)


class TransferKitParams(TaskOrDataset, LoraFields):
    """transfer.KitConfig (the discriminator and the seeds of a Trans-LoRA kit) for the input adapter, made from
    the real task data: a dataset version or a built-in task."""

    seeds: int = Field(5, ge=1, le=1000)
    task_name: str = Field("given", min_length=1, max_length=200)
    synthetic: int = Field(0, ge=0, le=100_000)
    heldout_fraction: float = Field(0.2, ge=0, lt=1)
    temperature: float = Field(1.0, gt=0, le=10)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1, le=2048)
    candidate_batch_size: int = Field(16, ge=1, le=1024)
    lr: float = Field(1e-3, gt=0, le=1)  # KitConfig's: a yes/no discriminator needs more than the LoRA default


class TransferParams(LoraFields):
    """transfer.TransferConfig, plus the target base, the kit (found through lineage when not given) and an
    optional evaluation on the target base."""

    target_base: ref("base")
    kit: ref("adapter", relation="filtered_by") | None = None
    evaluate: ref("dataset", builtin=True) | None = None
    eval_limit: int | None = Field(None, ge=1, le=100_000)
    data: Literal["filtered", "unfiltered", "seeds_only"] = "filtered"
    filter: Literal["calibrated", "rank", "fixed"] = "calibrated"
    calibration_quantile: float = Field(0.1, ge=0, lt=1)
    synthetic_size: int | None = Field(None, ge=1, le=100_000)
    synthetic_multiple: float = Field(1.0, gt=0, le=100)
    seeds: int | None = Field(None, ge=1, le=1000)
    max_attempts: int = Field(0, ge=0, le=10_000_000)
    give_up_after: int = Field(64, ge=1, le=MAX_COUNT)
    temperature: float = Field(1.0, gt=0, le=10)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1, le=2048)
    candidate_batch_size: int = Field(16, ge=1, le=1024)
    label_max_new_tokens: int = Field(64, ge=1, le=2048)
    label_temperature: float = Field(0.0, ge=0, le=10)
    label_stop: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=lambda: ["\n"], max_length=16)
    measure_mmd: bool = True


class UnlearnParams(LoraFields):
    """unlearning.UnlearnConfig, plus the forget set (a dataset version or a built-in task: its train split) and
    optional reference inputs (retained data) for the detector's AUROC in the report."""

    forget: ref("dataset", relation="forgets", builtin=True)
    reference: ref("dataset", builtin=True) | None = None
    relabel: Literal["refusal", "wrong_option"] = "refusal"
    options: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    lambda_orth: float = Field(0.1, ge=0)
    lr: float = Field(1e-3, gt=0, le=1)  # a forget set is small and must be overwritten in ~100 steps
    used_fraction: float = Field(0.8, gt=0, lt=1)
    mask_prob: float = Field(0.15, gt=0, lt=1)
    detector_rank: int = Field(8, ge=1, le=1024)
    detector_alpha: float = Field(16.0, gt=0)
    detector_target_modules: list[Text] = Field(default_factory=lambda: ["query", "value"], min_length=1,
                                                max_length=MAX_ITEMS)
    detector_steps: int = Field(100, ge=1, le=100_000)
    detector_lr: float = Field(5e-4, gt=0, le=1)
    detector_batch_size: int = Field(8, ge=2, le=1024)
    detector_max_len: int = Field(128, ge=8, le=512)
    gamma: float = Field(1.0, ge=0)
    nu: float = Field(0.1, gt=0, le=1)
    zeta: float = Field(10.0, gt=0)
    one_sided_gate: bool = True
    gate: Literal["calibrated", "paper"] = "calibrated"
    gate_tail_sd: float = Field(2.33, ge=0, le=100)
    gate_max_width: float = Field(2.0, gt=0, le=100)
    builtin_reference: bool = True
    min_forget_examples: int = Field(10, ge=2, le=MAX_COUNT)


MAX_PROMPTS, MAX_PROMPT_CHARS = 64, 4000


class InferParams(Params):
    """Completions from a version (gated when it is an O3 version) or, with no input, from `base` alone."""

    base: ref("base") | None = None
    prompts: list[Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]] = Field(min_length=1, max_length=MAX_PROMPTS)
    max_new_tokens: int = Field(64, ge=1, le=512)
    temperature: float = Field(0.0, ge=0, le=10)
    seed: int = Seed()
    gate: Literal["auto", "off", "calibrated", "paper"] = "auto"

    def check_inputs(self, inputs: list[str]) -> None:
        if bool(inputs) == (self.base is not None):
            raise ValueError("infer takes one input version, or no input and params.base (the base alone)")


class TrainGeneratorParams(Params):
    """generation.GeneratorConfig. Inputs: the family's adapter versions, each trained with checkpoint_every (its
    trajectory). Hidden-state conditions come from each input's own training data (train/source in its metrics);
    text conditions from `descriptions`, one per input."""

    descriptions: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = Field(None, max_length=64)
    condition: Literal["hidden_state", "text"] = "hidden_state"
    condition_examples: int = Field(8, ge=1, le=256)
    condition_with_adapter: bool = False
    keep: float = Field(0.5, gt=0, le=1)
    basis: int = Field(8, ge=1, le=256)
    latent: int = Field(64, ge=1, le=4096)
    beta: float = Field(0.005, ge=0)
    beta_warmup: float = Field(0.3, ge=0, le=1)
    epochs: int = Field(200, ge=1, le=100_000)
    lr: float = Field(3e-3, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=4096)
    seed: int = Seed()

    @model_validator(mode="after")
    def _text_needs_descriptions(self):
        if self.condition == "text" and not self.descriptions:
            raise ValueError('condition "text" needs descriptions: one task description per input')
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if self.descriptions is not None and len(self.descriptions) != len(inputs):
            raise ValueError(f"params.descriptions has {len(self.descriptions)} entries for {len(inputs)} inputs")


class GenerateParams(Params):
    """generation.GenerateConfig, plus the condition: task examples (a dataset or a built-in task; needed for a
    hidden-state generator and for likelihood selection) or a description (a text generator)."""

    examples: ref("dataset", relation="conditioned_on", builtin=True) | None = None
    description: str | None = Field(None, min_length=1, max_length=2000)
    samples: int = Field(1, ge=1, le=64)
    select: Literal["none", "likelihood"] = "none"
    temperature: float = Field(1.0, ge=0, le=10)
    seed: int = Seed()

    @model_validator(mode="after")
    def _selection_needs_examples(self):
        if self.select == "likelihood" and self.examples is None:
            raise ValueError('select "likelihood" needs examples to score the candidates on')
        if self.examples is None and self.description is None:
            raise ValueError("give examples (a dataset or builtin:<task>) or a description of the task")
        return self
