"""Every job kind, declared once: the one list the API, the job service, the runner, the CLI and the dashboard read.

A kind is its method package, one module in `workers/kinds/` (same name as the kind) and one `KindSpec` line below
(its params model in `hub/job_params.py` is the method's own config plus the registry objects the job names).
Everything generic reads the spec: validation at submit, read access on every registry object the job names (inputs
and every `ref(...)` field of its params), existence and yanked checks, lineage and publication in the runner,
`GET /api/v1/job-kinds`, the dashboard's form and the CLI.
Torch-free, like the rest of hub/.
"""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from hub import job_checks as checks
from hub import job_params as p
from hub.job_params import NAME, REF, JobParamsError, Ref
from lora.config import MethodConfig

OUTPUTS = ("adapter", "dataset", "generator", "data", "metrics", "none")


@dataclass(frozen=True)
class KindSpec:
    name: str
    params: type[BaseModel]
    inputs: tuple[int, int]  # how many input versions, (min, max)
    output: str  # one of OUTPUTS: a new version of that object, data on the job, metrics onto the input, nothing
    queue: str  # default queue (gpu / cpu); ADAPTARIUM_QUEUE_ROUTES overrides
    summary: str
    relation: str | None = None  # lineage edge from the result to each input
    input_object: str = "adapter"  # what the inputs name
    # checks that need the registry, run at submit after every reference resolved: check(resolved) -> params
    # (possibly completed, e.g. with the kit found through lineage) or raises hub.registry.Invalid
    check: Callable[[Any], dict] | None = None
    # what each of a finished job's results names, in order, given its params (None: its one output; a kind
    # publishing several objects under one name, like a kit's adapter and seed dataset, says so here)
    published: Callable[[dict], tuple[str, ...]] | None = None
    # lineage edges its outputs carry beyond `relation` and its params' ref(...) relations (a kit's seed dataset is
    # seeds_for the source); the runner refuses to publish an edge the kind does not declare
    relations: tuple[str, ...] = ()

    @property
    def method_config(self) -> type[BaseModel] | None:
        """The method's own config the params extend (None for kinds with no method config: evaluate, infer)."""
        return next((c for c in self.params.__mro__[1:] if issubclass(c, MethodConfig)
                     and not c.__module__.startswith("hub.") and c is not MethodConfig), None)

    @property
    def publishes(self) -> bool:
        return self.output in ("adapter", "dataset", "generator")

    @property
    def produces(self) -> tuple[str, ...]:
        """Every object kind a job of this kind may publish (a kit: an adapter and a dataset)."""
        if not self.publishes:
            return ()
        objects = set(self.published({"transfer_kit": True})) if self.published else {self.output}
        return tuple(sorted(objects))

    @property
    def declared_relations(self) -> tuple[str, ...]:
        """Every lineage edge a result of this kind may carry: to its inputs (`relation`), to each registry object
        its params name (their ref(...) relations) and the extra ones its outputs declare (`relations`)."""
        names = {self.relation, *(m.relation for m in ref_fields(self.params).values()), *self.relations}
        return tuple(sorted(n for n in names if n))

    def check_published(self, object: str, relations) -> None:
        """Refuse a result the declaration does not allow: an object it does not produce, or an undeclared edge."""
        if object not in self.produces:
            raise ValueError(f"the {self.name} job published a result of type {object!r}, which its KindSpec does not declare "
                             f"(produces: {', '.join(self.produces) or 'nothing'})")
        undeclared = sorted(set(relations) - set(self.declared_relations))
        if undeclared:
            raise ValueError(f"the {self.name} job published lineage {', '.join(undeclared)}, which its KindSpec does "
                             f"not declare (declared: {', '.join(self.declared_relations)})")

    def result_objects(self, params: dict, count: int) -> list[str]:
        """The object each of `count` result refs names (evaluate's result is the version it scored)."""
        objects = self.published(params or {}) if self.published else (
            (self.output,) if self.publishes else (self.input_object,))
        return [objects[min(i, len(objects) - 1)] for i in range(count)]


def _kit_objects(params: dict) -> tuple[str, ...]:
    return ("adapter", "dataset")


def _train_objects(params: dict) -> tuple[str, ...]:
    return ("adapter", "adapter", "dataset") if params.get("transfer_kit") else ("adapter",)


