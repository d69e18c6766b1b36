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
from queue import Empty

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport.virtual import BrokerState
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

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

    def _get(self, queue):
        """Claim the oldest message of `queue` by renaming it into the processed folder, then read and delete it.

        kombu's own `_get` moves the file into `tempfile.gettempdir()` when processed messages are not kept, and a
        move that fails there (a temp dir cached from a since-deleted TMPDIR, a name already taken) is skipped
        silently on every poll: the message stays queued for good. The processed folder sits beside the queue
        folder, so the rename is atomic and only one worker wins it."""
        suffix = f"{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != suffix:
                continue
            claimed = os.path.join(self.processed_folder, filename)
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except FileNotFoundError:
                continue  # another worker claimed it first
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
                os.remove(claimed)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()


class AtomicFilesystemTransport(filesystem.Transport):
    """The transport of `_AtomicFilesystemChannel`, with its own exchange/binding state.

    kombu keeps that state on the Transport class, shared by every connection in the process, and writes a
    binding to the broker folder only the first time the process sees it: a second hub in one process (two data
    dirs in one test run) then published into a folder with no binding and the message vanished."""

    Channel = _AtomicFilesystemChannel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.state = BrokerState()


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
