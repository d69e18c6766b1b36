"""Hugging Face Hub–compatible read paths, so `HF_ENDPOINT=<hub> PeftModel.from_pretrained(model, "ns/name")` works.

`huggingface_hub` needs little: a HEAD (then GET) on `/{repo}/resolve/{revision}/{filename}` answering with an ETag, a
Content-Length and an `X-Repo-Commit` header, `/api/models/{repo}[/revision/{rev}]` for model_info, and
`/api/models/{repo}/tree/{rev}[/{path}]` for list_repo_tree (snapshot_download and list_repo_files list files with it). A version
has no git commit, so we give each one a stable 40-hex id derived from `ns/name@N`; the client caches snapshots
under it, and may send it back as the revision, which we resolve too. Revisions: `main` (latest non-yanked), a tag,
`v<N>`, a number, or that commit id. Errors carry `X-Error-Code`, which the client turns into its own exceptions.
"""
from __future__ import annotations

import hashlib
import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from hub import registry
from hub.api.adapters import check_version_ref
from hub.api.deps import can_read, db, store, token
from hub.api.files import blob_response
from hub.api.openapi import errors, file_download
from hub.api.views import hf_time
from hub.models import ArtifactVersion, ApiToken
from hub.registry import NotFound
from hub.storage import BlobStore

router = APIRouter(tags=["huggingface-compatible"], responses=errors(503))
# 401 for a bad token; 404 (X-Error-Code says which) for everything not there or not readable, so an anonymous caller
# cannot tell a private repository from a missing one
HF_ERRORS = errors(401, 404, 422, why={
    404: "no such repository, revision or file (X-Error-Code: RepoNotFound, RevisionNotFound or EntryNotFound), or a "
         "repository the caller may not read"})
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def commit_id(version: ArtifactVersion) -> str:
    return hashlib.sha1(registry.version_ref(version).encode()).hexdigest()


class _HfError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


def header_safe(text: str, limit: int = 400) -> str:
    """`text` as a header value: printable ASCII only, anything else escaped (\\xNN, \\uNNNN), and cut to `limit`.

    The message quotes the request path, which a client controls: a non-latin-1 character cannot be encoded in a
    header at all (a 500), and a control character (NUL, CR, LF...) makes the server refuse to send the response and
    drop the connection. The JSON body keeps the message as it was."""
    safe = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)
    return safe if len(safe) <= limit else safe[:limit - 3] + "..."


def hf_error_response(exc: _HfError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "detail": exc.message}, status_code=exc.status,
                        headers={"X-Error-Code": exc.code, "X-Error-Message": header_safe(exc.message)})


def _resolve(session: Session, tok: ApiToken | None, kind: str, ns: str, name: str, rev: str) -> ArtifactVersion:
    try:
        artifact = registry.get_artifact(session, kind, ns, name)
    except NotFound:
        raise _HfError(404, "RepoNotFound", f"repository {ns}/{name} not found") from None
    if not can_read(tok, artifact.namespace):  # exactly like a repository that is not there, anonymous or not
        raise _HfError(404, "RepoNotFound", f"repository {ns}/{name} not found")
    if _COMMIT.match(rev):
        for version in registry.list_versions(session, artifact):
            if commit_id(version) == rev:
                return version
        raise _HfError(404, "RevisionNotFound", f"revision {rev} not found in {ns}/{name}")
    try:
        check_version_ref(kind, ns, name, rev)
        return registry.resolve_version(session, kind, ns, name, rev)
    except NotFound as exc:
        raise _HfError(404, "RevisionNotFound", exc.detail) from None


def _info(version: ArtifactVersion) -> dict:
    adapter = version.artifact
    repo_id = f"{adapter.namespace.name}/{adapter.name}"
    return {
        "_id": commit_id(version)[:24],
        "id": repo_id,
        "modelId": repo_id,
        "sha": commit_id(version),
        "private": adapter.namespace.private,
        "gated": False,
        "disabled": False,
        "library_name": "peft" if adapter.kind == "adapter" else None,
        "tags": ["peft", "lora"] if adapter.kind == "adapter" else ["dataset"],
        "lastModified": hf_time(version.created_at),
        "createdAt": hf_time(adapter.created_at),
        "cardData": {"base_model": adapter.base.name} if adapter.base is not None else {},
        "siblings": [{"rfilename": f["name"], "size": f["size"], "blobId": blob_id(f),
                      "lfs": {"sha256": f["sha256"], "size": f["size"], "pointerSize": POINTER_SIZE}}
                     for f in version.files],
    }


# Every file is served as the Hub serves an LFS file: its ETag is its sha256. A git blob id is what the Hub gives as
# a file's `oid`; we have none, so each file gets a stable 40-hex one derived from its sha256.
POINTER_SIZE = 134  # the size of a git-lfs pointer file; clients only display it


