"""Registry services shared by the API and the workers: bases, adapters, versions, tags, lineage.

Functions take a Session and leave committing to the caller, except `create_version`, which owns its transaction
because version numbering is the one place where concurrency matters: numbers must be unique and gapless even with
50 uploads to one adapter at once. It does that with a counter on the adapter row, incremented by an UPDATE that is
the transaction's first write to that row, so PostgreSQL serialises the writers on the row lock and SQLite on its
database lock; a failed upload rolls the increment back with everything else, so no number is skipped.
The `blobs` rows of a version's files are not written here: every writer claims them before storing the files
(hub.gc.claim_blobs), so by the time a version names a blob its row exists.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sqlalchemy import Float, Integer, Text, bindparam, case, cast, func, insert, or_, select, true, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased, contains_eager, lazyload, selectinload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from hub.models import Artifact, ArtifactVersion, BaseAlias, RegisteredBase, Lineage, Namespace, Tag, utcnow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class RegistryError(Exception):
    status_code = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(RegistryError):
    status_code = 404


class Forbidden(RegistryError):
    status_code = 403


class Conflict(RegistryError):
    status_code = 409


class Invalid(RegistryError):
    status_code = 422


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int

    def as_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


def valid_name(value: str) -> bool:
    # fullmatch: with match, `$` also matches before a final newline, and "acme\n" passed for a name
    return isinstance(value, str) and bool(_NAME.fullmatch(value)) and ".." not in value


def check_name(value: str, what: str = "name") -> None:
    if not valid_name(value):
        raise Invalid(f"invalid {what} {value!r}: use 1-96 characters from [A-Za-z0-9._-], starting with a letter or "
                      "digit, without '..'")


def parse_ref(text: str) -> tuple[str, str, str]:
    """'ns/name@ref' -> (ns, name, ref); the ref defaults to 'latest'."""
    path, _, ref = text.partition("@")
    ns, slash, name = path.partition("/")
    if not slash or not valid_name(ns) or not valid_name(name) or (ref and not re.match(r"^[A-Za-z0-9._-]+$", ref)):
        raise Invalid(f"{text!r} is not a version reference of the form namespace/name[@version-or-tag]")
    return ns, name, ref or "latest"


def version_ref(version: ArtifactVersion) -> str:
    return f"{version.artifact.namespace.name}/{version.artifact.name}@{version.number}"


# ------------------------------------------------------------------ namespaces and bases

def _insert_ignore(session: Session, model, values: dict, keys: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    session.execute(module.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))


def ensure_namespace(session: Session, name: str, private: bool | None = None) -> Namespace:
    check_name(name, "namespace")
    _insert_ignore(session, Namespace, {"name": name, "private": bool(private), "created_at": utcnow()}, ["name"])
    ns = session.scalars(select(Namespace).where(Namespace.name == name)).one()
    if private is not None and ns.private != private:
        ns.private = private
    return ns


def create_base(session: Session, name: str, architecture: str, module_shapes: dict, aliases=(), source: str = "") -> RegisteredBase:
    for taken in [name, *aliases]:
        if find_base(session, taken) is not None:
            raise Conflict(f"a base model named {taken!r} is already registered")
    base = RegisteredBase(name=name, architecture=architecture, module_shapes=module_shapes, source=source)
    base.aliases = [BaseAlias(alias=a) for a in dict.fromkeys(aliases) if a != name]
    session.add(base)
    session.flush()
    return base


def find_base(session: Session, name_or_alias: str) -> RegisteredBase | None:
    base = session.scalars(select(RegisteredBase).where(RegisteredBase.name == name_or_alias)).first()
    if base is None:
        base = session.scalars(select(RegisteredBase).join(BaseAlias).where(BaseAlias.alias == name_or_alias)).first()
    return base


def list_bases(session: Session) -> list[RegisteredBase]:
    return list(session.scalars(select(RegisteredBase).options(selectinload(RegisteredBase.aliases)).order_by(RegisteredBase.name)))


# ------------------------------------------------------------------ artifacts (adapters, datasets, generators) and versions

def get_artifact(session: Session, kind: str, namespace: str, name: str) -> Artifact:
    adapter = session.scalars(
        select(Artifact).join(Namespace).where(Namespace.name == namespace, Artifact.name == name, Artifact.kind == kind)
    ).first()
    if adapter is None:
        raise NotFound(f"no {kind} {namespace}/{name}")
    return adapter


def list_artifacts(session: Session, kind: str = "adapter", namespace: str | None = None, base: str | None = None,
                   q: str | None = None) -> list[Artifact]:
    query = select(Artifact).join(Namespace).where(Artifact.kind == kind)
    if namespace:
        query = query.where(Namespace.name == namespace)
    if base:
        found = find_base(session, base)
        if found is None:
            return []
        query = query.where(Artifact.base_id == found.id)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(or_(func.lower(Artifact.name).like(pattern), func.lower(Artifact.description).like(pattern),
                                func.lower(Namespace.name).like(pattern)))
    return list(session.scalars(query.order_by(Namespace.name, Artifact.name)))


def list_versions(session: Session, adapter: Artifact) -> list[ArtifactVersion]:
    """All versions of `adapter`, oldest first, in one query that does not join the adapter back onto every row
    (the caller holds it; a version's `artifact` then comes from the session's identity map)."""
    return list(session.scalars(select(ArtifactVersion).options(lazyload(ArtifactVersion.artifact))
                                .where(ArtifactVersion.adapter_id == adapter.id).order_by(ArtifactVersion.number)))


def version_summaries(session: Session, adapter: Artifact) -> list:
    """Rows (id, number, files, metrics, created_by, job_id, yanked, created_at, peft_type, r, lora_alpha,
    target_module_count) for every version of `adapter`, oldest first, in one query; `files` and `metrics` are the
    stored JSON text, not decoded.

    For listings, which show a summary of each PEFT config rather than the config: the database picks the four
    fields out of the stored JSON, so the configs are neither sent over nor parsed, the rows are plain tuples rather
    than ORM objects, and the JSON a listing repeats verbatim stays text (loading and parsing 200 whole
    versions was most of a 200-version listing)."""
    # Each field is typed (no JSON decoded per row) and guarded: a value of another JSON type is NULL, not an error.
    config = ArtifactVersion.peft_config
    source = ArtifactVersion.__table__
    if session.get_bind().dialect.name == "postgresql":
        # The column is `json` (text): every operator on it parses the whole config again, so each row's config is
        # converted to jsonb once (a LATERAL subquery; OFFSET 0 keeps the planner from copying the cast into every
        # use) and the fields are read from that.
        parsed = select(cast(config, JSONB).label("c")).correlate(ArtifactVersion).offset(0).lateral("parsed")
        source = source.join(parsed, true())

        def item(key):
            return parsed.c.c.op("->", return_type=JSONB)(key)

        def text_of(key):
            return parsed.c.c.op("->>", return_type=Text)(key)

        def field(key, json_type, value):
            return case((func.jsonb_typeof(item(key)) == json_type, value(key)), else_=None)

        peft_type = field("peft_type", "string", text_of)
        r, alpha = (field(key, "number", lambda k: cast(text_of(k), Float)) for key in ("r", "lora_alpha"))
        count = field("target_modules", "array", lambda k: func.jsonb_array_length(item(k)))
    else:
        text = type_coerce(config, Text)

        def field(key, sqlite_types, value=func.json_extract):
            path = f"$.{key}"
            return case((func.json_type(text, path).in_(sqlite_types), value(text, path)), else_=None)

        peft_type = field("peft_type", ("text",))
        r, alpha = (field(key, ("integer", "real")) for key in ("r", "lora_alpha"))
        count = field("target_modules", ("array",), func.json_array_length)
    as_text = cast if session.get_bind().dialect.name == "postgresql" else type_coerce  # SQLite stores JSON as text
    files, metrics = as_text(ArtifactVersion.files, Text), as_text(ArtifactVersion.metrics, Text)
    return session.execute(
        select(ArtifactVersion.id, ArtifactVersion.number, files.label("files"), metrics.label("metrics"),
               ArtifactVersion.created_by, ArtifactVersion.job_id, ArtifactVersion.yanked, ArtifactVersion.created_at,
               peft_type.label("peft_type"), r.label("r"), alpha.label("lora_alpha"),
               count.label("target_module_count"))
        .select_from(source).where(ArtifactVersion.adapter_id == adapter.id).order_by(ArtifactVersion.number)).all()


def resolve_version(session: Session, kind: str, namespace: str, name: str, ref: str = "latest") -> ArtifactVersion:
    """A version by 'latest'/'main' (newest not yanked), number, 'v<N>', or tag. Numbers reach yanked versions too."""
    return resolve_in(session, get_artifact(session, kind, namespace, name), ref)


def resolve_in(session: Session, adapter: Artifact, ref: str = "latest") -> ArtifactVersion:
    """`resolve_version` for an adapter the caller already holds: one query, which does not join the adapter back
    onto the version (its `artifact` is set to `adapter`)."""
    query = (select(ArtifactVersion).options(lazyload(ArtifactVersion.artifact))
             .where(ArtifactVersion.adapter_id == adapter.id))
    version = _first_by_ref(session, query, adapter.id, ref)
    if version is None:
        what = f"{adapter.kind} {adapter.namespace.name}/{adapter.name}"
        if ref in ("latest", "main"):
            raise NotFound(f"{what} has no version that is not yanked")
        raise NotFound(f"{what} has no version or tag {ref!r}")
    # The session holds objects weakly: without this reference a caller that dropped `adapter` would load it again.
    set_committed_value(version, "artifact", adapter)
    return version


def find_version_with_tags(session: Session, kind: str, namespace: str, name: str,
                           ref: str) -> tuple[ArtifactVersion, list[str]] | None:
    """The version `ref` of namespace/name with its adapter and namespace, and its tags (sorted), in one query; None
    when the adapter or the version is not there, for the caller to find out which (`get_artifact`, `resolve_in`).

    The tags come from a correlated subquery (string_agg on PostgreSQL, group_concat on SQLite; tag names cannot
    hold the comma). A read by name or by tag, the API's most frequent request, is then one round trip."""
    parsed = _parse_ref(ref)
    if parsed is None:
        return None
    by, value = parsed
    row = session.execute(_version_with_tags(by), {"namespace": namespace, "name": name, "kind": kind,
                                                   "value": value}).first()
    return None if row is None else (row[0], sorted(row[1].split(",")) if row[1] else [])


