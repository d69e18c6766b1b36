"""Blob garbage collection, and the claims that make it safe against an upload of the same content.

Blobs are content-addressed and shared: a version's files point at them by sha256, identical files are stored once.
A blob nobody points at (an upload that failed after storing its files, a worker that died between storing and
publishing) is garbage, but deleting it is only safe if no one is about to point at it: a concurrent upload of the
same bytes finds the blob already stored, skips writing it, and publishes a version that names it a moment later.

The `blobs` row of a sha256 is the lease that settles it. Before storing a file, an upload *claims* its sha256: one
upsert setting the row's `created_at` to now (`claim_blobs`). The collector deletes a blob only inside a
transaction that holds that row's lock (an upsert on it: the row lock on PostgreSQL, the write lock on SQLite) and
only when, under that lock, the row's claim is older than the grace period, no version names the sha256, and the
stored file was not touched within the grace period either. So either the upload's claim comes first, and the
collector sees a fresh claim and keeps the blob, or the collector's delete commits first, and the claim that waited
for the lock makes a new row, after which the upload finds no file and stores its own copy.

A failed upload gives its claims back with `release_blobs`: under the same lock, a blob whose claim is still exactly
the upload's own (nobody claimed it since) and that no version names is deleted there and then.

Every writer claims: uploads (hub.api.adapters) and a worker publishing a job's result (workers.runner). The local
store also refreshes a blob's modification time when a commit finds identical content, a second line of defence.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import Text, cast, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hub.models import ArtifactVersion, Blob, utcnow
from hub.storage import BlobStore

DEFAULT_GRACE_S = 24 * 3600.0  # far longer than any upload or job takes from storing a file to publishing it
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class GcReport:
    grace_s: float
    dry_run: bool
    blobs_seen: int = 0
    referenced: int = 0
    recent: int = 0
    removed: list[str] = field(default_factory=list)
    bytes_removed: int = 0
    staging_removed: int = 0
    rows_removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"grace_s": self.grace_s, "dry_run": self.dry_run, "blobs_seen": self.blobs_seen,
                "referenced": self.referenced, "recent": self.recent, "removed": len(self.removed),
                "removed_sha256": self.removed, "bytes_removed": self.bytes_removed,
                "staging_files_removed": self.staging_removed, "orphan_rows_removed": self.rows_removed,
                "seconds": round(self.seconds, 3)}


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


def _lock_row(session: Session, sha256: str) -> None:
    """Take the blob row's lock: insert it (a placeholder claim at the epoch) or, when it exists, touch nothing."""
    session.execute(_upsert_statement(session.get_bind().dialect.name, refresh=False),
                    {"sha256": sha256, "size": 0, "created_at": _EPOCH})


@functools.cache
def _upsert_statement(dialect: str, refresh: bool):
    """INSERT a blob row ... ON CONFLICT: with `refresh` the existing row's claim moves to the new `created_at` (a
    claim), without it the row is only locked (sha256 set to itself). Built once per dialect and kind, values bound."""
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Blob.__table__)
    update = {"created_at": statement.excluded.created_at} if refresh else {"sha256": statement.excluded.sha256}
    return statement.on_conflict_do_update(index_elements=["sha256"], set_=update)


def _named_by_a_version(session: Session, sha256: str) -> bool:
    return session.scalar(select(ArtifactVersion.id).where(cast(ArtifactVersion.files, Text).contains(sha256))
                          .limit(1)) is not None


def claim_blobs(session_factory: sessionmaker, files: dict[str, int]) -> datetime:
    """Claim each sha256 (-> size) before storing it; returns the claim's time, which `release_blobs` needs."""
    stamp = utcnow()
    rows = [{"sha256": sha256, "size": size, "created_at": stamp}
            for sha256, size in sorted(files.items())]  # one lock order for every writer
    with session_factory() as session, session.begin():
        session.connection().execute(_upsert_statement(session.get_bind().dialect.name, refresh=True), rows)
    return stamp


def release_blobs(session_factory: sessionmaker, store: BlobStore, shas: list[str], stamp: datetime) -> list[str]:
    """After a failed upload: delete the blobs it claimed at `stamp` that nobody claimed since and no version names.

    Returns what was deleted; a blob someone else wants stays (its row and file), to be published or collected."""
    removed = []
    for sha256 in sorted(set(shas)):
        with session_factory() as session:
            _lock_row(session, sha256)
            row = session.get(Blob, sha256, populate_existing=True)
            if abs(_aware(row.created_at) - stamp) > timedelta(microseconds=1) or _named_by_a_version(session, sha256):
                session.rollback()  # claimed again since, or published: not ours to delete
                continue
            store.delete(sha256)
            session.execute(delete(Blob).where(Blob.sha256 == sha256))
            session.commit()
            removed.append(sha256)
    return removed


def _collect_one(session_factory: sessionmaker, store: BlobStore, sha256: str, cutoff: float) -> int | None:
    """Delete one blob if it is still garbage under its row lock; its size, or None when it was kept."""
    with session_factory() as session:
        _lock_row(session, sha256)  # a new row is rolled back if we keep the blob
        row = session.get(Blob, sha256, populate_existing=True)
        modified = store.modified(sha256)
        if (_aware(row.created_at).timestamp() > cutoff or _named_by_a_version(session, sha256)
                or (modified is not None and modified > cutoff)):
            session.rollback()
            return None
        size = store.size(sha256) if modified is not None else 0
        store.delete(sha256)
        session.execute(delete(Blob).where(Blob.sha256 == sha256))
        session.commit()
    return size


def collect_garbage(session_factory: sessionmaker, store: BlobStore, grace_s: float = DEFAULT_GRACE_S,
                    dry_run: bool = False) -> GcReport:
    """Remove blobs no version names whose claim and file are older than `grace_s`; also stale staging files and
    blob rows whose file is gone. `dry_run` reports what would go and deletes nothing."""
    started = time.monotonic()
    report = GcReport(grace_s=grace_s, dry_run=dry_run)
    if not dry_run:
        report.staging_removed = len(store.sweep_staging())
    cutoff = time.time() - grace_s
    with session_factory() as session:
        named: set[str] = set()
        for files in session.scalars(select(ArtifactVersion.files).execution_options(yield_per=500)):
            named.update(f["sha256"] for f in files or [])
        claims = {sha: _aware(at).timestamp() for sha, at in session.execute(select(Blob.sha256, Blob.created_at))}
    stored = dict(store.list_blobs())
    report.blobs_seen = len(stored)
    candidates = []
    for sha256, modified in sorted(stored.items()):
        if sha256 in named:
            report.referenced += 1
        elif modified > cutoff or claims.get(sha256, 0.0) > cutoff:
            report.recent += 1
        else:
            candidates.append(sha256)
    for sha256 in candidates:
        if dry_run:
            report.removed.append(sha256)
            report.bytes_removed += store.size(sha256)
            continue
        size = _collect_one(session_factory, store, sha256, cutoff)
        if size is not None:
            report.removed.append(sha256)
            report.bytes_removed += size
    # rows whose file is already gone (a delete that happened outside a collection) and that no version names
    for sha256, claimed in claims.items():
        if sha256 not in stored and sha256 not in named and claimed <= cutoff:
            if dry_run:
                report.rows_removed += 1
            elif _collect_one(session_factory, store, sha256, cutoff) is not None:
                report.rows_removed += 1
    report.seconds = time.monotonic() - started
    return report
