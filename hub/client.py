"""A small HTTP client for the REST API, used by the CLI (and handy in notebooks).

Uploads stream from disk and downloads stream to disk, with an optional callback per chunk for progress bars, so a
multi-GB adapter never sits in memory. Errors carry the server's `detail` so the CLI can show what was wrong.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from hub.storage import Staging

# the files an upload of each registry object may carry (the API's ADAPTER_FILES etc.), the first ones required
UPLOADS = {"adapter": ("adapter_config.json", "adapter_model.safetensors", "README.md"),
           "dataset": ("data.jsonl", "README.md"),
           "generator": ("generator_config.json", "generator.safetensors", "README.md")}
PLURAL = {"adapter": "adapters", "dataset": "datasets", "generator": "generators"}


class ClientError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def multipart_body(files: dict[str, Path], fields: dict[str, str], on_bytes: Callable[[int], None] | None = None,
                   chunk_size: int = 1 << 20) -> tuple[Iterator[bytes], dict[str, str]]:
    """A streamed multipart/form-data body and its headers (with Content-Length), read from disk in 1 MiB chunks.

    httpx's own multipart encoder reads files 64 KiB at a time; for multi-GB adapters the per-chunk overhead is what
    limits throughput, so the CLI builds the body itself."""
    boundary = secrets.token_hex(16)
    heads = []
    for name, value in fields.items():
        heads.append((f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode())
    file_heads = {name: (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                         "Content-Type: application/octet-stream\r\n\r\n").encode() for name in files}
    tail = f"--{boundary}--\r\n".encode()
    length = (sum(map(len, heads)) + sum(len(h) + Path(files[n]).stat().st_size + 2 for n, h in file_heads.items())
              + len(tail))

    def body() -> Iterator[bytes]:
        yield from heads
        for name, head in file_heads.items():
            yield head
            with open(files[name], "rb") as f:
                while chunk := f.read(chunk_size):
                    if on_bytes:
                        on_bytes(len(chunk))
                    yield chunk
            yield b"\r\n"
        yield tail

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}


class HubClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 600):
        self.url = (url or os.environ.get("ADAPTARIUM_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token if token is not None else os.environ.get("ADAPTARIUM_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ClientError(response.status_code, detail if isinstance(detail, str) else str(detail))
        return response

    def get(self, path: str, **params) -> dict:
        return self._check(self.http.get(path, params={k: v for k, v in params.items() if v is not None})).json()

    def post(self, path: str, json: dict, headers: dict | None = None) -> dict:
        return self._check(self.http.post(path, json=json, headers=headers)).json()

    def put(self, path: str, json: dict) -> dict:
        return self._check(self.http.put(path, json=json)).json()

    def delete(self, path: str) -> dict:
        return self._check(self.http.delete(path)).json()

    # ------------------------------------------------------------------ registry

    def add_base(self, body: dict) -> dict:
        return self.post("/api/v1/bases", body)

    def push(self, directory: Path, namespace: str, name: str, tag: str | None = None, base: str | None = None,
             on_bytes: Callable[[int], None] | None = None, object: str = "adapter",
             files: dict[str, Path] | None = None, description: str | None = None) -> dict:
        """Upload the object's files found in `directory` (or exactly `files`, upload name -> path)."""
        directory = Path(directory)
        files = files or {n: directory / n for n in UPLOADS[object] if (directory / n).is_file()}
        fields = {k: v for k, v in {"tag": tag, "base": base, "description": description}.items() if v}
        content, headers = multipart_body(files, fields, on_bytes)
        response = self.http.post(f"/api/v1/{PLURAL[object]}/{namespace}/{name}/versions", content=content,
                                  headers=headers)
        return self._check(response).json()

    def version(self, namespace: str, name: str, ref: str = "latest", object: str = "adapter") -> dict:
        return self.get(f"/api/v1/{PLURAL[object]}/{namespace}/{name}/versions/{ref}")

    def pull(self, namespace: str, name: str, ref: str, directory: Path,
             on_bytes: Callable[[int], None] | None = None, object: str = "adapter") -> dict:
        """Download every file of a version into `directory`, checking each sha256; returns the version."""
        version = self.version(namespace, name, ref, object)
        directory = Path(directory)
        for entry in version["files"]:
            target = directory / entry["name"]
            if not target.resolve().is_relative_to(directory.resolve()):
                raise ClientError(0, f"refusing to write {entry['name']!r} outside {directory}")
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"/api/v1/{PLURAL[object]}/{namespace}/{name}/versions/{version['number']}/files/{entry['name']}"
            staging = Staging(target.parent, max_bytes=None)  # hashes and writes on helper threads, like uploads
            try:
                with self.http.stream("GET", url) as response:
                    if response.status_code >= 400:
                        response.read()
                        self._check(response)
                    for chunk in response.iter_bytes(1 << 20):
                        staging.write(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                staged = staging.finish()
            except BaseException:
                staging.abort()
                raise
            if staged.sha256 != entry["sha256"]:
                staged.path.unlink(missing_ok=True)
                raise ClientError(0, f"{entry['name']}: downloaded bytes do not match sha256 {entry['sha256']}")
            os.replace(staged.path, target)
        return version

    # ------------------------------------------------------------------ jobs

    def submit(self, kind: str, inputs: list[str], params: dict, output: dict | None = None) -> dict:
        return self.post("/api/v1/jobs", {"kind": kind, "inputs": inputs, "params": params, "output": output})

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/v1/jobs/{job_id}")

    def job_id(self, prefix: str) -> str:
        """The one job id you may see that starts with `prefix` (git-style); ClientError 404 for none, 409 listing
        the matches for several. A full 32-character id is taken as it is."""
        if len(prefix) == 32:
            return prefix
        matches = self.get("/api/v1/jobs", id_prefix=prefix, limit=11)["items"]
        if not matches:
            raise ClientError(404, f"no job {prefix!r}")
        if len(matches) > 1:
            listed = ", ".join(f"{j['id'][:12]} ({j['kind']}, {j['state']})" for j in matches[:10])
            raise ClientError(409, f"job id prefix {prefix!r} is ambiguous: {listed}"
                                   f"{' ...' if len(matches) > 10 else ''}")
        return matches[0]["id"]