@functools.cache
def _version_with_tags(by: str):
    """The query of `find_version_with_tags` for a ref `by` latest, number or tag, built once (building it, the
    aliased Tag and the aggregate, cost more CPU than running it); everything that varies is a bound parameter."""
    other = aliased(Tag)  # not the Tag a ref by tag joins: that one is narrowed to the one name
    tags = (select(func.aggregate_strings(other.name, ",")).where(other.version_id == ArtifactVersion.id)
            .correlate(ArtifactVersion).scalar_subquery())
    query = (select(ArtifactVersion, tags).join(ArtifactVersion.artifact).join(Artifact.namespace)
             .options(contains_eager(ArtifactVersion.artifact).contains_eager(Artifact.namespace))
             .where(Namespace.name == bindparam("namespace"), Artifact.name == bindparam("name"),
                    Artifact.kind == bindparam("kind")))
    return _narrowed(query, Artifact.id, by, bindparam("value", type_=Integer if by == "number" else Text))


def _first_by_ref(session: Session, query, adapter_id, ref: str) -> ArtifactVersion | None:
    """`query` (versions of one adapter, whose id is `adapter_id`) narrowed to `ref`: its first version, or None."""
    parsed = _parse_ref(ref)
    return session.scalars(_narrowed(query, adapter_id, *parsed)).first() if parsed is not None else None


