"""The CLI's fixtures: a live hub and the CLI's environment pointing at it."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli import app
from tests.api.conftest import start_hub, tiny_base  # noqa: F401 - a fixture the job tests use

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """A live hub (SQLite + local blobs) and the CLI's environment pointing at it with the admin token."""
    live, stop = start_hub(tmp_path)
    monkeypatch.setenv("ADAPTARIUM_URL", live.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", live.admin_token)
    monkeypatch.setenv("ADAPTARIUM_DATA_DIR", str(live.settings.data_dir))
    monkeypatch.delenv("ADAPTARIUM_DATABASE_URL", raising=False)
    yield live
    stop()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])
