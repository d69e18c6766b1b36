"""What a job kind sees and returns: the JobContext protocol, the Output it produces, and an in-memory context.

A kind is a function `run(ctx, params) -> list[Output]` in `workers/kinds/<kind>.py`. It never touches the
database or the blob store: the runner's context loads what the job names and records progress, and the runner
publishes the outputs as the kind's spec (hub.job_kinds) says — lineage to the inputs and to every referenced
object included. `LocalContext` is the same contract in memory, so a kind runs from a notebook or a unit test with
no hub at all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from lora import Adapter
from lora.progress import Cancelled, Progress

JobCancelled = Cancelled  # ctx.check_cancelled() raises it; every method lets it through; the runner marks it cancelled


@dataclass
class Output:
    """One thing a job produced. Which fields matter follows the object published (the spec's output unless
    `object` says otherwise): an adapter (+ extra_files), a dataset (rows), a generator (files + base), data on the
    job (data), or metrics merged onto the input version (metrics alone)."""

    adapter: Adapter | None = None
    metrics: dict = field(default_factory=dict)
    object: str | None = None  # "adapter" | "dataset" | "generator"; None = the kind's declared output
    name: str | None = None  # defaults to the job's output name
    rows: list[dict] | None = None  # a dataset's {"prompt", "completion"} rows
    files: dict[str, bytes] = field(default_factory=dict)  # a generator's files
    base: str | None = None  # a generator's (or dataset's) base; adapters name theirs in their config
    extra_files: dict[str, bytes] = field(default_factory=dict)  # e.g. checkpoints/step-50/adapter_model.safetensors
    relation: str | None = None  # lineage to the inputs, when it differs from the kind's (a kit's seed dataset)
    # extra lineage (object, version ref, relation); object "output" with ref "<i>" names the version this job's
    # i-th output became (a kit made by `train` points at the adapter the same job trained)
    parents: list[tuple[str, str, str]] = field(default_factory=list)
    data: dict | None = None  # the job's result data


class JobContext(Protocol):
    job_id: str
    inputs: list[str]
    output_name: str | None  # the name the job publishes under (outputs may derive theirs from it)

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]: ...
    def load_files(self, ref: str, object: str = "adapter") -> dict[str, bytes]: ...
    def load_base(self, base_name: str): ...
    def load_dataset(self, ref: str, split: str | None = None) -> list[tuple[str, str]]: ...
    def derived(self, ref: str, relation: str, object: str = "adapter") -> list[str]: ...
    def progress(self, fraction: float, stage: str | None = None, steps: tuple[int, int] | None = None) -> None: ...
    def log(self, message: str) -> None: ...
    def metric(self, name: str, value: float, step: int | None = None) -> None: ...
    def check_cancelled(self) -> None: ...


def load_pairs(ctx: JobContext, source: str, split: str = "train") -> list[tuple[str, str]]:
    """(prompt, completion) pairs from "builtin:<task>?..." (that split) or a dataset version reference."""
    if source.startswith("builtin:"):
        from lora.tasks import load_task

        return load_task(source).pairs(split)
    return ctx.load_dataset(source)


def split_pairs(rows: list[dict], split: str | None, source: str) -> list[tuple[str, str]]:
    """(prompt, completion) of a dataset's rows, or of those whose "split" field is `split` (one dataset can hold a
    task's train and test rows; a split no row has is an error naming the splits there are)."""
    if split is not None:
        chosen = [r for r in rows if r.get("split") == split]
        if not chosen:
            present = sorted({str(r["split"]) for r in rows if "split" in r})
            raise ValueError(f"dataset {source} has no rows with \"split\": {split!r}"
                             + (f" (its splits: {', '.join(present)})" if present else " (its rows name no split)"))
        rows = chosen
    return [(r["prompt"], r["completion"]) for r in rows]


