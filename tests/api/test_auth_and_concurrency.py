"""Who may do what, and what many uploads at once do to version numbers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import make_adapter_dir, start_hub, upload


def test_writes_need_a_token_with_write_scope_on_that_namespace(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    reader = registered.token("team", "read")
    writer = registered.token("team", "write")
    with registered.client(token=None) as anon:
        assert upload(anon, "team", "a", adapter_dir).status_code == 401
    with registered.client(token=reader) as c:
        r = upload(c, "team", "a", adapter_dir)
        assert r.status_code == 403 and "write" in r.json()["detail"]
    with registered.client(token=writer) as c:
        assert upload(c, "team", "a", adapter_dir).status_code == 201
        assert upload(c, "other", "a", adapter_dir).status_code == 403
        assert c.put("/api/v1/adapters/team/a/tags/prod", json={"version": 1}).status_code == 200
        # registering bases is for admins
        assert c.post("/api/v1/bases", json={"name": "b", "architecture": "llama",
                                             "module_shapes": {"m": [1, 1]}}).status_code == 403
    with registered.client(token="ada_not-a-real-token") as c:
        assert c.get("/api/v1/adapters").status_code == 401
    assert registered.scalar("select count(*) from adapter_versions") == 1


def test_private_namespace_reads_need_a_token(registered, tmp_path):
    with registered.client() as admin:
        assert admin.post("/api/v1/namespaces", json={"name": "secret", "private": True}).status_code == 201
        assert upload(admin, "secret", "s", make_adapter_dir(tmp_path / "s")).status_code == 201
        assert upload(admin, "open", "o", make_adapter_dir(tmp_path / "o")).status_code == 201
    with registered.client(token=None) as anon:
        assert [a["name"] for a in anon.get("/api/v1/adapters").json()["items"]] == ["o"]
        assert anon.get("/api/v1/adapters/secret/s/versions/1").status_code == 404  # as if not there
        assert anon.get("/api/v1/adapters/open/o/versions/1").status_code == 200
    with registered.client(token=registered.token("elsewhere", "read")) as wrong:
        assert wrong.get("/api/v1/adapters/secret/s/versions/1/files/adapter_config.json").status_code == 404
    with registered.client(token=registered.token("secret", "read")) as right:
        assert right.get("/api/v1/adapters/secret/s/versions/1/files/adapter_config.json").status_code == 200


def _concurrent_uploads(live, n: int, tmp_path) -> list[int]:
    adapter_dirs = [make_adapter_dir(tmp_path / f"c{i}", seed=i) for i in range(4)]

    def one(i: int) -> int:
        with live.client() as c:
            r = upload(c, "load", "same-adapter", adapter_dirs[i % 4])
            assert r.status_code == 201, r.text
            return r.json()["number"]

    with ThreadPoolExecutor(n) as pool:
        return sorted(pool.map(one, range(n)))


@pytest.mark.postgres
def test_fifty_concurrent_uploads_get_unique_gapless_numbers_on_postgres(tmp_path, tiny_base, private_pg_db):
    live, stop = start_hub(tmp_path, private_pg_db)
    try:
        with live.client() as c:
            c.post("/api/v1/bases", json=tiny_base[2])
        assert _concurrent_uploads(live, 50, tmp_path) == list(range(1, 51))
        assert live.scalar("select count(*) from adapter_versions") == 50
    finally:
        stop()
        live.app.state.engine.dispose()


def test_concurrent_uploads_get_unique_gapless_numbers_on_sqlite(tmp_path, tiny_base):
    live, stop = start_hub(tmp_path)
    try:
        with live.client() as c:
            c.post("/api/v1/bases", json=tiny_base[2])
        assert _concurrent_uploads(live, 12, tmp_path) == list(range(1, 13))
    finally:
        stop()
