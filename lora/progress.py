"""The one progress protocol and the one cancellation exception every method shares.

A method (train_lora, merge, trans_lora, unlearn, train_generator, ...) reports through a callback
`progress(stage, done, total, metrics=None)` after each unit of work: `stage` names what it is doing ("training",
"filtering"), `done`/`total` say how far along that stage is, and `metrics` carries numbers worth plotting
(a loss, an acceptance rate). The job runner turns these into progress and metric events; a notebook can pass
`print_progress` or nothing at all. To stop a method between steps, the callback raises `Cancelled`: methods let it
propagate (cleaning up what they changed, e.g. the LoRA wrapper on a shared base model), so the caller sees it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Cancelled(Exception):
    """Raised from a progress callback to stop a method between steps; the method re-raises it unchanged."""


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, metrics: Mapping[str, float] | None = None) -> None: ...


def silent(stage: str, done: int, total: int, metrics: Mapping[str, float] | None = None) -> None:
    """The default callback: report nothing."""


def print_progress(stage: str, done: int, total: int, metrics: Mapping[str, float] | None = None) -> None:
    """A callback for notebooks and scripts: one line per call."""
    shown = " ".join(f"{k}={v:.4g}" for k, v in (metrics or {}).items())
    print(f"[{stage}] {done}/{total} {shown}".rstrip(), flush=True)
