"""Routes for versioned artifacts: adapters under /adapters and datasets under /datasets.

Both kinds share one router factory because they share everything but the upload check: an adapter upload is a PEFT
LoRA directory validated against its base, a dataset upload is one JSONL file validated line by line.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import update
from sqlalchemy.orm import Session

from hub import gc, json_safety, registry
from hub.api import gc as gc_routes, views
from hub.api.deps import can_read, db, require, settings, store, token, token_without_session
from hub.api.files import blob_response
from hub.api.openapi import Name, errors, file_download, multipart_upload
from hub.api.uploads import ReceivedForm, receive_form
from hub.dataset_validation import DatasetError, validate_jsonl
from hub.models import Artifact, ArtifactVersion, ApiToken, Namespace
from hub.peft_validation import AdapterValidationError, check_lora_tensors, parse_adapter_config
from hub.registry import FileEntry, Invalid, NotFound
from hub.safetensors_header import HeaderError, NonFiniteScanner, read_header
from hub.settings import Settings
from hub.storage import BlobStore

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")
DATASET_FILES = ("data.jsonl", "README.md")
GENERATOR_FILES = ("generator_config.json", "generator.safetensors", "README.md")
MAX_CONFIG_BYTES = 1024 * 1024
MAX_VERSION = 2**31 - 1  # adapter_versions.number is a 32-bit INTEGER column
logger = logging.getLogger("adaptarium.api")


def check_version_ref(kind: str, ns: str, name: str, ref: str) -> None:
    """404 for a version number no version can have, before it reaches SQL.

    A number past the column's range is a 500 otherwise (SQLite cannot bind past 2^63-1, PostgreSQL refuses it), a
    digit string longer than Python's int parsing limit is a ValueError, and so is a Unicode digit like '²' that
    str.isdigit() accepts; none of them can name a version, so all of them are simply not found."""
    number = ref[1:] if ref[:1] == "v" else ref
    if number.isdigit() and (len(number) > 10 or not number.isdecimal() or not number.isascii()
                             or int(number) > MAX_VERSION):
        raise NotFound(f"{kind} {ns}/{name} has no version {ref!r}")


def _prepare_adapter(session: Session, form: ReceivedForm) -> dict:
    """Validate a PEFT upload (config, safetensors header, shapes against the base); return create_version kwargs."""
    for required in ("adapter_config.json", "adapter_model.safetensors"):
        if required not in form.files:
            raise Invalid(f"missing file {required!r}; an adapter upload needs adapter_config.json and "
                          "adapter_model.safetensors")
    config_blob = form.files["adapter_config.json"]
    if config_blob.size > MAX_CONFIG_BYTES:
        raise Invalid(f"adapter_config.json is {config_blob.size} bytes; the limit is {MAX_CONFIG_BYTES}")
    try:
        config = parse_adapter_config(config_blob.path.read_bytes())
        base_name = form.fields.get("base") or config.get("base_model_name_or_path")
        if not base_name:
            raise Invalid("no base given: send the form field 'base' or set base_model_name_or_path in the config")
        base = registry.find_base(session, base_name)
        if base is None:
            known = ", ".join(b.name for b in registry.list_bases(session)) or "none"
            raise Invalid(f"unknown base {base_name!r}; registered bases: {known}")
        weights = form.files["adapter_model.safetensors"]
        with open(weights.path, "rb") as f:
            tensors, _meta = read_header(f, weights.size)
        check_lora_tensors(config, tensors, base.module_shapes)
    except (AdapterValidationError, HeaderError) as exc:
        raise Invalid(str(exc)) from None
    return {"base_id": base.id, "peft_config": config, "metrics": {}}


def _prepare_dataset(session: Session, form: ReceivedForm) -> dict:
    if "data.jsonl" not in form.files:
        raise Invalid("missing file 'data.jsonl'; a dataset upload is one JSONL file of {\"prompt\", \"completion\"}")
    try:
        records = validate_jsonl(form.files["data.jsonl"].path)
    except DatasetError as exc:
        raise Invalid(f"data.jsonl: {exc}") from None
    return {"base_id": None, "peft_config": None, "metrics": {"records": records}}


def _no_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _prepare_generator(session: Session, form: ReceivedForm) -> dict:
    """An ICM-LoRA generator (usually published by a train_generator job): its config names the base it generates
    adapters for, and its weights file must be a well-formed safetensors file."""
    for required in ("generator_config.json", "generator.safetensors"):
        if required not in form.files:
            raise Invalid(f"missing file {required!r}; a generator upload needs generator_config.json and "
                          "generator.safetensors")
    if form.files["generator_config.json"].size > MAX_CONFIG_BYTES:
        raise Invalid(f"generator_config.json is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json_safety.loads(form.files["generator_config.json"].path.read_bytes(), "generator_config.json",
                                   parse_constant=_no_constant)
    except json_safety.UnsafeJson as exc:
        raise Invalid(str(exc)) from None
    except ValueError as exc:
        raise Invalid(f"generator_config.json is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise Invalid("generator_config.json must be a JSON object")
    base_name = form.fields.get("base") or config.get("base")
    base = registry.find_base(session, base_name) if isinstance(base_name, str) and base_name else None
    if base is None:
        raise Invalid(f"unknown base {base_name!r}: give a registered base in the 'base' field or the config")
    weights = form.files["generator.safetensors"]
    try:
        with open(weights.path, "rb") as f:
            read_header(f, weights.size)
    except HeaderError as exc:
        raise Invalid(f"generator.safetensors: {exc}") from None
    return {"base_id": base.id, "peft_config": None, "metrics": {}}


class TagIn(BaseModel):
    """The body of PUT .../tags/{tag}. A number a version can have (1 to the column's 2^31-1; past it PostgreSQL
    refused the statement, a 500): one that no version has is a 404, like any version not there."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1, le=MAX_VERSION, examples=[1])


