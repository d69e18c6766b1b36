"""Runtime settings, read from ADAPTARIUM_* environment variables — the one place the hub and the workers read them.

One frozen dataclass, built once per process by `get_settings()`: each field is read from ADAPTARIUM_<FIELD NAME>,
typed by its annotation, so a default is written once, beside its field. The embedded defaults (SQLite file, local
blob directory and broker under the data dir) need no other service; production points the URLs at PostgreSQL,
MinIO and Redis.
(The CLI's client reads ADAPTARIUM_URL / ADAPTARIUM_TOKEN itself, and lora/ reads ADAPTARIUM_CACHE_DIR, since neither
runs a hub; README lists every variable.)
"""
from __future__ import annotations

import functools
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

# the one default data dir: `up`, `worker`, `token`, `gc` and the API all fall back to it (relative to the cwd)
DEFAULT_DATA_DIR = "./adaptarium-data"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # the three URLs default to places under data_dir (from_env fills them in)
    database_url: str
    storage_url: str
    broker_url: str
    max_upload_bytes: int = 4 * 1024**3
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    queue_routes: str = ""  # "merge=gpu,train=cpu": per-kind queue overrides (hub.job_kinds.queue_for)
    visibility_timeout: int = 3600  # Redis: a delivered, unacknowledged message goes to another worker after this
    stale_seconds: float = 60  # a running job without a heartbeat this long is taken over by another worker
    recovery_seconds: float = 2  # how often an idle worker sweeps for lost jobs (once idle that long)
    requeue_queued_after: float = 5  # a job queued this long beside an idle worker of its queue is sent again
    # a request body that stops arriving for this long is a 408: a client silent for a minute mid-body is gone, or
    # holding an API worker on purpose
    body_read_timeout_s: float = 60
    max_concurrent_uploads: int = 64  # per API process; past it an upload is a 503 with Retry-After
    max_waits_per_token: int = 8  # per API process: submits with ?wait one token may have waiting; then 429
    device: str = "auto"  # worker: auto | cpu | cuda | cuda:N (lora.device.resolve)
    dtype: str = "auto"  # worker: auto | float32 | bfloat16 | float16 for the bases it loads
    base_cache_gb: float = 0  # worker: bound on the bases kept loaded (least recently used evicted); 0 = no bound
    base_cache_bases: int = 0  # worker: ... and on how many of them; 0 = no bound (either bound may be set, or both)
    worker_heartbeat_seconds: float = 10  # how often a worker refreshes its row in the fleet view
    # an API process trusts a token it verified for this long: a revocation from another process (the CLI) takes
    # effect within it; 0 checks the database on every request
    token_cache_seconds: float = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Every field from ADAPTARIUM_<NAME> (an int or float field parsed as one), else its default."""
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("ADAPTARIUM_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
        under_data_dir = {"database_url": f"sqlite:///{data_dir / 'adaptarium.db'}",
                          "storage_url": f"file://{data_dir / 'blobs'}",
                          "broker_url": f"filesystem://{data_dir / 'broker'}"}
        values = {"data_dir": data_dir}
        for field in fields(cls):
            if field.name == "data_dir":
                continue
            raw = env.get(f"ADAPTARIUM_{field.name.upper()}")
            if raw is None:
                values[field.name] = under_data_dir[field.name] if field.default is MISSING else field.default
            else:
                values[field.name] = {"int": int, "float": float}.get(str(field.type), str)(raw)
        return cls(**values)

    def open_store(self):
        """The blob store these settings name (S3 credentials included)."""
        from hub.storage import open_store

        return open_store(self.storage_url, staging_dir=self.data_dir / "staging",
                          credentials=(self.s3_access_key, self.s3_secret_key))


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
