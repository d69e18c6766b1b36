"""An upload publishes with a fixed, small number of statements, and the shortcuts that made it so keep its rules
(issue 11: create version >= 2x MLflow's throughput).

After the body: the namespace (the write check, before the body is read), the base (validation), one claim of the
files' blobs (hub.gc), and the version's transaction: the counter's UPDATE, which also returns the adapter's base and
its name, and the version's INSERT. No blob row is written by the publish (the claim made them) and no adapter row is
read back. What a shortcut could lose is pinned beside the count: the version's number, its base in the answer, the
claimed blob rows, and the 409 for an adapter of another base, which must name that base and leave nothing behind.
"""
from __future__ import annotations

from tests.api.conftest import TINY_BASE, make_adapter_dir, upload
from tests.api.test_tag_statements import on_postgres, statements


def blob_rows(hub) -> set[str]:
    return set(hub.scalar("select coalesce(string_agg(sha256, ',' order by sha256), '') from blobs").split(",")
               if on_postgres(hub) else
               hub.scalar("select coalesce(group_concat(sha256, ','), '') from blobs").split(",")) - {""}


def test_a_second_version_is_published_with_five_statements_and_its_blobs_claimed(registered, tmp_path):
    hub = registered
    first, second = make_adapter_dir(tmp_path / "a", seed=1), make_adapter_dir(tmp_path / "b", seed=2)
    with hub.client() as c:
        assert upload(c, "team", "pub", first).status_code == 201  # the namespace and adapter exist; token cached
        with statements(hub.app.state.engine) as seen:
            r = upload(c, "team", "pub", second)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["number"], body["ref"], body["base"]) == (2, "team/pub@2", TINY_BASE)
    kinds = [" ".join(s.split()[:3]).upper() for s, _ in seen]
    assert len(kinds) == 5, seen
    assert kinds[0].startswith("SELECT") and kinds[1].startswith("SELECT")  # namespace (write check), base
    assert kinds[2].startswith("INSERT INTO BLOBS")  # the claim
    assert kinds[3].startswith("UPDATE ADAPTERS") and kinds[4].startswith("INSERT INTO ADAPTER_VERSIONS")
    assert {f["sha256"] for f in body["files"]} <= blob_rows(hub)  # claimed before they were stored


def test_a_version_for_another_base_is_409_naming_the_adapters_base_and_leaves_nothing(registered, tiny_base,
                                                                                          tmp_path):
    hub = registered
    with hub.client() as c:
        twin = {**tiny_base[2], "name": "tiny-twin", "aliases": [], "source": ""}  # same shapes, another base
        assert c.post("/api/v1/bases", json=twin).status_code == 201
        assert upload(c, "team", "pub", make_adapter_dir(tmp_path / "a", seed=1)).status_code == 201
        blobs_before = blob_rows(hub)
        r = upload(c, "team", "pub", make_adapter_dir(tmp_path / "b", seed=2), base="tiny-twin")
        assert r.status_code == 409, r.text
        assert f"belongs to base {TINY_BASE!r}" in r.json()["detail"]
        assert blob_rows(hub) == blobs_before  # the failed upload's claims were given back
        assert [v["number"] for v in c.get("/api/v1/adapters/team/pub/versions").json()["items"]] == [1]
        assert c.get("/api/v1/adapters/team/pub").json()["version_count"] == 1
