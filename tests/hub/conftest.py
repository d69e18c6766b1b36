"""A migrated database per test, on SQLite and on PostgreSQL."""
from __future__ import annotations

import pytest

from hub.db import make_engine, make_session_factory
from hub.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("private_pg_db")


@pytest.fixture
def session_factory(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
