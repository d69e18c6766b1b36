"""Content-addressed blob stores: a local directory and S3 (MinIO in production) through the `minio` client.

Every upload goes through `staging()`: a local temp file written chunk by chunk while hashing, so nothing is ever
held whole in memory and the sha256 is known the moment the last byte arrives. Validation reads the staged file;
only `commit` makes it visible under its hash, and identical content is stored once. Keys are always hashes
(checked against a strict pattern), never names a client chose.

Staging files of a process that died (SIGKILL, power cut) are swept when a store opens and then at most every
`SWEEP_EVERY_S` as uploads come: at once when the file names a process of this host that no longer exists, otherwise
once untouched for `STALE_STAGING_S`. The local store makes a commit durable: the file is fsynced before its
rename and the directory after it, so after a power cut a committed version never points at a truncated blob.
"""
from __future__ import annotations

import hashlib
import os
import queue
import re
import socket
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

_SHA = re.compile(r"^[0-9a-f]{64}$")
PARTIAL = ".partial-"
STALE_STAGING_S = 3600.0  # untouched this long, a staging file is dead whoever made it (a live one is written to
#                           continuously, the body read timeout stops stalled ones, validation and commit take seconds)
SWEEP_EVERY_S = 600.0
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
_PARTIAL_NAME = re.compile(rf"^{re.escape(PARTIAL)}(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[0-9a-f]{{32}}$")


class BlobMissing(FileNotFoundError):
    """A blob a version names is not in the store (deleted by hand, a restore that missed it): data loss, not a bad
    request. Raised by `read` before its first chunk, so a download can say so instead of breaking mid-stream."""


class UploadTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"upload larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StagedBlob:
    path: Path
    sha256: str
    size: int


