"""Datasets are versioned like adapters: a JSONL of {"prompt", "completion"}, validated line by line."""
from __future__ import annotations

import json


def _post(client, ns, name, body: bytes):
    return client.post(f"/api/v1/datasets/{ns}/{name}/versions", files={"data.jsonl": ("data.jsonl", body)})


def test_dataset_versions_upload_list_and_download(hub):
    rows = b"".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}).encode() + b"\n" for i in range(20))
    with hub.client() as c:
        r = _post(c, "team", "sums", rows)
        assert r.status_code == 201, r.text
        v = r.json()
        assert v["ref"] == "team/sums@1" and v["kind"] == "dataset" and v["metrics"]["records"] == 20
        assert _post(c, "team", "sums", rows + rows).json()["number"] == 2
        assert [d["name"] for d in c.get("/api/v1/datasets").json()["items"]] == ["sums"]
        assert c.get("/api/v1/adapters").json()["items"] == []
        assert c.get("/api/v1/datasets/team/sums/versions/1/files/data.jsonl").content == rows


def test_bad_dataset_line_is_422_naming_the_line_and_stores_nothing(hub):
    good = json.dumps({"prompt": "a", "completion": "b"}).encode() + b"\n"
    with hub.client() as c:
        for body, fragment in [(good + b"{not json}\n", "line 2"),
                               (good + good + json.dumps({"prompt": "a"}).encode() + b"\n", "line 3"),
                               (json.dumps({"prompt": 1, "completion": "b"}).encode(), "line 1"),
                               (b"", "empty")]:
            r = _post(c, "team", "bad", body)
            assert r.status_code == 422, r.text
            assert fragment in r.json()["detail"], r.json()["detail"]
    assert hub.scalar("select count(*) from adapter_versions") == 0
    assert hub.scalar("select count(*) from blobs") == 0
