"""Runtime settings, read from ADAPTARIUM_* environment variables.

One frozen dataclass, built once per process by `get_settings()`. The embedded defaults (SQLite file and a local
blob directory under the data dir) need no other service; production points the URLs at PostgreSQL, MinIO and Redis.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    storage_url: str
    broker_url: str
    max_upload_bytes: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("ADAPTARIUM_DATA_DIR", "./adaptarium-data")).resolve()
        return cls(
            data_dir=data_dir,
            database_url=env.get("ADAPTARIUM_DATABASE_URL", f"sqlite:///{data_dir / 'adaptarium.db'}"),
            storage_url=env.get("ADAPTARIUM_STORAGE_URL", f"file://{data_dir / 'blobs'}"),
            broker_url=env.get("ADAPTARIUM_BROKER_URL", f"filesystem://{data_dir / 'broker'}"),
            max_upload_bytes=int(env.get("ADAPTARIUM_MAX_UPLOAD_BYTES", str(4 * 1024**3))),
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