def _parse_ref(ref: str) -> tuple[str, int | str | None] | None:
    """A version ref as (by, value): ("latest", None) for 'latest'/'main' (newest not yanked), ("number", N) for a
    number or 'v<N>' (yanked versions too), ("tag", name) otherwise; None for a number no version can have (and the
    database cannot bind)."""
    if ref in ("latest", "main"):
        return "latest", None
    number = ref[1:] if re.match(r"^v\d+$", ref) else ref
    if not number.isdigit():
        return "tag", ref
    if len(number) > 10 or not number.isascii() or int(number) > 2**31 - 1:
        return None
    return "number", int(number)


def _narrowed(query, adapter_id, by: str, value):
    """`query` (versions of one adapter, whose id is `adapter_id`) narrowed to the ref `_parse_ref` made (by, value);
    `value` may be a bound parameter, for a query built once."""
    if by == "latest":
        return query.where(ArtifactVersion.yanked.is_(False)).order_by(ArtifactVersion.number.desc()).limit(1)
    if by == "number":
        return query.where(ArtifactVersion.number == value)
    return query.join(Tag, Tag.version_id == ArtifactVersion.id).where(Tag.adapter_id == adapter_id, Tag.name == value)


def create_version(session_factory: sessionmaker, *, kind: str, namespace: str, name: str, base_id: int | None,
                   peft_config: dict | None, files: list[FileEntry], metrics: dict | None = None,
                   created_by: str | None = None, job_id: str | None = None,
                   parents: list[tuple[int, str]] = (), description: str | None = None,
                   tags=()) -> ArtifactVersion:
    """Publish a new version (and the namespace/adapter on first use) in one transaction; see the module docstring.

    With a `job_id`, a second call for the same adapter returns the version the first call made (a requeued job
    publishes exactly once)."""
    check_name(namespace, "namespace")
    check_name(name, f"{kind} name")
    for tag in tags:
        check_tag(tag)
    from hub.job_kinds import RELATIONS  # the kinds declare the edges (hub.job_kinds imports this module)

    for _, relation in parents:
        if relation not in RELATIONS:
            raise Invalid(f"unknown lineage relation {relation!r}; one of {', '.join(RELATIONS)}")
    for attempt in range(20):
        try:
            return _create_version_once(session_factory, kind, namespace, name, base_id, peft_config, files,
                                        metrics, created_by, job_id, parents, description, tags)
        except _AlreadyPublished as done:
            with session_factory() as s:
                return s.scalars(select(ArtifactVersion).where(ArtifactVersion.id == done.version_id)).one()
        except OperationalError as exc:  # SQLite "database is locked" under heavy contention: try again
            if "locked" not in str(exc) or attempt == 19:
                raise
    raise AssertionError("unreachable")


