"""Settings: every field is read from ADAPTARIUM_<FIELD NAME>, typed by its annotation, with the default written once
beside the field (the URLs default to places under the data dir)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from hub.settings import Settings


def test_every_field_is_read_from_its_variable_and_typed_by_its_annotation(tmp_path):
    env = {"ADAPTARIUM_DATA_DIR": str(tmp_path), "ADAPTARIUM_STALE_SECONDS": "7.5", "ADAPTARIUM_MAX_UPLOAD_BYTES": "10",
           "ADAPTARIUM_S3_ACCESS_KEY": "key", "ADAPTARIUM_BROKER_URL": "redis://127.0.0.1:6379/9"}
    settings = Settings.from_env(env)
    assert settings.stale_seconds == 7.5 and settings.max_upload_bytes == 10 and settings.s3_access_key == "key"
    assert settings.broker_url == "redis://127.0.0.1:6379/9"
    assert settings.database_url == f"sqlite:///{tmp_path / 'adaptarium.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'blobs'}"
    for field in fields(Settings):  # every field has a variable that sets it
        if field.name != "data_dir" and str(field.type) in ("int", "float"):
            assert getattr(Settings.from_env({**env, f"ADAPTARIUM_{field.name.upper()}": "3"}), field.name) == 3


def test_defaults_need_no_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == Path("adaptarium-data").resolve()
    assert settings.max_upload_bytes == 4 * 1024**3 and settings.token_cache_seconds == 2 and settings.device == "auto"