def blob_id(entry: dict) -> str:
    return hashlib.sha1(f"blob:{entry['sha256']}".encode()).hexdigest()


def tree_entries(files: list[dict], path: str, recursive: bool) -> list[dict] | None:
    """The Hub's tree listing of a version's files under `path` ('' for the root): its files and, where the
    listing does not descend, its folders (each once). None when `path` is neither a folder nor a file."""
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    entries: dict[str, dict] = {}
    for f in sorted(files, key=lambda f: f["name"]):
        name = f["name"]
        if prefix and not name.startswith(prefix):
            if name == path.strip("/"):
                return [_file_entry(f)]
            continue
        rest = name[len(prefix):]
        folders = rest.split("/")[:-1]
        for depth in range(1, len(folders) + 1 if recursive else min(1, len(folders)) + 1):
            folder = prefix + "/".join(folders[:depth])
            entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0,
                                        "oid": hashlib.sha1(f"tree:{folder}".encode()).hexdigest()})
        if recursive or not folders:
            entries[name] = _file_entry(f)
    if prefix and not entries:
        return None
    return list(entries.values())


def _file_entry(f: dict) -> dict:
    return {"type": "file", "path": f["name"], "size": f["size"], "oid": blob_id(f),
            "lfs": {"oid": f["sha256"], "size": f["size"], "pointerSize": POINTER_SIZE}}


def _routes(kind: str, repo_prefix: str, api_prefix: str) -> None:
    @router.get(f"/api/{api_prefix}/{{ns}}/{{name}}", summary=f"HF-compatible {kind} info (latest)",
                responses=HF_ERRORS)
    def info(ns: str, name: str, session: Session = Depends(db), tok: ApiToken | None = Depends(token)):
        try:
            return _info(_resolve(session, tok, kind, ns, name, "main"))
        except _HfError as exc:
            return hf_error_response(exc)

    @router.get(f"/api/{api_prefix}/{{ns}}/{{name}}/revision/{{rev}}", summary=f"HF-compatible {kind} info at a revision",
                responses=HF_ERRORS)
    def info_at(ns: str, name: str, rev: str, session: Session = Depends(db), tok: ApiToken | None = Depends(token)):
        try:
            return _info(_resolve(session, tok, kind, ns, name, rev))
        except _HfError as exc:
            return hf_error_response(exc)

    @router.get(f"/api/{api_prefix}/{{ns}}/{{name}}/tree/{{rev}}", summary=f"HF-compatible {kind} file listing",
                responses=HF_ERRORS)
    def tree(ns: str, name: str, rev: str, recursive: bool = False, expand: bool = False,
             session: Session = Depends(db), tok: ApiToken | None = Depends(token)):
        return tree_at(ns, name, rev, "", recursive, expand, session, tok)

    @router.get(f"/api/{api_prefix}/{{ns}}/{{name}}/tree/{{rev}}/{{path:path}}",
                summary=f"HF-compatible {kind} file listing of a folder", responses=HF_ERRORS)
    def tree_at(ns: str, name: str, rev: str, path: str, recursive: bool = False, expand: bool = False,
                session: Session = Depends(db), tok: ApiToken | None = Depends(token)):
        """What `huggingface_hub.list_repo_tree` reads (snapshot_download and list_repo_files list a repo with it):
        one page, the whole listing; `expand` adds nothing we could tell (no git history)."""
        try:
            version = _resolve(session, tok, kind, ns, name, rev)
            entries = tree_entries(version.files, path, recursive)
            if entries is None:
                raise _HfError(404, "EntryNotFound", f"{path} not found in {ns}/{name}@{rev}")
        except _HfError as exc:
            return hf_error_response(exc)
        return entries

    @router.get(f"{repo_prefix}/{{ns}}/{{name}}/resolve/{{rev}}/{{filename:path}}",
                summary=f"HF-compatible {kind} file download", response_class=Response,
                responses={**file_download(), **HF_ERRORS})
    def resolve(ns: str, name: str, rev: str, filename: str, request: Request, session: Session = Depends(db),
                tok: ApiToken | None = Depends(token), blobs: BlobStore = Depends(store)):
        try:
            version = _resolve(session, tok, kind, ns, name, rev)
        except _HfError as exc:
            return hf_error_response(exc)
        commit = commit_id(version)
        entry = next((f for f in version.files if f["name"] == filename), None)
        if entry is None:
            response = hf_error_response(_HfError(404, "EntryNotFound", f"{filename} not found in {ns}/{name}@{rev}"))
            response.headers["X-Repo-Commit"] = commit
            return response
        return blob_response(request, blobs, entry, extra_headers={"X-Repo-Commit": commit})

    router.add_api_route(f"{repo_prefix}/{{ns}}/{{name}}/resolve/{{rev}}/{{filename:path}}", resolve, methods=["HEAD"],
                         include_in_schema=False)


_routes("adapter", "", "models")
_routes("dataset", "/datasets", "datasets")
