"""A version whose stored file has gone missing (deleted by hand, a restore that missed it) answers a download with
a clear 500 naming the file, on both stores, instead of a 200 whose body breaks off mid-stream; the hub keeps
serving everything else."""
from __future__ import annotations

from tests.api.conftest import make_adapter_dir, upload


def test_a_download_of_a_file_missing_from_the_store_is_a_500_naming_it(registered, tmp_path):
    hub = registered
    with hub.client() as c:
        r = upload(c, "team", "gone", make_adapter_dir(tmp_path / "a", seed=3))
        assert r.status_code == 201, r.text
        weights = next(f for f in r.json()["files"] if f["name"] == "adapter_model.safetensors")
        hub.app.state.store.delete(weights["sha256"])
        for url in ("/api/v1/adapters/team/gone/versions/1/files/adapter_model.safetensors",
                    "/team/gone/resolve/main/adapter_model.safetensors"):  # the REST route and the Hub-style one
            missing = c.get(url)
            assert missing.status_code == 500, (url, missing.status_code)
            detail = missing.json()["detail"]
            assert "adapter_model.safetensors" in detail and weights["sha256"] in detail and "missing" in detail
        config = c.get("/api/v1/adapters/team/gone/versions/1/files/adapter_config.json")
        assert config.status_code == 200 and config.json()["r"] == 4  # the other file is still served
