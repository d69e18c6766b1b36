"""Moving a tag and reading a version by tag cost a fixed, small number of round trips (issue 11).

Moving a tag was nine round trips on PostgreSQL (BEGIN, the adapter, the version, the upsert, COMMIT, BEGIN, the
adapter's latest version, its tags, ROLLBACK); it is four now: the upsert finds the version itself
(INSERT ... SELECT ... ON CONFLICT DO UPDATE), and with a cached token each statement is its own transaction, so
psycopg sends no BEGIN, COMMIT or ROLLBACK. A read by tag (or any ref) is one statement: the version with its adapter
and, from a correlated subquery, its tags. The statements are counted with an SQLAlchemy event listener on the live
hub's engine, each with its connection's autocommit flag (psycopg sends BEGIN before a statement on a connection that
is not in autocommit); and the refusals, the 404s and the yanked-version rule are pinned next to the counts, since
they are what a shortcut could lose.
"""
from __future__ import annotations

import contextlib

from sqlalchemy import event

from tests.api.test_listing import publish, register_base


@contextlib.contextmanager
def statements(engine):
    """(statement, autocommit) for every SQL statement run on `engine` inside the block; autocommit is None on
    SQLite, whose driver has no such flag here (BEGIN and COMMIT cost no round trip in-process)."""
    seen: list[tuple[str, bool | None]] = []

    def record(conn, _cursor, statement, *_args):
        seen.append((statement, getattr(conn.connection.dbapi_connection, "autocommit", None)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def on_postgres(hub) -> bool:
    return hub.app.state.engine.dialect.name == "postgresql"


def tags_in_db(hub) -> str:
    return hub.scalar("select coalesce(string_agg(t.name || '=' || v.number, ',' order by t.name), '') from tags t "
                      "join adapter_versions v on v.id = t.version_id") if on_postgres(hub) else \
        hub.scalar("select coalesce(group_concat(x, ','), '') from (select t.name || '=' || v.number as x from tags t "
                   "join adapter_versions v on v.id = t.version_id order by t.name)")


def test_moving_a_tag_is_four_statements_and_on_postgres_no_begin_or_commit(hub):
    register_base(hub)
    publish(hub, "open", 3)
    with hub.client() as c:
        assert c.put("/api/v1/adapters/lists/open/tags/prod", json={"version": 1}).status_code == 200  # token cached
        for number in (2, 3, 1):
            with statements(hub.app.state.engine) as seen:
                r = c.put("/api/v1/adapters/lists/open/tags/prod", json={"version": number})
            assert r.status_code == 200 and r.json()["tags"] == {"prod": number}, r.text
            kinds = [s.split(None, 1)[0] for s, _ in seen]
            assert kinds == ["SELECT", "INSERT", "SELECT", "SELECT"], seen  # adapter, upsert, latest, tags
            if on_postgres(hub):
                assert all(autocommit for _, autocommit in seen), seen
        assert c.get("/api/v1/adapters/lists/open/versions/prod").json()["number"] == 1
    assert tags_in_db(hub) == "prod=1"


def test_reading_by_tag_is_one_statement_with_its_tags_and_on_postgres_no_begin_or_rollback(hub):
    register_base(hub)
    publish(hub, "open", 2)
    with hub.client() as c:
        for tag in ("prod", "beta"):
            assert c.put(f"/api/v1/adapters/lists/open/tags/{tag}", json={"version": 1}).status_code == 200
        for ref, number in (("prod", 1), ("beta", 1), ("2", 2), ("latest", 2), ("v1", 1)):
            with statements(hub.app.state.engine) as seen:
                r = c.get(f"/api/v1/adapters/lists/open/versions/{ref}")
            assert r.status_code == 200 and r.json()["number"] == number and len(seen) == 1, seen
            assert r.json()["tags"] == (["beta", "prod"] if number == 1 else [])
            if on_postgres(hub):
                assert all(autocommit for _, autocommit in seen), seen


def test_a_tag_on_a_version_that_is_not_there_is_404_and_leaves_the_tag_where_it_was(hub):
    register_base(hub)
    publish(hub, "open", 2)
    with hub.client() as c:
        assert c.put("/api/v1/adapters/lists/open/tags/prod", json={"version": 2}).status_code == 200
        r = c.put("/api/v1/adapters/lists/open/tags/prod", json={"version": 3})
        assert r.status_code == 404 and "has no version or tag '3'" in r.json()["detail"]
        assert c.put("/api/v1/adapters/lists/open/tags/new", json={"version": 9}).status_code == 404
        assert c.put("/api/v1/adapters/lists/none/tags/prod", json={"version": 1}).status_code == 404
        assert c.get("/api/v1/adapters/lists/open/versions/nosuchtag").status_code == 404
        assert c.put("/api/v1/adapters/lists/open/tags/v3", json={"version": 1}).status_code == 422
    assert tags_in_db(hub) == "prod=2"


def test_a_yanked_version_can_be_tagged_by_number_and_read_by_tag_but_is_not_latest(hub):
    register_base(hub)
    publish(hub, "open", 2)
    with hub.client() as c:
        assert c.delete("/api/v1/adapters/lists/open/versions/2").status_code == 200
        r = c.put("/api/v1/adapters/lists/open/tags/old", json={"version": 2})
        assert r.status_code == 200 and r.json()["tags"] == {"old": 2}
        body = c.get("/api/v1/adapters/lists/open/versions/old").json()
        assert body["number"] == 2 and body["yanked"] is True and body["tags"] == ["old"]
        assert c.get("/api/v1/adapters/lists/open/versions/latest").json()["number"] == 1


def test_tags_in_a_private_namespace_are_not_found_by_other_tokens_and_change_nothing(hub):
    register_base(hub)
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"name": "hidden", "private": True}).status_code == 201
    publish(hub, "secret", 2, namespace="hidden")
    with hub.client() as c:
        assert c.put("/api/v1/adapters/hidden/secret/tags/prod", json={"version": 1}).status_code == 200
    reader, writer = hub.token("lists", "read"), hub.token("lists", "write")
    for tok in (writer, reader):
        with hub.client(tok) as c:
            for _ in range(2):  # the second time with the token cached: the one-statement path
                r = c.put("/api/v1/adapters/hidden/secret/tags/prod", json={"version": 2})
                assert r.status_code == 404, r.text  # the same answer as for an adapter not there (issue 27)
                r = c.get("/api/v1/adapters/hidden/secret/versions/prod")
                assert r.status_code == 404, r.text
    with hub.client(None) as c:
        assert c.put("/api/v1/adapters/hidden/secret/tags/prod", json={"version": 2}).status_code == 404
        assert c.get("/api/v1/adapters/hidden/secret/versions/prod").status_code == 404
    with hub.client(hub.token("hidden", "write")) as c:
        assert c.put("/api/v1/adapters/hidden/secret/tags/prod", json={"version": 2}).status_code == 200
        assert c.get("/api/v1/adapters/hidden/secret/versions/prod").json()["number"] == 2
    assert tags_in_db(hub) == "prod=2"