def check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class Staging:
    """A temp file being written; hashes as it goes and refuses to grow past `max_bytes`.

    Hashing and writing each run on a helper thread of their own, fed through short queues, so they overlap with each
    other and with receiving the next chunks from the network (hashlib and file writes release the GIL); the queue
    bounds keep memory at a few chunks whatever the upload size. An optional `inspect` callable sees the same chunks
    on a third thread (the upload's check of tensor values); what it raises fails the staging like a disk error.
    The threads start with the first full batch: a file smaller than one batch (a config, a small adapter) is hashed,
    written and inspected inline at `finish`, where starting and feeding three threads cost more than the work."""

    QUEUE_CHUNKS = 8
    BATCH_BYTES = 1 << 20

    def __init__(self, directory: Path, max_bytes: int | None, inspect: Callable[[bytes], None] | None = None,
                 fsync: bool = False):
        directory.mkdir(parents=True, exist_ok=True)
        # host and pid in the name, so a sweep can tell a dead process's leftovers from a live upload
        self.path = directory / f"{PARTIAL}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"
        self.fsync = fsync
        self._file = open(self.path, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes
        self._error: BaseException | None = None
        self._pending = bytearray()
        self._unsynced = 0
        self._consumers = [self._hash.update, self._write] + ([inspect] if inspect is not None else [])
        self._workers: list[tuple[queue.Queue, threading.Thread]] = []

    def _start(self, consume) -> tuple[queue.Queue, threading.Thread]:
        chunks: queue.Queue = queue.Queue(self.QUEUE_CHUNKS)
        thread = threading.Thread(target=self._drain, args=(chunks, consume), daemon=True)
        thread.start()
        return chunks, thread

    def _drain(self, chunks: queue.Queue, consume) -> None:
        while (chunk := chunks.get()) is not None:
            if self._error is None:
                try:
                    consume(chunk)
                except BaseException as exc:  # disk full etc.: reported by the next write() or finish()
                    self._error = exc

    SYNC_EVERY_BYTES = 16 << 20

    def _write(self, chunk: bytes) -> None:
        """On the writer thread: write, and with fsync on, flush every 16 MiB as the upload goes, so the disk works
        while the network delivers and the fsync at the end has little left to do."""
        self._file.write(chunk)
        if self.fsync:
            self._unsynced += len(chunk)
            if self._unsynced >= self.SYNC_EVERY_BYTES:
                self._file.flush()
                os.fdatasync(self._file.fileno())
                self._unsynced = 0

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            self.abort()
            raise self._error
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.abort()
            raise UploadTooLarge(self.max_bytes)
        self._pending += chunk
        if len(self._pending) >= self.BATCH_BYTES:
            self._hand_off()

    def _hand_off(self) -> None:
        """Queue what has gathered: network chunks are ~64 KiB, and a queue hop per chunk costs more than the copy."""
        chunk, self._pending = bytes(self._pending), bytearray()
        if not self._workers:
            self._workers = [self._start(consume) for consume in self._consumers]
        for chunks, _ in self._workers:
            chunks.put(chunk)

    def _stop(self) -> None:
        for chunks, thread in self._workers:
            if thread.is_alive():
                chunks.put(None)
                thread.join()

    def finish(self) -> StagedBlob:
        if self._workers:
            if self._pending:
                self._hand_off()
            self._stop()
        elif self._pending:  # under one batch in all: no threads were started
            chunk, self._pending = bytes(self._pending), bytearray()
            try:
                for consume in self._consumers:
                    consume(chunk)
            except BaseException as exc:
                self._error = exc
        self._file.close()  # the last fsync is the store's, at commit: a duplicate is dropped without one
        if self._error is not None:
            self.path.unlink(missing_ok=True)
            raise self._error
        return StagedBlob(self.path, self._hash.hexdigest(), self.size)

    def abort(self) -> None:
        self._stop()
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def sweep_staging(directory: Path, older_than_s: float = STALE_STAGING_S) -> list[Path]:
    """Delete the staging files of dead uploads in `directory`; returns what it deleted (see the module docstring).

    A file named by this host and a process id that no longer exists goes at once: its writer was killed. Any other
    file goes once untouched for `older_than_s`, which also covers other hosts sharing the directory, whose processes
    this one cannot see."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(PARTIAL):
            continue
        match = _PARTIAL_NAME.match(entry.name)
        try:
            dead = match is not None and match["host"] == _HOST and _process_gone(int(match["pid"]))
            if dead or now - entry.stat().st_mtime > older_than_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # committed, discarded or swept by someone else meanwhile
            continue
    return removed


class BlobStore(ABC):
    staging_dir: Path
    durable = False  # fsync staged files before commit
    _last_sweep = 0.0

    def staging(self, max_bytes: int | None = None, inspect: Callable[[bytes], None] | None = None) -> Staging:
        self._maybe_sweep()
        return Staging(self.staging_dir, max_bytes, inspect, fsync=self.durable)

    def sweep_staging(self, older_than_s: float = STALE_STAGING_S) -> list[Path]:
        self._last_sweep = time.monotonic()
        return sweep_staging(self.staging_dir, older_than_s)

    def _maybe_sweep(self) -> None:
        """The periodic sweep, on a thread of its own so the upload that triggers it does not wait for it."""
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = time.monotonic()
            threading.Thread(target=sweep_staging, args=(self.staging_dir,), daemon=True).start()

    def stage_bytes(self, data: bytes) -> StagedBlob:
        staging = self.staging()
        staging.write(data)
        return staging.finish()

    def discard(self, staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        staged = self.stage_bytes(data)
        self.commit(staged)
        return staged.sha256

    def read_bytes(self, sha256: str) -> bytes:
        return b"".join(self.read(sha256))

    @abstractmethod
    def commit(self, staged: StagedBlob) -> bool:
        """Store the staged file under its hash; False when identical content was already there. Removes the temp."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def size(self, sha256: str) -> int: ...

    @abstractmethod
    def read(self, sha256: str, start: int = 0, length: int | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    @abstractmethod
    def delete(self, sha256: str) -> None: ...

    @abstractmethod
    def list_blobs(self) -> Iterator[tuple[str, float]]:
        """(sha256, last modified as a Unix time) of every stored blob, for garbage collection."""

    @abstractmethod
    def modified(self, sha256: str) -> float | None:
        """Last modified (Unix time) of one blob, None when it is not there."""


class LocalBlobStore(BlobStore):
    """Files at <root>/<sha[:2]>/<sha>; staging inside the root so commit is one atomic rename on one filesystem.

    `durable` (the default) fsyncs the staged file before the rename and the directory after it: without it a power
    cut can leave the rename on disk but not the data, a committed version pointing at a truncated blob."""

    def __init__(self, root: Path, durable: bool = True):
        self.root = Path(root)
        self.staging_dir = self.root / ".staging"
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep_staging()

    def _path(self, sha256: str) -> Path:
        check_sha(sha256)
        return self.root / sha256[:2] / sha256

    def commit(self, staged: StagedBlob) -> bool:
        target = self._path(staged.sha256)
        try:
            os.utime(target)  # identical content is here: mark it as just used, so a collector passing by keeps it
            staged.path.unlink(missing_ok=True)
            return False
        except FileNotFoundError:
            pass
        self._fsync(staged.path)  # the bytes are on disk before the rename can make them a blob
        if not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            self._fsync(self.root)  # the new <sha[:2]> directory's own entry
        os.replace(staged.path, target)
        self._fsync(target.parent)  # the rename itself
        return True

    def _fsync(self, path: Path) -> None:
        """fsync through a read-only descriptor: on Linux it flushes the file's (or directory's) data whoever wrote it."""
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def read(self, sha256, start=0, length=None, chunk_size=1 << 20):
        path = self._path(sha256)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        remaining = os.fstat(f.fileno()).st_size - start if length is None else length
        with f:
            f.seek(start)
            while remaining > 0:
                chunk = f.read(min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def list_blobs(self):
        for shard in os.scandir(self.root):
            if shard.is_dir() and len(shard.name) == 2 and not shard.name.startswith("."):
                for entry in os.scandir(shard.path):
                    if _SHA.match(entry.name):
                        try:
                            yield entry.name, entry.stat().st_mtime
                        except FileNotFoundError:
                            continue

    def modified(self, sha256: str) -> float | None:
        try:
            return self._path(sha256).stat().st_mtime
        except FileNotFoundError:
            return None


class S3BlobStore(BlobStore):
    """Objects at s3://<bucket>/blobs/<sha>; the staged file is streamed up with fput_object (multipart)."""

    def __init__(self, bucket: str, endpoint: str, access_key: str | None, secret_key: str | None,
                 secure: bool = True, region: str | None = None, staging_dir: Path | None = None):
        from minio import Minio

        self.bucket = bucket
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        self.staging_dir = Path(staging_dir or Path(tempfile.gettempdir()) / "adaptarium-staging")
        self.sweep_staging()
        if not self.client.bucket_exists(bucket):
            try:
                self.client.make_bucket(bucket)
            except Exception as exc:  # another process created it first
                if "BucketAlreadyOwnedByYou" not in str(exc) and "BucketAlreadyExists" not in str(exc):
                    raise

    def _key(self, sha256: str) -> str:
        return f"blobs/{check_sha(sha256)}"

    def commit(self, staged: StagedBlob) -> bool:
        try:
            if self.exists(staged.sha256):
                return False
            self.client.fput_object(self.bucket, self._key(staged.sha256), str(staged.path),
                                    part_size=16 * 1024 * 1024)
            return True
        finally:
            staged.path.unlink(missing_ok=True)

    def _stat(self, sha256: str):
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, self._key(sha256))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise

    def exists(self, sha256: str) -> bool:
        return self._stat(sha256) is not None

    def size(self, sha256: str) -> int:
        stat = self._stat(sha256)
        if stat is None:
            raise FileNotFoundError(sha256)
        return stat.size

    def read(self, sha256, start=0, length=None, chunk_size=1 << 20):
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self._key(sha256), offset=start, length=length or 0)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise BlobMissing(sha256) from None
            raise
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def delete(self, sha256: str) -> None:
        self.client.remove_object(self.bucket, self._key(sha256))

    def list_blobs(self):
        for obj in self.client.list_objects(self.bucket, prefix="blobs/", recursive=True):
            sha = obj.object_name.rsplit("/", 1)[-1]
            if _SHA.match(sha):
                yield sha, obj.last_modified.timestamp()

    def modified(self, sha256: str) -> float | None:
        stat = self._stat(sha256)
        return None if stat is None else stat.last_modified.timestamp()


def open_store(url: str, staging_dir: Path | None = None,
               credentials: tuple[str | None, str | None] | None = None) -> BlobStore:
    """`file:///abs/dir[?fsync=false]` or `s3://bucket?endpoint=host:port&secure=false[&region=r]` (keys from the
    environment unless `credentials` are given, as Settings.open_store does). `fsync=false` trades crash safety for speed (throwaway data, benchmarks measuring the cost)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return LocalBlobStore(Path(parsed.path), durable=query.get("fsync", "true").lower() not in ("false", "0", "no"))
    if parsed.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if not parsed.netloc or "endpoint" not in query:
            raise ValueError(f"S3 storage URL needs a bucket and ?endpoint=host:port: {url!r}")
        access, secret = credentials or (os.environ.get("ADAPTARIUM_S3_ACCESS_KEY"),
                                         os.environ.get("ADAPTARIUM_S3_SECRET_KEY"))
        return S3BlobStore(parsed.netloc, query["endpoint"], access, secret,
                           secure=query.get("secure", "true").lower() not in ("false", "0", "no"),
                           region=query.get("region"), staging_dir=staging_dir)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket?endpoint=host:port")