class _AlreadyPublished(Exception):
    def __init__(self, version_id: int):
        self.version_id = version_id


def _create_version_once(session_factory, kind, namespace, name, base_id, peft_config, files, metrics, created_by,
                         job_id, parents, description, tags) -> ArtifactVersion:
    with session_factory() as s, s.begin():
        dialect = s.get_bind().dialect.name
        bump, insert_version = _publish_statements(dialect)
        where = {"w_namespace": namespace, "w_kind": kind, "w_name": name}
        # The first statement writes, so SQLite takes its write lock before reading anything. It is the counter's
        # increment itself when the adapter exists (every version but the first): it also returns what the rest
        # needs of the adapter, its base's name included, so no other read follows. The row lock (PostgreSQL) is held
        # until commit, so concurrent publishers to this adapter queue up here.
        bumped = s.execute(bump, where).first()
        if bumped is None:  # the first version: make the namespace and the adapter (or find a racing publisher's)
            _insert_ignore(s, Namespace, {"name": namespace, "private": False, "created_at": utcnow()}, ["name"])
            ns = s.scalar(select(Namespace.id).where(Namespace.name == namespace))
            _insert_ignore(s, Artifact, {"namespace_id": ns, "kind": kind, "name": name, "base_id": base_id,
                                        "description": description, "task_tags": [], "version_count": 0,
                                        "created_at": utcnow()}, ["namespace_id", "kind", "name"])
            bumped = s.execute(bump, where).one()
        adapter_id, number, have_base_id, have_description, base_name = bumped
        if have_base_id != base_id:
            raise Conflict(f"{kind} {namespace}/{name} belongs to base {base_name or 'no base'!r}; a new version must "
                           "use the same base")
        if job_id is not None:
            existing = s.scalar(select(ArtifactVersion.id).where(ArtifactVersion.adapter_id == adapter_id,
                                                                 ArtifactVersion.job_id == job_id))
            if existing is not None:
                raise _AlreadyPublished(existing)  # leaving the block rolls the counter increment back
        if description and not have_description:
            s.execute(update(Artifact).where(Artifact.id == adapter_id).values(description=description))
            have_description = description
        row = {"adapter_id": adapter_id, "number": number, "peft_config": peft_config,
               "files": [f.as_dict() for f in files], "metrics": dict(metrics or {}), "created_by": created_by,
               "job_id": job_id, "yanked": False, "created_at": utcnow()}
        version_id = s.execute(insert_version, row).scalar_one()
        for parent_id, relation in parents:
            s.add(Lineage(child_id=version_id, parent_id=parent_id, relation=relation))
        for tag in tags:
            _point_tag(s, adapter_id, tag, version_id)
    # What was written, as detached objects built here rather than read back: the caller's view of the new version
    # (hub.api.views.version_view) and its ref need nothing else.
    adapter = Artifact(id=adapter_id, kind=kind, name=name, base_id=base_id, description=have_description,
                       version_count=number, namespace=Namespace(name=namespace),
                       base=RegisteredBase(id=base_id, name=base_name) if base_id is not None else None)
    return ArtifactVersion(id=version_id, artifact=adapter, **row)


