"""Issue 27, item 5: an object the caller may not read answers exactly like one that does not exist.

An unreadable private adapter, dataset or generator answered 401 (anonymous) or 403 (another namespace's token)
where a missing one answered 404, on the REST routes, tag PUT, yank, metrics PATCH and, for anonymous callers, the
Hugging Face routes: anyone could probe which private names exist. Now every one of them is the same 404 as for a
name nobody used; a write route on an object the caller may read still says 401/403.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save

from tests.hardening.conftest import SYN_BASE, lora_files, upload

PLURALS = ("adapters", "datasets", "generators")


def _files(plural: str) -> dict:
    if plural == "adapters":
        return lora_files()
    if plural == "datasets":
        return {"data.jsonl": ("data.jsonl", b'{"prompt": "a", "completion": "b"}\n')}
    return {"generator_config.json": ("generator_config.json", json.dumps({"base": SYN_BASE}).encode()),
            "generator.safetensors": ("generator.safetensors", save({"w": np.zeros((2, 2), "f4")}))}


@pytest.fixture(scope="module")
def vault(hub_per_database):
    """vault (private) and acme (public), each holding x as adapter, dataset and generator, version 1 tagged prod."""
    with hub_per_database.client() as c:
        assert c.post("/api/v1/namespaces", json={"name": "vault", "private": True}).status_code == 201
        for ns in ("vault", "acme"):
            for plural in PLURALS:
                r = c.post(f"/api/v1/{plural}/{ns}/x/versions", files=_files(plural))
                assert r.status_code == 201, r.text
                assert c.put(f"/api/v1/{plural}/{ns}/x/tags/prod", json={"version": 1}).status_code == 200
    return hub_per_database


def _requests(plural: str, ns: str, name: str) -> list[tuple[str, str, dict]]:
    base = f"/api/v1/{plural}/{ns}/{name}"
    requests = [("GET", base, {}), ("GET", f"{base}/versions", {}), ("GET", f"{base}/versions/1", {}),
                ("GET", f"{base}/versions/prod", {}), ("GET", f"{base}/versions/1/lineage", {}),
                ("GET", f"{base}/versions/1/files/README.md", {}),
                ("PUT", f"{base}/tags/prod", {"json": {"version": 1}}), ("DELETE", f"{base}/versions/1", {}),
                ("PATCH", f"{base}/versions/1/metrics", {"json": {"acc": 1}})]
    if plural != "generators":
        hf = "/api/models" if plural == "adapters" else "/api/datasets"
        repo = "" if plural == "adapters" else "/datasets"
        requests += [("GET", f"{hf}/{ns}/{name}", {}), ("GET", f"{hf}/{ns}/{name}/revision/main", {}),
                     ("GET", f"{repo}/{ns}/{name}/resolve/main/README.md", {})]
    return requests


@pytest.mark.parametrize("plural", PLURALS)
@pytest.mark.parametrize("who", ["anonymous", "other-read", "other-write"])
def test_an_unreadable_object_answers_exactly_like_a_missing_one(vault, plural, who):
    token = {"anonymous": None, "other-read": vault.token("acme", "read"),
             "other-write": vault.token("acme", "write")}[who]
    with vault.client(token) as c:
        for (method, hidden, kw), (_, missing, _) in zip(_requests(plural, "vault", "x"),
                                                          _requests(plural, "vault", "nope")):
            got, expected = c.request(method, hidden, **kw), c.request(method, missing, **kw)
            assert got.status_code == expected.status_code == 404, (method, hidden, got.status_code, got.text)
            assert got.text.replace("/x", "/nope") == expected.text, (method, hidden)
            assert got.headers.get("x-error-code") == expected.headers.get("x-error-code"), (method, hidden)
    with vault.client() as admin:  # nothing changed behind the 404s
        version = admin.get(f"/api/v1/{plural}/vault/x/versions/1").json()
        assert (version["yanked"], version["metrics"].get("acc")) == (False, None)


@pytest.mark.parametrize("plural", PLURALS)
def test_writes_on_a_readable_object_keep_their_401_and_403(vault, plural):
    base = f"/api/v1/{plural}/acme/x"
    writes = [("PUT", f"{base}/tags/prod", {"json": {"version": 1}}), ("DELETE", f"{base}/versions/1", {}),
              ("PATCH", f"{base}/versions/1/metrics", {"json": {"acc": 1}})]
    for token, status in ((None, 401), (vault.token("acme", "read"), 403), (vault.token("vault", "write"), 403)):
        with vault.client(token) as c:
            for method, path, kw in writes:
                assert c.request(method, path, **kw).status_code == status, (method, path, token)
    with vault.client(vault.token("vault", "read")) as reader:  # and the rightful reader still reads the private one
        assert reader.get(f"/api/v1/{plural}/vault/x/versions/1").status_code == 200
        assert reader.put(f"/api/v1/{plural}/vault/x/tags/prod", json={"version": 1}).status_code == 403
