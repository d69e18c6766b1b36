"""Alembic builds the whole schema from nothing, is idempotent, and can be rolled back."""
from __future__ import annotations

from sqlalchemy import inspect

from hub.db import make_engine
from hub.migrate import downgrade, upgrade

TABLES = {"namespaces", "api_tokens", "base_models", "base_aliases", "adapters", "adapter_versions", "tags",
          "lineage", "blobs", "jobs", "job_events", "workers"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_twice_over_and_downgrade_removes_them(db_url):
    upgrade(db_url)
    upgrade(db_url)
    assert _tables(db_url) == TABLES
    downgrade(db_url, "base")
    assert _tables(db_url) == set()
    upgrade(db_url)
    assert _tables(db_url) == TABLES


def test_the_migrated_schema_matches_the_models(db_url):
    """Autogenerate finds nothing to do: hub/models.py and migrations/versions never drift apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import hub.models  # noqa: F401 - registers the tables
    from hub.db import Base

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_no_table_indexes_the_same_columns_twice(db_url):
    """Each index is written on every insert: a second one on the same columns (a unique constraint's own index
    plus a plain one, as job_events had until migration 0004) doubles that work for nothing."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        for table in TABLES:
            covered = [tuple(i["column_names"]) for i in inspector.get_indexes(table)]
            covered += [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
                        if engine.dialect.name != "postgresql"]  # PostgreSQL lists a constraint's index in both
            assert len(covered) == len(set(covered)), (table, covered)
    finally:
        engine.dispose()
