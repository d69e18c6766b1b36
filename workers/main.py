"""`adaptarium worker`: start a Celery worker on the given queues (solo pool by default: one job at a time, which is
what one GPU or a small CPU host should run).

The deployment unit is one worker process per GPU: `--device cuda:N` (or ADAPTARIUM_DEVICE) pins the process to one
device and `--dtype` (ADAPTARIUM_DTYPE) picks the bases' precision; both are resolved and applied before Celery
starts, so a bad value stops the worker at once with the accepted values instead of failing its first job. The base
cache bounds (ADAPTARIUM_BASE_CACHE_GB of weights, ADAPTARIUM_BASE_CACHE_BASES bases) are applied at the same time."""
from __future__ import annotations

import os
import socket


class WorkerSetupError(ValueError):
    """A device, dtype or cache bound the worker cannot honour (the CLI prints it and exits non-zero)."""


def prepare(device: str, dtype: str, base_cache_gb: float, concurrency: int = 1, base_cache_bases: int = 0):
    """Resolve the worker's placement, make it the process's (lora.device.use) and bound the base cache; returns the
    Placement. WorkerSetupError, naming the accepted values, for anything it cannot honour."""
    import torch

    from lora.bases import set_cache_limit
    from lora.device import resolve, use

    try:
        placement = resolve(device, dtype)
    except ValueError as exc:
        raise WorkerSetupError(str(exc)) from None
    if placement.device.type == "cuda" and concurrency != 1:
        raise WorkerSetupError("a CUDA worker runs one job at a time (--concurrency 1): run one worker process per GPU")
    if not base_cache_gb >= 0:  # also refuses NaN
        raise WorkerSetupError(f"the base cache bound must be a non-negative number of GB, got {base_cache_gb!r}")
    if isinstance(base_cache_bases, bool) or not isinstance(base_cache_bases, int) or base_cache_bases < 0:
        raise WorkerSetupError(f"the base cache count must be a non-negative whole number, got {base_cache_bases!r}")
    if placement.device.type == "cuda":
        torch.cuda.set_device(placement.device)  # stray .cuda() calls in libraries land on this worker's GPU too
    use(placement)
    set_cache_limit(max_bytes=int(base_cache_gb * 2**30) or None, max_count=base_cache_bases or None)
    return placement


def run_worker(queues: list[str], concurrency: int = 1, loglevel: str = "INFO", device: str | None = None,
               dtype: str | None = None, base_cache_gb: float | None = None,
               base_cache_bases: int | None = None) -> None:
    """device / dtype / base_cache_gb / base_cache_bases: None reads ADAPTARIUM_DEVICE / ADAPTARIUM_DTYPE /
    ADAPTARIUM_BASE_CACHE_GB / ADAPTARIUM_BASE_CACHE_BASES."""
    from hub.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:  # e.g. ADAPTARIUM_BASE_CACHE_GB=lots
        raise WorkerSetupError(f"bad worker setting in the environment: {exc}") from None
    cache_gb = settings.base_cache_gb if base_cache_gb is None else base_cache_gb
    cache_bases = settings.base_cache_bases if base_cache_bases is None else base_cache_bases
    placement = prepare(device or settings.device, dtype or settings.dtype, cache_gb, concurrency, cache_bases)
    bounds = [f"{cache_gb:g} GB"] * bool(cache_gb) + [f"{cache_bases} bases"] * bool(cache_bases)
    print(f"adaptarium worker: queues {','.join(queues)} on {placement.device} ({placement.dtype}), base cache "
          f"{' and '.join(bounds) or 'unbounded'}", flush=True)

    from workers.celery_app import app

    pool = "solo" if concurrency == 1 else "prefork"
    app.worker_main(["worker", "-Q", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency),
                     "--loglevel", loglevel, "-n", f"adaptarium-{os.getpid()}@{socket.gethostname()}",
                     "--without-gossip", "--without-mingle"])