@functools.cache
def _publish_statements(dialect: str):
    """`create_version`'s counter increment and version insert, built once per dialect with parameters bound by name,
    so SQLAlchemy reuses their compiled form (building and cache-keying ORM statements was most of an upload's
    database CPU)."""
    adapters, versions, bases = Artifact.__table__, ArtifactVersion.__table__, RegisteredBase.__table__
    ns_id = select(Namespace.__table__.c.id).where(Namespace.__table__.c.name == bindparam("w_namespace"))
    base_name = select(bases.c.name).where(bases.c.id == adapters.c.base_id).scalar_subquery()
    bump = (update(adapters)
            .where(adapters.c.namespace_id == ns_id.scalar_subquery(), adapters.c.kind == bindparam("w_kind"),
                   adapters.c.name == bindparam("w_name"))
            .values(version_count=adapters.c.version_count + 1)
            .returning(adapters.c.id, adapters.c.version_count, adapters.c.base_id, adapters.c.description, base_name))
    columns = ("adapter_id", "number", "peft_config", "files", "metrics", "created_by", "job_id", "yanked", "created_at")
    insert_version = (insert(versions).values({c: bindparam(c, type_=versions.c[c].type) for c in columns})
                      .returning(versions.c.id))
    return bump, insert_version


def check_tag(tag: str) -> None:
    if tag in ("latest", "main") or tag.isdigit() or re.match(r"^v\d+$", tag) or not valid_name(tag):
        raise Invalid(f"{tag!r} cannot be a tag: reserved (latest, main, numbers, v<N>) or not [A-Za-z0-9._-]")


def _point_tag(session: Session, adapter_id: int, tag: str, version_id: int) -> None:
    """Create or move a tag in one statement (INSERT ... ON CONFLICT DO UPDATE).

    Not a delete then an insert: two concurrent moves of one tag on PostgreSQL would both delete (nothing, or the same
    row) and both insert, and the second insert fails on the primary key. The upsert takes the row lock instead, so
    concurrent moves queue and the last one wins."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Tag).values(adapter_id=adapter_id, name=tag, version_id=version_id)
    session.execute(statement.on_conflict_do_update(index_elements=["adapter_id", "name"],
                                                    set_={"version_id": statement.excluded.version_id}))


def set_tag(session: Session, adapter: Artifact, tag: str, number: int) -> None:
    """Point `tag` at the adapter's version `number` (yanked ones too); NotFound when it has no such version.

    One statement finds the version and creates or moves the tag (INSERT ... SELECT ... ON CONFLICT DO UPDATE ...
    RETURNING): no SELECT of the version first, no re-read after. The SELECT finds no row when there is no such
    version, so nothing is written and RETURNING is empty: that is the 404. Concurrent moves of one tag queue on its
    row lock like `_point_tag`'s, and the last one wins."""
    check_tag(tag)
    if session.execute(_tag_at_number(session.get_bind().dialect.name),
                       {"adapter_id": adapter.id, "tag": tag, "number": number}).first() is None:
        raise NotFound(f"{adapter.kind} {adapter.namespace.name}/{adapter.name} has no version or tag {str(number)!r}")