PREPARE = {"adapter": (ADAPTER_FILES, _prepare_adapter), "dataset": (DATASET_FILES, _prepare_dataset),
           "generator": (GENERATOR_FILES, _prepare_generator)}
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="a version number")]
# what a route on one named object answers besides its own 200: no token or scope, not there (or hidden), a bad name
NAMED = errors(401, 403, 404, 422)
NAMED_WITH_BODY = errors(400, 401, 403, 404, 422)  # ... and a JSON body that is not JSON


def make_router(kind: str, plural: str) -> APIRouter:
    router = APIRouter(prefix=f"/api/v1/{plural}", tags=[plural], responses=errors(503))
    allowed, prepare = PREPARE[kind]
    inspectors = {"adapter_model.safetensors": lambda: NonFiniteScanner().feed} if kind == "adapter" else {}

    def visible(session: Session, tok: ApiToken | None, ns: str, name: str) -> Artifact:
        """The artifact, or the same 404 as for one not there when the caller may not read it (no 401/403 that
        would tell an anonymous caller a private object exists)."""
        artifact = registry.get_artifact(session, kind, ns, name)
        if not can_read(tok, artifact.namespace):
            raise NotFound(f"no {kind} {ns}/{name}")
        return artifact

    def writable(session: Session, tok: ApiToken | None, ns: str, name: str) -> Artifact:
        """For the write routes: 404 unless readable (as above), then 401/403 unless the caller may write."""
        artifact = visible(session, tok, ns, name)
        require(tok, artifact.namespace, "write")
        return artifact

    def resolve(session: Session, artifact: Artifact, ref: str):
        check_version_ref(kind, artifact.namespace.name, artifact.name, ref)
        return registry.resolve_in(session, artifact, ref)

    @router.post("/{ns}/{name}/versions", status_code=201, response_model=views.VersionView, summary=f"Upload a new {kind} version (multipart)",
                 responses=errors(400, 401, 403, 408, 409, 413, 415, 422, 503, why={
                     409: f"the {kind} belongs to another base", 503: "too many uploads at once, or the database is "
                     "busy; retry after Retry-After seconds"}),
                 openapi_extra=multipart_upload(allowed, tuple(f for f in allowed if f != "README.md")))
    async def upload(ns: Name, name: Name, request: Request, blobs: BlobStore = Depends(store),
                     cfg: Settings = Depends(settings)) -> dict:
        """See `_store_and_publish` for why this route takes no request-long session, and UploadSlots for when it
        answers 503."""
        registry.check_name(ns, "namespace")
        registry.check_name(name, f"{kind} name")
        session_factory = request.app.state.session_factory
        tok = await run_in_threadpool(_authorize_upload, request, session_factory, ns)
        async with upload_slot(request.app):
            form = await receive_form(request, blobs, allowed, cfg.max_upload_bytes, inspectors)
            version, tags = await run_in_threadpool(_store_and_publish, session_factory, blobs, form, prepare, kind,
                                                    ns, name, f"token:{tok.prefix}" if tok else None)
        request.app.state.metrics.versions_created.labels(kind).inc()
        return views.version_view(None, version, tags=tags)  # the version as published: no query needed

    @router.get("", summary=f"List {plural}", response_model=views.ArtifactList, responses=errors(401, 422))
    def list_all(namespace: str | None = None, base: str | None = None, q: str | None = None,
                 session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
        found = registry.list_artifacts(session, kind=kind, namespace=namespace, base=base, q=q)
        return {"items": views.adapter_views(session, [a for a in found if can_read(tok, a.namespace)])}

    @router.get("/{ns}/{name}", response_model=views.ArtifactView, responses=NAMED)
    def show(ns: Name, name: Name, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
        registry.one_statement_transactions(session)  # PostgreSQL: no BEGIN/ROLLBACK round trips around the reads
        return views.adapter_view(session, visible(session, tok, ns, name))

    @router.get("/{ns}/{name}/versions", response_model=views.VersionList, responses=NAMED)
    async def versions(ns: Name, name: Name, request: Request,
                       tok: ApiToken | None = Depends(token_without_session)) -> Response:
        """One trip to a pool thread for the whole listing, its session opened and closed there (a sync route with
        Depends(db) takes three: the session's open and close, and the route)."""
        def listing() -> bytes:
            with request.app.state.session_factory() as session:
                artifact = visible(session, tok, ns, name)
                return views.version_list_json(session, artifact, registry.version_summaries(session, artifact))

        return Response(await run_in_threadpool(listing), media_type="application/json")  # see version_list_json

    @router.get("/{ns}/{name}/versions/{ref}", response_model=views.VersionView, responses=NAMED)
    def version(ns: Name, name: Name, ref: str, session: Session = Depends(db),
                tok: ApiToken | None = Depends(token)) -> dict:
        check_version_ref(kind, ns, name, ref)
        registry.one_statement_transactions(session)  # PostgreSQL: no BEGIN/ROLLBACK round trips around the reads
        found = registry.find_version_with_tags(session, kind, ns, name, ref)  # one query: there and readable
        if found is None or not can_read(tok, found[0].artifact.namespace):  # else the same 401/403/404 as any route
            return views.version_view(session, resolve(session, visible(session, tok, ns, name), ref))
        return views.version_view(session, *found)

    @router.get("/{ns}/{name}/versions/{ref}/files/{filename:path}", summary="Download a file (ETag, Range)",
                response_class=Response, responses={**file_download(), **NAMED})
    def download(ns: Name, name: Name, ref: str, filename: str, request: Request, session: Session = Depends(db),
                 tok: ApiToken | None = Depends(token), blobs: BlobStore = Depends(store)):
        v = resolve(session, visible(session, tok, ns, name), ref)
        entry = next((f for f in v.files if f["name"] == filename), None)
        if entry is None:
            raise HTTPException(404, f"{registry.version_ref(v)} has no file {filename!r}; it has "
                                     f"{', '.join(f['name'] for f in v.files)}")
        return blob_response(request, blobs, entry)

    router.add_api_route("/{ns}/{name}/versions/{ref}/files/{filename:path}", download, methods=["HEAD"],
                         include_in_schema=False)

    @router.get("/{ns}/{name}/versions/{ref}/lineage", response_model=views.LineageView, responses=NAMED)
    def lineage(ns: Name, name: Name, ref: str, session: Session = Depends(db),
                tok: ApiToken | None = Depends(token)) -> dict:
        v = resolve(session, visible(session, tok, ns, name), ref)
        lineage = registry.lineage_of(session, v, readable=lambda namespace: can_read(tok, namespace))
        return {"version": registry.version_ref(v), **lineage}

    @router.put("/{ns}/{name}/tags/{tag}", response_model=views.ArtifactView, responses=NAMED_WITH_BODY)
    def put_tag(ns: Name, name: Name, tag: Name, body: TagIn, session: Session = Depends(db),
                tok: ApiToken | None = Depends(token)) -> dict:
        # Four statements with a cached token, and on PostgreSQL no BEGIN or COMMIT: the adapter (for the access
        # check), the upsert that finds the version and moves the tag (a transaction by itself), the adapter's latest
        # version and its tags (a comment, not a docstring: FastAPI would publish a docstring in the OpenAPI schema).
        registry.one_statement_transactions(session)
        artifact = writable(session, tok, ns, name)
        number = body.version
        if tag in ("latest", "main") or tag.isdigit() or not registry.valid_name(tag):
            raise Invalid(f"{tag!r} cannot be a tag name (reserved, numeric, or not [A-Za-z0-9._-])")
        check_version_ref(kind, ns, name, str(number))
        registry.set_tag(session, artifact, tag, number)
        view = views.adapter_view(session, artifact)  # before the commit: on the same connection, so no new BEGIN
        session.commit()
        return view

    # {ref}, like the GET beside it, so the document has one path with both methods (a DELETE of a ref that is not a
    # number is the 422 it declares, not a route the document does not know)
    @router.delete("/{ns}/{name}/versions/{ref}", response_model=views.VersionView, responses=NAMED)
    def yank(ns: Name, name: Name, ref: VersionNumber, session: Session = Depends(db),
             tok: ApiToken | None = Depends(token)) -> dict:
        number = ref
        artifact = writable(session, tok, ns, name)
        registry.yank(session, artifact, number)
        session.commit()
        return views.version_view(session, registry.resolve_version(session, kind, ns, name, str(number)))

    @router.patch("/{ns}/{name}/versions/{number}/metrics", response_model=views.VersionView, responses=NAMED_WITH_BODY)
    def add_metrics(ns: Name, name: Name, number: VersionNumber, body: dict = Body(...), session: Session = Depends(db),
                    tok: ApiToken | None = Depends(token)) -> dict:
        writable(session, tok, ns, name)
        v = registry.resolve_version(session, kind, ns, name, str(number))
        try:
            json.dumps(body, allow_nan=False)
        except ValueError:
            raise Invalid("metrics must be finite JSON values") from None
        # Take the row's write lock before reading the metrics to merge into (PostgreSQL: the row lock; SQLite: the
        # database write lock), so concurrent PATCHes of different keys queue instead of overwriting each other.
        session.execute(update(ArtifactVersion).where(ArtifactVersion.id == v.id).values(yanked=ArtifactVersion.yanked))
        session.refresh(v, ["metrics"])
        v.metrics = {**(v.metrics or {}), **body}
        session.commit()
        return views.version_view(session, v)

    return router


# ------------------------------------------------------------------ the upload's steps

# The limit is per API process (Settings.max_concurrent_uploads, 64 by default). Past its body an upload needs a
# pooled connection for a few short steps at a time (the pool is 5+10 on SQLite, 20+20 on PostgreSQL), so 64 of them
# queue for connections for well under the pool's 30 s timeout.


class UploadSlots:
    """How many uploads one API process takes at once; the next one is a 503 + Retry-After, before its body is read.

    Uploads hold no database connection while their bodies stream, so the pool is not what runs out; what does is
    everything after the body (validation, claims, the version's transaction: short, but serialised per adapter and,
    on SQLite, per database), threads, and staging disk. Refusing early keeps every admitted upload fast and every
    refused one cheap: its body never crosses the network."""

    def __init__(self, limit: int):
        self.limit, self.taken = limit, 0


def _slots(app) -> UploadSlots:
    slots = getattr(app.state, "upload_slots", None)
    if slots is None:
        limit = app.state.settings.max_concurrent_uploads
        slots = app.state.upload_slots = UploadSlots(limit)
    return slots


@contextlib.asynccontextmanager
async def upload_slot(app):
    slots = _slots(app)  # taken and given back on the event loop thread: no lock needed
    if slots.taken >= slots.limit:
        raise HTTPException(503, f"{slots.taken} uploads are in progress on this server; retry shortly",
                            headers={"Retry-After": "1", "Connection": "close"})
    slots.taken += 1
    try:
        yield
    finally:
        slots.taken -= 1


def _authorize_upload(request: Request, session_factory, ns: str) -> ApiToken | None:
    """The caller's token, checked for write on `ns`, in a session of its own that is closed before the body streams."""
    with session_factory() as session:
        tok = token(request, session)
        namespace = session.query(Namespace).filter_by(name=ns).one_or_none()
        require(tok, namespace or ns, "write")
        return tok


def _store_and_publish(session_factory, blobs: BlobStore, form: ReceivedForm, prepare, kind: str, namespace: str,
                       name: str, created_by: str | None) -> tuple[ArtifactVersion, list[str]]:
    """Validate, claim, store and publish a received form; the new version (detached) and its tags.

    Run on a pool thread, all of it in one trip (each trip costs a hand-off each way). Each step that needs the
    database opens and closes its own short session: no connection is held while a body streams or while another
    step waits. The files' sha256s are claimed (hub.gc) before they are stored, so a concurrent garbage collection
    cannot remove a blob this upload is about to publish; on any failure the staged files are discarded and the
    claimed blobs released, which deletes those nobody else wants: a failed upload leaves no blob behind (what a
    release could not do, the collector does after its grace period)."""
    stamp = None
    try:
        with session_factory() as session:
            fields = prepare(session, form)
        files = [FileEntry(fname, staged.sha256, staged.size) for fname, staged in sorted(form.files.items())]
        stamp = gc.claim_blobs(session_factory, {f.sha256: f.size for f in files})
        for staged in list(form.files.values()):
            blobs.commit(staged)
        form.files.clear()
        tags = [form.fields["tag"]] if form.fields.get("tag") else []
        version = registry.create_version(session_factory, kind=kind, namespace=namespace, name=name, files=files,
                                          created_by=created_by, description=form.fields.get("description"),
                                          tags=tags, **fields)
        return version, tags
    except BaseException:
        form.discard(blobs)
        if stamp is not None:
            _release_quietly(session_factory, blobs, [f.sha256 for f in files], stamp)
        raise


def _release_quietly(session_factory, blobs: BlobStore, shas: list[str], stamp) -> None:
    """Give a failed upload's claims back; if the database refuses even that, the collector gets them later."""
    for attempt in range(3):
        try:
            gc.release_blobs(session_factory, blobs, shas, stamp)
            return
        except Exception:
            if attempt == 2:
                logger.warning("could not release the blobs of a failed upload; garbage collection will", exc_info=True)
            else:
                time.sleep(0.2 * (attempt + 1))


adapter_router = make_router("adapter", "adapters")
dataset_router = make_router("dataset", "datasets")
generator_router = make_router("generator", "generators")
router = APIRouter()
router.include_router(gc_routes.router)  # the blob collector's admin endpoint, wired here with the uploads it protects
router.include_router(adapter_router)
router.include_router(dataset_router)
router.include_router(generator_router)
