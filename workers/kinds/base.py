"""What a job kind sees and returns: the JobContext protocol, the Output it produces, and an in-memory context.

A kind is a function `run(ctx, params) -> list[Output]`. It never touches the database or the blob store: the
runner's context loads inputs and records progress, and the runner publishes the outputs. `LocalContext` is the same
contract in memory, so a kind runs from a notebook or a unit test with no hub at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lora import Adapter
from lora.progress import Cancelled


JobCancelled = Cancelled  # ctx.check_cancelled() raises it; every method lets it through; the runner marks it cancelled


@dataclass
class Output:
    adapter: Adapter | None = None
    metrics: dict = field(default_factory=dict)
    parents: list[tuple[str, str]] = field(default_factory=list)  # (version ref, relation)
    name: str | None = None  # defaults to the job's output name
    extra_files: dict[str, bytes] = field(default_factory=dict)  # e.g. checkpoints/step-50/adapter_model.safetensors
    update_metrics_of: str | None = None  # evaluate: merge `metrics` into this existing version instead


class JobContext(Protocol):
    job_id: str
    inputs: list[str]

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]: ...
    def load_base(self, base_name: str): ...
    def load_dataset(self, ref: str) -> list[tuple[str, str]]: ...
    def progress(self, fraction: float, stage: str | None = None) -> None: ...
    def log(self, message: str) -> None: ...
    def metric(self, name: str, value: float, step: int | None = None) -> None: ...
    def check_cancelled(self) -> None: ...


@dataclass
class LocalContext:
    """An in-memory JobContext: adapters by ref, bases by lora.bases spec, datasets by ref; records what happens."""

    adapters: dict[str, tuple[Adapter, dict]] = field(default_factory=dict)
    datasets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    job_id: str = "local"
    inputs: list[str] = field(default_factory=list)
    cancelled: bool = False
    events: list[tuple[str, dict]] = field(default_factory=list)

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]:
        return self.adapters[ref]

    def load_base(self, base_name: str):
        from lora.bases import load_base

        return load_base(base_name)

    def load_dataset(self, ref: str) -> list[tuple[str, str]]:
        return self.datasets[ref]

    def progress(self, fraction: float, stage: str | None = None) -> None:
        self.events.append(("progress", {"progress": fraction, "stage": stage}))

    def log(self, message: str) -> None:
        self.events.append(("log", {"message": message}))

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        self.events.append(("metric", {"name": name, "value": value, "step": step}))

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled("cancelled")
