"""Per-kind job parameters, validated by the API before anything is queued (torch-free, so the API stays light).

A kind's params model is its method's own config (`lora.config.TrainConfig`, `transfer.config.KitConfig`, ...,
pydantic models carrying each field's limits and description) extended only by the registry objects the job names.
So the API accepts exactly what the method takes: there is no second copy of a field, a default or a limit to drift.
On top, `Params` makes the API strict: unknown fields and non-finite numbers are refused, and "8" is not 8.
Fields that name registry objects are typed with `ref(...)`: the marker says which kind of object they name and the
lineage relation the job's result gets to it, and `hub.job_kinds` reads the markers to authorise, resolve and link
every reference, whatever the kind. Rules that tie params to the job's inputs are `check_inputs`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from generation.config import GenerateConfig, GeneratorConfig
from lora.config import ESSENTIAL, MAX_SEED, MAX_TEXT, TrainConfig
from merging.config import MergeConfig
from transfer.config import KitConfig, TransferConfig
from unlearning.config import UnlearnConfig

# The built-in task names of lora.tasks (kept here so the API need not import torch; a test pins them equal).
BUILTIN_TASKS = ("add_constant", "boolean_expressions", "caesar_shift", "object_counting", "two_step_arithmetic",
                 "word_sorting")
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
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
    return Field(0, ge=0, le=MAX_SEED, description="seed of every random choice")


# "pick": the form offers the built-in tasks (GET /job-kinds lists them) for a field of this type
Task = Annotated[str, Field(max_length=MAX_TEXT, json_schema_extra={"pick": "builtin_task"}),
                 AfterValidator(check_task)]
BASE = "the registered base model"


class Params(BaseModel):
    """Base of every kind's params: unknown fields and non-finite numbers are refused, and types are strict ("8" is
    not 8 and true is not 1: a coerced value is a guess about what the caller meant; an int is still a float)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    def check_inputs(self, inputs: list[str]) -> None:
        """Rules that tie params to the job's inputs (raise ValueError); none by default."""


def params_for(config: type[BaseModel], base: type[Params] | None = None, **references) -> type[Params]:
    """A kind's params model made on its spec line: the method's config plus the registry objects the job names, each
    `name=(ref(...), Field(...))`, as strict as every kind's params. Write a class instead where params must agree
    with each other or with the job's inputs beyond what the config checks."""
    return create_model(f"{config.__name__.removesuffix('Config')}Params", __base__=(base or Params, config),
                        __module__=__name__, **references)


class TaskOrDataset(Params):
    task: Task | None = Field(None, description="a built-in task, builtin:<name>?n=256&seed=0",
                              json_schema_extra=ESSENTIAL)
    dataset: ref("dataset", relation="trained_from") | None = Field(None, description="a dataset version "
                                                                    "(namespace/name@version)",
                                                                    json_schema_extra=ESSENTIAL)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.task is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'task' (builtin:...) or 'dataset' (namespace/name@version)")
        return self


class TrainParams(TaskOrDataset, TrainConfig):
    """lora.config.TrainConfig, plus the base to train on and the data. With one input adapter the LoRA starts from
    its weights and keeps its rank, alpha and target modules (continued training: a benchmark's convergence check
    extends a run instead of repeating it); without one it starts fresh."""

    base: ref("base") = Field(description=BASE, json_schema_extra=ESSENTIAL)
    transfer_kit: bool = Field(False, description="also make a Trans-LoRA kit (discriminator and seeds, default "
                               "KitConfig) at the end, while the data is at hand")

    def check_inputs(self, inputs: list[str]) -> None:
        if inputs and self.transfer_kit:
            raise ValueError("transfer_kit: a kit is made for an adapter trained from scratch here; for a continued "
                             "one, run a transfer_kit job on the result")


class EvaluateParams(TaskOrDataset):
    """Scores an input version (into its metrics), or with no input a base model alone (`base`; result data only).
    An O3 (unlearned) version is scored with its gate unless gate is "off" (the plain PEFT files); "calibrated" /
    "paper" put that gate on every request's detector (the ablation). A routed merge is scored routed (every item
    to its expert) unless gate is "off" (its plain PEFT files, the experts' cat merge)."""

    base: ref("base") | None = Field(None, description=BASE + " to score alone (no input version)",
                                     json_schema_extra=ESSENTIAL)
    gate: Literal["auto", "off", "calibrated", "paper"] = Field("auto", description='O3 versions: "auto" (each '
                                                                'detector\'s own gate), "off", or "calibrated" / '
                                                                '"paper" on every detector; routed merges: '
                                                                '"off" scores the plain files, not routed')
    split: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                              description='a built-in task\'s "train" or "test" (default); a dataset\'s rows whose '
                              '"split" field has this value (default: every row)')
    limit: int | None = Field(None, ge=1, le=100_000, description="score at most this many examples")
    max_new_tokens: int | None = Field(None, ge=1, le=1024, description="longest completion, in tokens")

    @model_validator(mode="after")
    def _builtin_splits(self):
        if self.task is not None and self.split not in (None, "train", "test"):
            raise ValueError(f"split: a built-in task has the splits train and test, not {self.split!r}")
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if bool(inputs) == (self.base is not None):
            raise ValueError("evaluate takes one input version, or no input and params.base (the base alone)")