@functools.cache
def _tag_at_number(dialect: str):
    """The upsert of `set_tag`, built once per dialect (its parameters are bound by name, so SQLAlchemy reuses the
    compiled statement instead of building and cache-keying one per request)."""
    module = postgresql if dialect == "postgresql" else sqlite
    versions, tags = ArtifactVersion.__table__, Tag.__table__  # Core tables: an ORM insert with a dict is a bulk one
    version = (select(versions.c.adapter_id, bindparam("tag", type_=tags.c.name.type), versions.c.id)
               .where(versions.c.adapter_id == bindparam("adapter_id"),
                      versions.c.number == bindparam("number")))  # a WHERE also settles SQLite's ON ambiguity
    statement = module.insert(tags).from_select(["adapter_id", "name", "version_id"], version)
    return (statement.on_conflict_do_update(index_elements=["adapter_id", "name"],
                                            set_={"version_id": statement.excluded.version_id})
            .returning(tags.c.version_id))


def one_statement_transactions(session: Session) -> None:
    """On PostgreSQL, let each statement of this session be its own transaction (AUTOCOMMIT), when nothing has been
    read yet (the caller's token came from the cache).

    psycopg otherwise sends a BEGIN before the first statement and a COMMIT (or the pool's ROLLBACK) after the last:
    two round trips a request, as many as the statements themselves on a tag move (the adapter, the upsert) or a
    version read (the version, its tags). Nothing is lost: at READ COMMITTED, PostgreSQL's default, every statement
    already reads a snapshot of its own inside a transaction too, and where there is a write it is one statement,
    atomic by itself. The pool puts the isolation level back when the connection is returned. Used by tag moves,
    version reads and `jobs._insert_job`. SQLite runs in-process, where BEGIN and COMMIT cost no round trip: left as
    it is."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def yank(session: Session, adapter: Artifact, number: int) -> ArtifactVersion:
    version = resolve_in(session, adapter, str(number))
    if not version.yanked:
        version.yanked, version.yanked_at = True, utcnow()
    session.flush()
    return version


def lineage_of(session: Session, version: ArtifactVersion, readable=lambda namespace: True) -> dict:
    """Parents and children of a version, each {"version": ref, "object": kind, "relation", "hidden"}; an edge to a
    version in a namespace the caller may not read is only {"hidden": true}: no name, no kind and no relation (a
    relation alone said too much: `discriminates_for` told anyone that a private transfer kit exists)."""
    def edges(column_self, column_other):
        rows = session.execute(select(Lineage.relation, ArtifactVersion)
                               .join(ArtifactVersion, ArtifactVersion.id == column_other)
                               .where(column_self == version.id))
        found = []
        for relation, other in rows:
            if readable(other.artifact.namespace):
                found.append({"version": version_ref(other), "object": other.artifact.kind, "relation": relation,
                              "hidden": False})
            else:
                found.append({"version": None, "object": None, "relation": None, "hidden": True})
        return sorted(found, key=lambda e: (e["hidden"], e["version"] or "", e["relation"] or ""))

    return {"parents": edges(Lineage.child_id, Lineage.parent_id), "children": edges(Lineage.parent_id, Lineage.child_id)}


def children_of(session: Session, version_id: int, relation: str, kind: str = "adapter") -> list[str]:
    """Refs of the versions that name this one as parent by `relation` (e.g. a transfer kit's discriminator is
    `discriminates_for` its adapter), newest first, yanked ones left out."""
    rows = session.scalars(select(ArtifactVersion).join(Lineage, Lineage.child_id == ArtifactVersion.id)
                           .join(Artifact, Artifact.id == ArtifactVersion.adapter_id)
                           .where(Lineage.parent_id == version_id, Lineage.relation == relation,
                                  Artifact.kind == kind, ArtifactVersion.yanked.is_(False))
                           .order_by(ArtifactVersion.created_at.desc(), ArtifactVersion.id.desc()))
    return [version_ref(v) for v in rows]
