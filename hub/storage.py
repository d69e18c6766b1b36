"""Content-addressed blob stores: a local directory and S3 (MinIO in production) through the `minio` client.

Every upload goes through `staging()`: a local temp file written chunk by chunk while hashing, so nothing is ever
held whole in memory and the sha256 is known the moment the last byte arrives. Validation reads the staged file;
only `commit` makes it visible under its hash, and identical content is stored once. Keys are always hashes
(checked against a strict pattern), never names a client chose.
"""
from __future__ import annotations

import hashlib
import os
import queue
import re
import tempfile
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

_SHA = re.compile(r"^[0-9a-f]{64}$")


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
    on a third thread (the upload's check of tensor values); what it raises fails the staging like a disk error."""

    QUEUE_CHUNKS = 8
    BATCH_BYTES = 1 << 20

    def __init__(self, directory: Path, max_bytes: int | None, inspect: Callable[[bytes], None] | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f".partial-{uuid.uuid4().hex}"
        self._file = open(self.path, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes
        self._error: BaseException | None = None
        self._pending = bytearray()
        self._workers = [self._start(self._hash.update), self._start(self._file.write)]
        if inspect is not None:
            self._workers.append(self._start(inspect))

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
        for chunks, _ in self._workers:
            chunks.put(chunk)

    def _stop(self) -> None:
        for chunks, thread in self._workers:
            if thread.is_alive():
                chunks.put(None)
                thread.join()

    def finish(self) -> StagedBlob:
        if self._pending:
            self._hand_off()
        self._stop()
        self._file.close()
        if self._error is not None:
            self.path.unlink(missing_ok=True)
            raise self._error
        return StagedBlob(self.path, self._hash.hexdigest(), self.size)

    def abort(self) -> None:
        self._stop()
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore(ABC):
    staging_dir: Path

    def staging(self, max_bytes: int | None = None, inspect: Callable[[bytes], None] | None = None) -> Staging:
        return Staging(self.staging_dir, max_bytes, inspect)

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


class LocalBlobStore(BlobStore):
    """Files at <root>/<sha[:2]>/<sha>; staging inside the root so commit is one atomic rename on one filesystem."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.staging_dir = self.root / ".staging"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        check_sha(sha256)
        return self.root / sha256[:2] / sha256

    def commit(self, staged: StagedBlob) -> bool:
        target = self._path(staged.sha256)
        if target.exists():
            staged.path.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        return True

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def read(self, sha256, start=0, length=None, chunk_size=1 << 20):
        path = self._path(sha256)
        remaining = path.stat().st_size - start if length is None else length
        with open(path, "rb") as f:
            f.seek(start)
            while remaining > 0:
                chunk = f.read(min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)


class S3BlobStore(BlobStore):
    """Objects at s3://<bucket>/blobs/<sha>; the staged file is streamed up with fput_object (multipart)."""

    def __init__(self, bucket: str, endpoint: str, access_key: str | None, secret_key: str | None,
                 secure: bool = True, region: str | None = None, staging_dir: Path | None = None):
        from minio import Minio

        self.bucket = bucket
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        self.staging_dir = Path(staging_dir or Path(tempfile.gettempdir()) / "adaptarium-staging")
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
        response = self.client.get_object(self.bucket, self._key(sha256), offset=start, length=length or 0)
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def delete(self, sha256: str) -> None:
        self.client.remove_object(self.bucket, self._key(sha256))


def open_store(url: str, staging_dir: Path | None = None) -> BlobStore:
    """`file:///abs/dir` or `s3://bucket?endpoint=host:port&secure=false[&region=r]` (keys from the environment)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if not parsed.netloc or "endpoint" not in query:
            raise ValueError(f"S3 storage URL needs a bucket and ?endpoint=host:port: {url!r}")
        return S3BlobStore(parsed.netloc, query["endpoint"], os.environ.get("ADAPTARIUM_S3_ACCESS_KEY"),
                           os.environ.get("ADAPTARIUM_S3_SECRET_KEY"),
                           secure=query.get("secure", "true").lower() not in ("false", "0", "no"),
                           region=query.get("region"), staging_dir=staging_dir)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket?endpoint=host:port")