def eval_examples(ctx: JobContext, source: str, split: str | None = None) -> tuple[list[dict], str]:
    """({"prompt", "completion"} examples to score, the name metrics carry) from "builtin:<task>?..." (its test
    split unless `split` says "train") or a dataset version reference (every row, or the rows of `split`). A split
    other than the default shows in the name (`<name>.<split>`), so its scores never overwrite the default's."""
    if source.startswith("builtin:"):
        from lora.tasks import load_task

        task = load_task(source)
        if split not in (None, "train", "test"):
            raise ValueError(f"a built-in task has the splits train and test, not {split!r}")
        return getattr(task, split or "test"), task.name + (f".{split}" if split == "train" else "")
    rows = [{"prompt": p, "completion": c} for p, c in ctx.load_dataset(source, split)]
    return rows, source.split("@", 1)[0].replace("/", ".") + (f".{split}" if split else "")


def config_from(config_class, params: dict):
    """The method's config from the job's params (the kind's params model extends that config, so its fields are
    there, validated at submit; the registry references the params add are left out)."""
    return config_class(**{name: params[name] for name in config_class.model_fields if name in params})


def method_progress(ctx: JobContext, start: float = 0.0, end: float = 1.0,
                    stages: dict[str, tuple[float, float]] | None = None) -> Progress:
    """A lora.progress callback that reports a method into the job: progress within [start, end] (or the span a
    stage is given in `stages`), every metric as a metric event at that step, and cancellation checked each call."""

    def report(stage: str, done: int, total: int, metrics=None) -> None:
        low, high = (stages or {}).get(stage, (start, end))
        ctx.progress(low + (high - low) * done / max(total, 1), stage, steps=(done, total))
        for name, value in (metrics or {}).items():
            ctx.metric(name, value, done)
        ctx.check_cancelled()

    return report


@dataclass
class LocalContext:
    """An in-memory JobContext: adapters by ref, bases by lora.bases spec, datasets by ref; records what happens."""

    adapters: dict[str, tuple[Adapter, dict]] = field(default_factory=dict)
    datasets: dict[str, list] = field(default_factory=dict)  # (prompt, completion) pairs or dict rows
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # ref -> extra files of that version
    lineage: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (ref, relation) -> derived refs
    job_id: str = "local"
    inputs: list[str] = field(default_factory=list)
    output_name: str | None = None
    cancelled: bool = False
    events: list[tuple[str, dict]] = field(default_factory=list)

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]:
        return self.adapters[ref]

    def load_files(self, ref: str, object: str = "adapter") -> dict[str, bytes]:
        found = dict(self.files.get(ref, {}))
        if ref in self.adapters:
            config_json, weights = self.adapters[ref][0].to_bytes()
            found.update({"adapter_config.json": config_json, "adapter_model.safetensors": weights})
        if ref in self.datasets:
            found["data.jsonl"] = "".join(json.dumps(row) + "\n" for row in self._rows(ref)).encode()
        return found

    def load_base(self, base_name: str):
        from lora.bases import load_base

        return load_base(base_name)

    def _rows(self, ref: str) -> list[dict]:
        return [r if isinstance(r, dict) else {"prompt": r[0], "completion": r[1]} for r in self.datasets[ref]]

    def load_dataset(self, ref: str, split: str | None = None) -> list[tuple[str, str]]:
        return split_pairs(self._rows(ref), split, ref)

    def derived(self, ref: str, relation: str, object: str = "adapter") -> list[str]:
        return list(self.lineage.get((ref, relation), []))

    def progress(self, fraction: float, stage: str | None = None, steps: tuple[int, int] | None = None) -> None:
        self.events.append(("progress", {"progress": fraction, "stage": stage,
                                         **({"step": steps[0], "total": steps[1]} if steps else {})}))

    def log(self, message: str) -> None:
        self.events.append(("log", {"message": message}))

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        self.events.append(("metric", {"name": name, "value": value, "step": step}))

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled("cancelled")
