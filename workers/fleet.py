"""This worker process in the fleet view: register at start, a heartbeat thread, "stopped" on a clean shutdown.

Started from the Celery signals in workers/celery_app.py, in the process that runs the jobs (the solo pool's only
process, or each prefork child), and named like the runner names itself on a job (host:pid), so the row and the
job point at each other. The facts come from here, not from the hub: the device is `lora.device.current()`, which
imports torch, and the hub must stay torch-free.

The heartbeat survives the database going away: a failed beat is logged (once per outage, not once per beat) and
the next one simply tries again; a row that disappeared is registered again (hub.fleet.beat).
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from importlib import metadata

from hub import fleet

log = logging.getLogger("adaptarium.fleet")
PACKAGES = ("torch", "transformers", "peft", "adaptarium")

_stop = threading.Event()
_thread: threading.Thread | None = None
_name: str | None = None
_session_factory = None


def facts(queues: list[str], heartbeat_seconds: float) -> dict:
    """What the fleet view shows about this process: where it runs, what it consumes, on which device, with which
    library versions."""
    from lora.device import current

    placement = current().describe()
    return {"host": socket.gethostname(), "pid": os.getpid(), "queues": sorted(queues),
            "device": placement["device"], "dtype": placement.get("dtype"), "device_name": placement.get("device_name"),
            "memory_bytes": placement.get("memory_bytes"), "versions": _versions(),
            "heartbeat_seconds": heartbeat_seconds}


@functools.cache
def _versions() -> dict[str, str | None]:
    """The installed versions of PACKAGES: read once per process (a heartbeat sends them every beat)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def start(queues: list[str], services=None) -> None:
    """Register this process and start its heartbeat (once per process; a second call is ignored)."""
    global _thread, _name, _session_factory
    if _thread is not None and _thread.is_alive():
        return
    from workers.runner import Services, worker_name

    services = services or Services.get()
    _session_factory = services.session_factory
    _name, interval = worker_name(), services.settings.worker_heartbeat_seconds
    _stop.clear()
    try:
        fleet.register(services.session_factory, _name, facts(queues, interval))
    except Exception:  # the heartbeat registers it once the database answers
        log.exception("could not register worker %s in the fleet view", _name)
    _thread = threading.Thread(target=_loop, args=(services.session_factory, _name, queues, interval), daemon=True,
                               name="adaptarium-fleet-heartbeat")
    _thread.start()


def _loop(session_factory, name: str, queues: list[str], interval: float) -> None:
    failing = False
    while not _stop.wait(interval):
        try:
            fleet.beat(session_factory, name, facts(queues, interval))
        except Exception as exc:
            if not failing:
                log.warning("fleet heartbeat failed (will keep trying every %gs): %s", interval, exc)
            failing = True
            continue
        if failing:
            log.warning("fleet heartbeat restored")
        failing = False


def stop() -> None:
    """A clean shutdown: stop beating and mark the row stopped (best effort: a stale row tells the truth too)."""
    global _thread
    if _thread is None:
        return
    _stop.set()
    _thread.join(timeout=5)
    _thread = None
    try:
        fleet.stopped(_session_factory, _name)
    except Exception:
        log.exception("could not mark worker %s stopped", _name)
