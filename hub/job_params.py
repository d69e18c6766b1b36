"""Per-kind job parameters, validated by the API before anything is queued (torch-free, so the API stays light).

Each kind is a Pydantic model with `extra="forbid"`, so a typo in a parameter name is a 422 naming it rather than a
silently ignored field and a job that runs with defaults. `validate_job` also checks the shape of inputs and output;
whether the input versions exist is the job service's check (it needs the database).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The built-in task names of lora.tasks (kept here so the API need not import torch; a test pins them equal).
BUILTIN_TASKS = ("boolean_expressions", "caesar_shift", "object_counting", "two_step_arithmetic", "word_sorting")
MERGE_METHODS = ("lego", "linear", "cat", "svd", "ties", "dare_linear", "dare_ties")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REF = re.compile(rf"^{_NAME}/{_NAME}(@[A-Za-z0-9._-]+)?$")


class JobParamsError(ValueError):
    pass


def _check_task(spec: str) -> str:
    if not spec.startswith("builtin:"):
        raise ValueError(f"task must look like builtin:<name>?n=256&seed=0, got {spec!r}")
    name = spec.removeprefix("builtin:").split("?", 1)[0]
    if name not in BUILTIN_TASKS:
        raise ValueError(f"unknown built-in task {name!r}; one of {', '.join(BUILTIN_TASKS)}")
    return spec


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TaskOrDataset(_Params):
    task: str | None = None
    dataset: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.task is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'task' (builtin:...) or 'dataset' (namespace/name@version)")
        if self.task is not None:
            _check_task(self.task)
        if self.dataset is not None and not _REF.match(self.dataset):
            raise ValueError(f"dataset must be namespace/name[@version], got {self.dataset!r}")
        return self


class TrainParams(TaskOrDataset):
    base: str = Field(min_length=1)
    steps: int = Field(100, ge=1, le=100_000)
    rank: int = Field(8, ge=1, le=1024)
    lora_alpha: float = Field(16.0, gt=0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    lr: float = Field(2e-4, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=1024)
    seed: int = 0
    checkpoint_every: int | None = Field(None, ge=1)
    max_len: int = Field(256, ge=8, le=8192)
    model_config = ConfigDict(extra="forbid", strict=False)  # allow 16 for lora_alpha=16.0


class EvaluateParams(TaskOrDataset):
    limit: int | None = Field(None, ge=1, le=100_000)
    max_new_tokens: int | None = Field(None, ge=1, le=1024)


class MergeParams(_Params):
    method: Literal["lego", "linear", "cat", "svd", "ties", "dare_linear", "dare_ties"] = "lego"
    weights: list[float] | None = None
    rank: int | None = Field(None, ge=1, le=4096)
    density: float | None = Field(None, gt=0, le=1)
    majority_sign_method: Literal["total", "frequency"] = "total"
    seed: int = 0
    n_init: int = Field(4, ge=1, le=100)
    max_iter: int = Field(50, ge=1, le=10_000)
    parameter_reweighting: bool = True
    output_reweighting: bool = True
    model_config = ConfigDict(extra="forbid", strict=False)


class NoopParams(_Params):
    seconds: float = Field(0.0, ge=0, le=600)
    model_config = ConfigDict(extra="forbid", strict=False)


# kind -> (params model, inputs (min, max), needs an output adapter, default queue)
KINDS: dict[str, tuple[type[BaseModel], tuple[int, int], bool, str]] = {
    "train": (TrainParams, (0, 0), True, "gpu"),
    "evaluate": (EvaluateParams, (1, 1), False, "gpu"),
    "merge": (MergeParams, (2, 64), True, "cpu"),
    "noop": (NoopParams, (0, 0), False, "cpu"),
}
KIND_NAMES = tuple(KINDS)


def queue_for(kind: str, routes: str | None = None) -> str:
    """Queue of a kind: the default above, overridden by ADAPTARIUM_QUEUE_ROUTES like 'merge=gpu,train=cpu'."""
    for item in filter(None, (routes or "").split(",")):
        name, _, queue = item.partition("=")
        if name.strip() == kind and queue.strip():
            return queue.strip()
    return KINDS[kind][3]


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "params"
        parts.append(f"params.{where}: {error['msg']}" if error["loc"] else error["msg"])
    return "; ".join(parts)


def validate_job(kind: str, inputs: list, params: dict, output: dict | None) -> dict:
    """Normalised params (defaults filled in) or JobParamsError with what was wrong."""
    if kind not in KINDS:
        raise JobParamsError(f"unknown job kind {kind!r}; known kinds: {', '.join(KIND_NAMES)}")
    model, (low, high), needs_output, _ = KINDS[kind]
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise JobParamsError("inputs must be a list of version references")
    if not low <= len(inputs) <= high:
        want = f"exactly {low}" if low == high else f"{low} to {high}"
        raise JobParamsError(f"a {kind} job takes {want} input version(s), got {len(inputs)}")
    for ref in inputs:
        if not _REF.match(ref):
            raise JobParamsError(f"input {ref!r} is not namespace/name[@version]")
    if needs_output:
        if not isinstance(output, dict) or set(output) != {"namespace", "name"}:
            raise JobParamsError(f'a {kind} job needs output {{"namespace": ..., "name": ...}}')
        for key in ("namespace", "name"):
            value = output[key]
            if not isinstance(value, str) or not re.match(rf"^{_NAME}$", value) or ".." in value:
                raise JobParamsError(f"output.{key} {value!r} is not a valid name ([A-Za-z0-9._-], no '..')")
    elif output not in (None, {}):
        raise JobParamsError(f"a {kind} job publishes no adapter; drop 'output'")
    if not isinstance(params, dict):
        raise JobParamsError("params must be an object")
    try:
        parsed = model.model_validate(params)
    except ValidationError as exc:
        raise JobParamsError(_describe(exc)) from None
    if kind == "merge" and parsed.weights is not None and len(parsed.weights) != len(inputs):
        raise JobParamsError(f"params.weights has {len(parsed.weights)} entries for {len(inputs)} inputs")
    return parsed.model_dump()
