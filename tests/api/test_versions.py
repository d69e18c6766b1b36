"""Uploading, listing, downloading, tagging and yanking adapter versions through the REST API."""
from __future__ import annotations

import hashlib

from tests.api.conftest import TINY_BASE, make_adapter_dir, upload


def test_first_upload_creates_adapter_and_version_one_with_manifest(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    with registered.client() as c:
        r = upload(c, "team", "sentiment", adapter_dir, tag="prod", description="first try")
        assert r.status_code == 201, r.text
        v = r.json()
        assert v["number"] == 1 and v["ref"] == "team/sentiment@1" and v["base"] == TINY_BASE
        manifest = {f["name"]: f for f in v["files"]}
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            data = (adapter_dir / name).read_bytes()
            assert manifest[name]["sha256"] == hashlib.sha256(data).hexdigest()
            assert manifest[name]["size"] == len(data)
        assert v["tags"] == ["prod"]
        assert v["peft_config"]["r"] == 4
        adapter = c.get("/api/v1/adapters/team/sentiment").json()
        assert adapter["latest"] == 1 and adapter["tags"] == {"prod": 1} and adapter["description"] == "first try"


def test_versions_are_numbered_in_order_and_resolve_by_number_tag_and_latest(registered, tmp_path):
    with registered.client() as c:
        for seed in range(3):
            assert upload(c, "team", "qa", make_adapter_dir(tmp_path / str(seed), seed=seed)).json()["number"] == seed + 1
        assert [v["number"] for v in c.get("/api/v1/adapters/team/qa/versions").json()["items"]] == [1, 2, 3]
        assert c.put("/api/v1/adapters/team/qa/tags/stable", json={"version": 2}).status_code == 200
        assert c.get("/api/v1/adapters/team/qa/versions/stable").json()["number"] == 2
        assert c.get("/api/v1/adapters/team/qa/versions/latest").json()["number"] == 3
        assert c.get("/api/v1/adapters/team/qa/versions/v1").json()["number"] == 1
        # tags move
        c.put("/api/v1/adapters/team/qa/tags/stable", json={"version": 3})
        assert c.get("/api/v1/adapters/team/qa/versions/stable").json()["number"] == 3
        missing = c.get("/api/v1/adapters/team/qa/versions/9")
        assert missing.status_code == 404 and "9" in missing.json()["detail"]


def test_download_is_byte_identical_with_etag_ranges_and_conditional_get(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    with registered.client() as c:
        upload(c, "team", "dl", adapter_dir)
        url = "/api/v1/adapters/team/dl/versions/1/files/adapter_model.safetensors"
        r = c.get(url)
        assert r.status_code == 200 and r.content == weights and r.headers["etag"] == f'"{sha}"'
        part = c.get(url, headers={"Range": "bytes=10-99"})
        assert part.status_code == 206 and part.content == weights[10:100]
        assert part.headers["content-range"] == f"bytes 10-99/{len(weights)}"
        assert c.get(url, headers={"Range": "bytes=-16"}).content == weights[-16:]
        assert c.get(url, headers={"If-None-Match": f'"{sha}"'}).status_code == 304
        assert c.get(url, headers={"Range": f"bytes={len(weights)}-"}).status_code == 416
        head = c.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(weights)
        nofile = c.get("/api/v1/adapters/team/dl/versions/1/files/other.bin")
        assert nofile.status_code == 404 and "adapter_model.safetensors" in nofile.json()["detail"]


def test_yanked_version_is_hidden_from_latest_but_downloadable_by_number_and_keeps_lineage(registered, tmp_path):
    with registered.client() as c:
        upload(c, "team", "y", make_adapter_dir(tmp_path / "1", seed=1))
        upload(c, "team", "y", make_adapter_dir(tmp_path / "2", seed=2))
        r = c.delete("/api/v1/adapters/team/y/versions/2")
        assert r.status_code == 200 and r.json()["yanked"] is True
        assert c.get("/api/v1/adapters/team/y/versions/latest").json()["number"] == 1
        view = c.get("/api/v1/adapters/team/y").json()
        assert view["latest"] == 1 and view["yanked"] == [2]  # a version picker offers 1 only
        assert c.get("/api/v1/adapters/team/y/versions/2/files/adapter_config.json").status_code == 200
        assert c.get("/api/v1/adapters/team/y/versions/2/lineage").json()["version"] == "team/y@2"
        # the next upload still gets the next number
        assert upload(c, "team", "y", make_adapter_dir(tmp_path / "3", seed=3)).json()["number"] == 3
        listed = {a["name"]: a for a in c.get("/api/v1/adapters").json()["items"]}
        assert listed["y"]["latest"] == 3 and listed["y"]["yanked"] == [2]


def test_identical_content_is_stored_once(registered, tmp_path):
    adapter_dir = make_adapter_dir(tmp_path / "same")
    with registered.client() as c:
        upload(c, "team", "one", adapter_dir)
        upload(c, "team", "two", adapter_dir)
        upload(c, "team", "one", adapter_dir)
    assert registered.scalar("select count(*) from adapter_versions") == 3
    assert registered.scalar("select count(*) from blobs") == 2


def test_listing_filters_by_namespace_base_and_text(registered, tmp_path, tiny_base):
    adapter_dir = make_adapter_dir(tmp_path / "a")
    with registered.client() as c:
        upload(c, "alpha", "summarise-news", adapter_dir)
        upload(c, "beta", "translate", adapter_dir)
        names = lambda **q: sorted(a["name"] for a in c.get("/api/v1/adapters", params=q).json()["items"])
        assert names() == ["summarise-news", "translate"]
        assert names(namespace="alpha") == ["summarise-news"]
        assert names(q="news") == ["summarise-news"]
        assert names(base=TINY_BASE) == ["summarise-news", "translate"]
        assert names(base="other") == []


def test_bases_register_list_and_lookup_by_alias(registered, tiny_base):
    with registered.client() as c:
        assert [b["name"] for b in c.get("/api/v1/bases").json()["items"]] == [TINY_BASE]
        by_alias = c.get("/api/v1/bases/tiny:llama?seed=0".replace("?", "%3F"))
        assert by_alias.status_code == 200 and by_alias.json()["name"] == TINY_BASE
        dup = c.post("/api/v1/bases", json=tiny_base[2])
        assert dup.status_code == 409
        assert c.get("/api/v1/bases/nope").status_code == 404


def test_health_openapi_docs_and_metrics(registered, tmp_path):
    with registered.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        paths = c.get("/openapi.json").json()["paths"]
        assert "/api/v1/adapters/{ns}/{name}/versions" in paths
        assert c.get("/docs").status_code == 200
        upload(c, "team", "m", make_adapter_dir(tmp_path / "m"))
        c.get("/api/v1/adapters/team/m/versions/1/files/adapter_model.safetensors")
        text = c.get("/metrics").text
    assert 'adaptarium_versions_created_total{kind="adapter"} 1.0' in text
    assert 'route="/api/v1/adapters/{ns}/{name}/versions"' in text
    bytes_in = [l for l in text.splitlines() if l.startswith("adaptarium_http_bytes_in_total")]
    assert bytes_in and float(bytes_in[0].split()[-1]) > 1000
