"""Hand a job to the broker: a plain Celery client that sends the task by name (the API never imports workers/).

The broker URL comes from the settings: Redis in tests and production, or the embedded filesystem broker of
`adaptarium up` (`filesystem://<dir>`), which kombu's filesystem transport serves from two folders under the data dir.
"""
from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

from hub.settings import Settings

TASK_NAME = "adaptarium.run_job"


class _AtomicFilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel, but a message file appears whole: kombu 5.7 creates the file under its final
    name and writes it afterwards, and a worker polling in between moves the empty file away, fails to parse it
    and stops ("Unrecoverable error: JSONDecodeError"), leaving every later job queued. Here the message is written
    under a name no queue matches and renamed into place (atomic within one directory)."""

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".partial-{name}")
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = _AtomicFilesystemChannel


ATOMIC_FILESYSTEM = "adaptarium-filesystem"
TRANSPORT_ALIASES[ATOMIC_FILESYSTEM] = f"{__name__}:AtomicFilesystemTransport"


def celery_config(broker_url: str, visibility_timeout: int = 3600) -> dict:
    """Celery settings shared by the API's client and the workers, so both speak to the same broker the same way."""
    config = {
        "broker_url": broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "cpu",
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # how long a delivered, unacknowledged message waits before Redis hands it to another worker
            "visibility_timeout": visibility_timeout,
        },
    }
    if broker_url.startswith("filesystem://"):
        folder = Path(broker_url.removeprefix("filesystem://") or ".") / "queue"
        processed = folder.parent / "processed"
        folder.mkdir(parents=True, exist_ok=True)
        processed.mkdir(parents=True, exist_ok=True)
        config["broker_url"] = f"{ATOMIC_FILESYSTEM}://"
        config["broker_transport_options"] = {"data_folder_in": str(folder), "data_folder_out": str(folder),
                                              "processed_folder": str(processed), "store_processed": False,
                                              "control_folder": str(folder.parent / "control"),
                                              # kombu lists the folder once a second by default: a job would wait
                                              # ~1 s to start; a listing every 0.1 s costs nothing noticeable
                                              "polling_interval": 0.1}
    return config


@functools.cache
def _client(broker_url: str, visibility_timeout: int) -> Celery:
    app = Celery("adaptarium-api")
    app.conf.update(celery_config(broker_url, visibility_timeout))
    return app


def send_job(job_id: str, queue: str, task_id: str, settings: Settings | None = None) -> None:
    """Send a stored job to its queue, under the Celery task id its row holds (so a cancel can revoke it)."""
    settings = settings or Settings.from_env()
    # bounded retries: an unreachable broker must not hold an API request for long (the job is already stored)
    _client(settings.broker_url, settings.visibility_timeout).send_task(
        TASK_NAME, args=[job_id], queue=queue, task_id=task_id, retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1})


def revoke(task_id: str, settings: Settings | None = None) -> None:
    """Broadcast a revoke to the workers: each remembers the id and discards that message when it arrives."""
    settings = settings or Settings.from_env()
    _client(settings.broker_url, settings.visibility_timeout).control.revoke(task_id)
