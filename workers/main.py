"""`adaptarium worker`: start a Celery worker on the given queues (solo pool by default: one job at a time, which is
what one GPU or a small CPU host should run)."""
from __future__ import annotations

import os
import socket


def run_worker(queues: list[str], concurrency: int = 1, loglevel: str = "INFO") -> None:
    from workers.celery_app import app

    pool = "solo" if concurrency == 1 else "prefork"
    app.worker_main(["worker", "-Q", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency),
                     "--loglevel", loglevel, "-n", f"adaptarium-{os.getpid()}@{socket.gethostname()}",
                     "--without-gossip", "--without-mingle"])
