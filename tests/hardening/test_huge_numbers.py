"""Issue 10, item 6: numbers past what a version number can be (2^31-1 for the column, 2^63-1 for SQLite, Python's
int parsing limit, Unicode digits) in registry paths and bodies are 404 or 422, never a 500."""
from __future__ import annotations

import pytest

from tests.hardening.conftest import lora_files, upload

HUGE = ["2147483648", "9223372036854775808", "1" + "0" * 30, "9" * 5000, "v9223372036854775808", "\u00b2",
        "\u0661\u0662"]


@pytest.fixture(scope="module")
def one_version(live):
    with live.client() as c:
        assert upload(c, "big", "a", lora_files()).status_code == 201
    return live


@pytest.mark.parametrize("ref", HUGE)
def test_a_huge_version_ref_in_a_path_is_a_404(one_version, ref):
    with one_version.client() as c:
        for path in (f"/api/v1/adapters/big/a/versions/{ref}", f"/api/v1/adapters/big/a/versions/{ref}/lineage",
                     f"/api/v1/adapters/big/a/versions/{ref}/files/adapter_config.json",
                     f"/big/a/resolve/{ref}/adapter_config.json", f"/api/models/big/a/revision/{ref}"):
            r = c.get(path)
            assert r.status_code == 404, (path, r.status_code, r.text[:200])


@pytest.mark.parametrize("number", ["2147483648", "9223372036854775808", "1" + "0" * 30, "0", "-1"])
def test_a_huge_version_number_to_yank_or_annotate_is_a_422(one_version, number):
    with one_version.client() as c:
        assert c.delete(f"/api/v1/adapters/big/a/versions/{number}").status_code == 422
        assert c.patch(f"/api/v1/adapters/big/a/versions/{number}/metrics", json={"acc": 1}).status_code == 422
        assert c.get("/api/v1/adapters/big/a/versions/1").json()["yanked"] is False


@pytest.mark.parametrize("number", [2**31, 2**63, 10**30, 0, -7390599274])
def test_a_tag_pointing_at_a_version_number_no_version_can_have_is_a_422(one_version, number):
    with one_version.client() as c:
        r = c.put("/api/v1/adapters/big/a/tags/prod", json={"version": number})
        assert r.status_code == 422, r.text
