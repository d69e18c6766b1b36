"""Job kinds: `workers/kinds/<kind>.py` holds `run(ctx, params) -> list[Output]` for the kind of that name in
hub.job_kinds; imported lazily, so a worker pays only for the kinds it runs."""
from __future__ import annotations

import importlib


def runner_for(kind: str):
    return importlib.import_module(f"workers.kinds.{kind}").run