KINDS: dict[str, KindSpec] = {spec.name: spec for spec in [
    KindSpec("train", p.TrainParams, (0, 1), "adapter", "gpu",
             "LoRA fine-tuning on a built-in task or a dataset (from scratch, or continuing an input adapter)",
             relation="continued_from", check=checks.train, published=_train_objects,
             relations=("discriminates_for", "seeds_for")),
    KindSpec("evaluate", p.EvaluateParams, (0, 1), "metrics", "gpu",
             "exact match of a version (or of a base alone) on a task's test split or a dataset; into its metrics"),
    KindSpec("merge", p.MergeParams, (2, 64), "adapter", "cpu", "LoRA-LEGO or a standard merge of adapters on one base",
             relation="merged_from"),
    KindSpec("noop", p.NoopParams, (0, 0), "none", "cpu", "waits; for dispatch tests and benchmarks"),
    KindSpec("transfer_kit", p.TransferKitParams, (1, 1), "adapter", "gpu",
             "Trans-LoRA kit for an adapter while its data exists: a discriminator adapter and a seed dataset",
             relation="discriminates_for", check=checks.transfer_kit,
             published=_kit_objects, relations=("seeds_for",)),
    KindSpec("transfer", p.TransferParams, (1, 1), "adapter", "gpu",
             "Trans-LoRA: move an adapter to another base with synthetic data filtered by its kit",
             relation="transferred_from", check=checks.transfer),
    KindSpec("unlearn", p.UnlearnParams, (1, 1), "adapter", "gpu",
             "O3: forget a set with an orthogonal unlearning LoRA and an OOD-gated soft load (next version)",
             relation="unlearned_from", check=checks.unlearn),
    KindSpec("infer", p.InferParams, (0, 1), "data", "gpu",
             "completions from a version (gated for O3 versions) or a base alone; in the job's result"),
    KindSpec("train_generator", p.TrainGeneratorParams, (2, 64), "generator", "gpu",
             "ICM-LoRA: a CVAE trained on a family of adapters' trajectories, to generate adapters for new tasks",
             relation="trained_from", check=checks.train_generator),
    KindSpec("generate", p.GenerateParams, (1, 1), "adapter", "gpu",
             "ICM-LoRA: a new adapter from a generator, conditioned on task examples or a description",
             relation="generated_by", input_object="generator",
             check=checks.generate),
]}
KIND_NAMES = tuple(KINDS)


@dataclass(frozen=True)
class Reference:
    """One registry object a job names: where (`inputs[0]`, `params.dataset`), what, and how its result links to it."""

    where: str
    object: str
    value: str
    relation: str | None

    @property
    def namespace(self) -> str | None:
        return self.value.split("/", 1)[0] if self.object != "base" and "/" in self.value else None


def ref_fields(model: type[BaseModel]) -> dict[str, Ref]:
    """The params fields that name registry objects, with their markers (found inside Optional/list too)."""
    found = {}
    for name, field in model.model_fields.items():
        marker = _find_marker(field.annotation) or next((m for m in field.metadata if isinstance(m, Ref)), None)
        if marker is not None:
            found[name] = marker
    return found


def _find_marker(annotation) -> Ref | None:
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, Ref):
            return meta
    for arg in typing.get_args(annotation):
        marker = _find_marker(arg)
        if marker is not None:
            return marker
    return None


# lineage edges, child -> parent: how a version came from another (or, for a kit, what it serves); only what the
# kinds declare (an edge no kind declares cannot be stored)
RELATIONS = tuple(sorted({r for spec in KINDS.values() for r in spec.declared_relations}))


def references(spec: KindSpec, inputs: list[str], params: dict) -> list[Reference]:
    """Every registry object a (validated) job names; builtin tasks are not registry objects and are left out."""
    found = [Reference(f"inputs[{i}]", spec.input_object, ref, spec.relation) for i, ref in enumerate(inputs)]
    for name, marker in ref_fields(spec.params).items():
        value = params.get(name)
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            if not isinstance(item, str) or (marker.builtin and item.startswith("builtin:")):
                continue
            where = f"params.{name}" + (f"[{i}]" if isinstance(value, list) else "")
            found.append(Reference(where, marker.object, item, marker.relation))
    return found


def namespaces_named(kind: str, inputs: list[str], params: dict, output: dict | None) -> set[str]:
    """Every namespace a job touches: its references' and its output's (who may see the job depends on them)."""
    spec = KINDS.get(kind)
    names = {r.namespace for r in references(spec, inputs or [], params or {})} if spec else \
        {ref.split("/", 1)[0] for ref in inputs or []}
    if output and isinstance(output.get("namespace"), str):
        names.add(output["namespace"])
    return {n for n in names if n}


