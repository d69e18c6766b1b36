"""A job that only waits: exercises dispatch, progress, cancellation and the dispatch-latency benchmark."""
from __future__ import annotations

import time

from workers.kinds.base import JobContext, Output


def run(ctx: JobContext, params: dict) -> list[Output]:
    seconds = float(params.get("seconds", 0.0))
    steps = max(1, int(seconds / 0.1))
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        if seconds:
            time.sleep(seconds / steps)
        ctx.progress(step / steps, "waiting")
    return []
