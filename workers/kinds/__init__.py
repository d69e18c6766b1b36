"""Job kinds: each is `run(ctx, params) -> list[Output]`, imported lazily so a worker pays only for what it runs."""
from __future__ import annotations

import importlib

KIND_MODULES = {"train": "workers.kinds.train", "evaluate": "workers.kinds.evaluate",
                "merge": "workers.kinds.merge", "noop": "workers.kinds.noop"}


def runner_for(kind: str):
    return importlib.import_module(KIND_MODULES[kind]).run