def queue_for(kind: str, routes: str | None = None) -> str:
    """Queue of a kind: the default above, overridden by ADAPTARIUM_QUEUE_ROUTES like 'merge=gpu,train=cpu'."""
    for item in filter(None, (routes or "").split(",")):
        name, _, queue = item.partition("=")
        if name.strip() == kind and queue.strip():
            return queue.strip()
    return KINDS[kind].queue


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"params.{where}: {message}" if where else message)
    return "; ".join(parts)


def _a(kind: str) -> str:
    """The article before a kind's name in messages: "an unlearn job", "a train job"."""
    return "an" if kind[:1] in "aeiou" else "a"


def validate_job(kind: str, inputs: list, params: dict, output: dict | None) -> dict:
    """Normalised params (defaults filled in) or JobParamsError saying what was wrong. Shape only: whether the
    objects named exist and may be read is the job service's check (it needs the database and the caller)."""
    spec = KINDS.get(kind)
    if spec is None:
        raise JobParamsError(f"unknown job kind {kind!r}; known kinds: {', '.join(KIND_NAMES)}")
    low, high = spec.inputs
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise JobParamsError("inputs must be a list of version references")
    if not low <= len(inputs) <= high:
        want = f"exactly {low}" if low == high else f"{low} to {high}"
        raise JobParamsError(f"{_a(kind)} {kind} job takes {want} input version(s), got {len(inputs)}")
    for ref in inputs:
        if not REF.match(ref):
            raise JobParamsError(f"input {ref!r} is not namespace/name[@version]")
    if spec.publishes:
        if not isinstance(output, dict) or set(output) != {"namespace", "name"}:
            raise JobParamsError(f'{_a(kind)} {kind} job needs output {{"namespace": ..., "name": ...}} (or "namespace/name")')
        for key in ("namespace", "name"):
            value = output[key]
            if not isinstance(value, str) or not re.match(rf"^{NAME}$", value) or ".." in value:
                raise JobParamsError(f"output.{key} {value!r} is not a valid name ([A-Za-z0-9._-], no '..')")
    elif output not in (None, {}):
        raise JobParamsError(f"{_a(kind)} {kind} job publishes no version; drop 'output'")
    if not isinstance(params, dict):
        raise JobParamsError("params must be an object")
    try:
        parsed = spec.params.model_validate(params)
        parsed.check_inputs(inputs)
    except ValidationError as exc:
        raise JobParamsError(_describe(exc)) from None
    except ValueError as exc:
        raise JobParamsError(str(exc)) from None
    return parsed.model_dump(mode="json")


def params_schema(spec: KindSpec) -> dict:
    """The params model's JSON schema, each field with its default (pydantic leaves out those made by a factory,
    like target_modules' list; a form and `jobs kinds` need them)."""
    schema = spec.params.model_json_schema()
    for name, field in spec.params.model_fields.items():
        if field.default_factory is not None:
            schema["properties"][name]["default"] = field.get_default(call_default_factory=True)
    return schema


def essential(spec: KindSpec) -> list[str]:
    """The params a form shows first and `jobs kinds` marks: the required ones and those the declaration marks
    essential (json_schema_extra ESSENTIAL); the rest are advanced, folded away."""
    schema = params_schema(spec)
    required = set(schema.get("required", []))
    return [name for name, field in schema["properties"].items() if name in required or field.get("essential")]


def describe(spec: KindSpec) -> dict:
    """What `GET /api/v1/job-kinds` says about a kind: enough to build a form or a CLI call from. params_schema is
    the params model's JSON schema: every field with its type, limits, default and description."""
    return {
        "name": spec.name,
        "summary": spec.summary,
        "inputs": {"min": spec.inputs[0], "max": spec.inputs[1], "object": spec.input_object},
        "output": spec.output,
        "relation": spec.relation,
        "relations": list(spec.declared_relations),
        "produces": list(spec.produces),
        "queue": spec.queue,
        "references": {name: {"object": m.object, "relation": m.relation, "builtin": m.builtin}
                       for name, m in ref_fields(spec.params).items()},
        "essential": essential(spec),
        "builtin_tasks": list(p.BUILTIN_TASKS),
        "params_schema": params_schema(spec),
    }