class MergeParams(Params, MergeConfig):
    """merging.config.MergeConfig, plus the example sets a fitted merge scores (one per input)."""

    fit: list[ref("dataset", relation="fitted_on", builtin=True)] | None = Field(
        None, min_length=1, max_length=64, description="a few examples per input to fit the merge's coefficients on "
        "(route: the router's examples): a dataset or builtin:<task>?n=16 per input, in the inputs' order")

    @model_validator(mode="after")
    def _fit_starts_within_bound(self):
        if self.fit is not None and self.weights is not None and max(map(abs, self.weights)) > self.fit_bound:
            raise ValueError(f"fitting starts from params.weights, which must lie within ±fit_bound ({self.fit_bound})")
        return self

    @model_validator(mode="after")
    def _routing_examples_need_fit(self):
        if self.method == "route" and self.router == "examples" and self.fit is None:
            raise ValueError('method "route" with router "examples" needs fit: a few examples per input (the '
                             'router\'s prototypes); router "arrow" works from the adapters alone')
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if self.weights is not None and len(self.weights) != len(inputs):
            raise ValueError(f"params.weights has {len(self.weights)} entries for {len(inputs)} inputs")
        if self.fit is not None and len(self.fit) != len(inputs):
            raise ValueError(f"params.fit has {len(self.fit)} entries for {len(inputs)} inputs: give one example "
                             "set (a dataset or builtin:<task>) per input, in the inputs' order")


class NoopParams(Params):
    seconds: float = Field(0.0, ge=0, le=600, description="how long the job waits")


# transfer.config.KitConfig for the input adapter, made from the real task data: a dataset version or a built-in task
TransferKitParams = params_for(KitConfig, base=TaskOrDataset)


class TransferParams(Params, TransferConfig):
    """transfer.config.TransferConfig, plus the target base, the kit (found through lineage when not given) and an
    optional evaluation on the target base."""

    target_base: ref("base") = Field(description="the base the adapter moves to", json_schema_extra=ESSENTIAL)
    kit: ref("adapter", relation="filtered_by") | None = Field(None, description="the source's transfer kit "
                                                               "(default: the newest one made for it)")
    evaluate: ref("dataset", builtin=True) | None = Field(None, description="score the result on this dataset or "
                                                          "builtin:<task> (its test split)")
    eval_limit: int | None = Field(None, ge=1, le=100_000, description="score at most this many examples")


class UnlearnParams(Params, UnlearnConfig):
    """unlearning.config.UnlearnConfig, plus the forget set (a dataset version or a built-in task: its train split)
    and optional reference inputs (retained data) for the detector's AUROC in the report."""

    forget: ref("dataset", relation="forgets", builtin=True) = Field(description="what to forget: a dataset or "
                                                                     "builtin:<task>", json_schema_extra=ESSENTIAL)
    reference: ref("dataset", builtin=True) | None = Field(None, description="retained data: its inputs must keep "
                                                           "the gate closed")


MAX_PROMPTS, MAX_PROMPT_CHARS = 64, 4000


class InferParams(Params):
    """Completions from a version (gated when it is an O3 version, routed when it is a routed merge) or, with no
    input, from `base` alone."""

    base: ref("base") | None = Field(None, description=BASE + " to run alone (no input version)",
                                     json_schema_extra=ESSENTIAL)
    prompts: list[Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]] = Field(
        min_length=1, max_length=MAX_PROMPTS, description="prompts to complete", json_schema_extra=ESSENTIAL)
    max_new_tokens: int = Field(64, ge=1, le=512, description="longest completion, in tokens")
    temperature: float = Field(0.0, ge=0, le=10, description="sampling temperature (0: greedy)")
    seed: int = Seed()
    gate: Literal["auto", "off", "calibrated", "paper"] = Field("auto", description='O3 versions: "auto", "off", '
                                                                '"calibrated" or "paper"; routed merges: "off" '
                                                                'runs the plain files, not routed')

    def check_inputs(self, inputs: list[str]) -> None:
        if bool(inputs) == (self.base is not None):
            raise ValueError("infer takes one input version, or no input and params.base (the base alone)")


class TrainGeneratorParams(Params, GeneratorConfig):
    """generation.config.GeneratorConfig. Inputs: the family's adapter versions, each trained with
    checkpoint_every (its trajectory). Hidden-state conditions come from each input's own training data
    (train/source in its metrics); text conditions from `descriptions`, one per input."""

    descriptions: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = Field(
        None, max_length=64, description='condition "text": one task description per input')

    @model_validator(mode="after")
    def _text_needs_descriptions(self):
        if self.condition == "text" and not self.descriptions:
            raise ValueError('condition "text" needs descriptions: one task description per input')
        return self

    def check_inputs(self, inputs: list[str]) -> None:
        if self.descriptions is not None and len(self.descriptions) != len(inputs):
            raise ValueError(f"params.descriptions has {len(self.descriptions)} entries for {len(inputs)} inputs")


class GenerateParams(Params, GenerateConfig):
    """generation.config.GenerateConfig, plus the condition: task examples (a dataset or a built-in task; needed for
    a hidden-state generator and for likelihood selection) or a description (a text generator)."""

    examples: ref("dataset", relation="conditioned_on", builtin=True) | None = Field(
        None, description="a few examples of the task: a dataset or builtin:<task>", json_schema_extra=ESSENTIAL)
    description: str | None = Field(None, min_length=1, max_length=2000, description="the task in words (a text "
                                     "generator)", json_schema_extra=ESSENTIAL)

    @model_validator(mode="after")
    def _selection_needs_examples(self):
        if self.select == "likelihood" and self.examples is None:
            raise ValueError('select "likelihood" needs examples to score the candidates on')
        if self.examples is None and self.description is None:
            raise ValueError("give examples (a dataset or builtin:<task>) or a description of the task")
        return self
