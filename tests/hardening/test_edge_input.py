"""Issue 27, items 3 and 8: what a client can put into a request that the databases cannot hold, refused at the edge
with a 422 on SQLite and PostgreSQL alike, leaving nothing stored.

A NUL character in a path, a query, a JSON body, a multipart field, an uploaded JSON file or a metrics PATCH was a 500
on PostgreSQL (anonymous callers included), and a stored one made an adapter's version list a 500 for good. JSON
nested thousands of levels deep was a RecursionError (500) on both. An over-long Idempotency-Key and a tag pointing at
a version number past the column's range were 500s on PostgreSQL. And the 405s' Allow headers named only one route's
methods, where the path has two.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save

from tests.hardening.conftest import SYN_BASE, lora_files, port_of, raw_request, status_of, upload

DEEP = 3000  # past Python's recursion limit


@pytest.fixture(scope="module")
def edge_hub(hub_per_database):
    """acme/demo (adapter v1), acme/data (dataset v1) and acme/gen (generator v1), on each database."""
    with hub_per_database.client() as c:
        assert upload(c, "acme", "demo", lora_files()).status_code == 201
        r = c.post("/api/v1/datasets/acme/data/versions",
                   files={"data.jsonl": ("data.jsonl", b'{"prompt": "a", "completion": "b"}\n')})
        assert r.status_code == 201, r.text
        assert _upload_generator(c, {"base": SYN_BASE}).status_code == 201
    return hub_per_database


def _upload_generator(c, config: dict | None = None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(config).encode()
    return c.post("/api/v1/generators/acme/gen/versions",
                  files={"generator_config.json": ("generator_config.json", body),
                         "generator.safetensors": ("generator.safetensors", save({"w": np.zeros((2, 2), "f4")}))})


def _versions(c, plural: str, name: str) -> int:
    r = c.get(f"/api/v1/{plural}/acme/{name}/versions")
    assert r.status_code == 200, r.text  # the listing itself still answers (a stored NUL broke it on PostgreSQL)
    return len(r.json()["items"])


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", [
    "/api/v1/adapters?q=%00", "/api/v1/jobs?state=%00", "/api/v1/jobs?kind=a%00b", "/api/v1/adapters?namespace=%00",
    "/api/v1/jobs/a%00", "/api/v1/adapters/acme/demo/versions/a%00", "/api/v1/adapters/acme/demo/versions/1/files/%00",
    "/api/v1/bases/tiny%00", "/acme/demo/resolve/a%00/adapter_config.json", "/api/models/acme/demo/revision/%00",
    "/api/v1/jobs/x/events?after=%00"])
@pytest.mark.parametrize("who", ["admin", None])
def test_a_nul_in_a_path_or_query_is_a_422_for_anyone(edge_hub, path, who):
    port = port_of(edge_hub)
    response, sock = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n" + (
        f"Authorization: Bearer {edge_hub.admin_token}\r\n" if who else "") + "\r\n")
    with sock:
        assert status_of(response) == 422, response[:300]
        assert b"NUL" in response
        again, _ = raw_request(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", sock=sock)  # connection kept
        assert status_of(again) == 200


@pytest.mark.parametrize("body", [
    {"kind": "noop", "output": "a\u0000/b"},
    {"kind": "train", "output": "acme/x", "params": {"base": "tiny\u0000", "task": "builtin:caesar_shift"}},
    {"kind": "infer", "params": {"base": SYN_BASE, "prompts": ["ok", "a\u0000"]}},
    {"kind": "noop", "params": {"seconds\u0000": 1}},
])
def test_a_nul_in_a_job_body_is_a_422_and_queues_nothing(edge_hub, body):
    with edge_hub.client() as c:
        before = len(c.get("/api/v1/jobs").json()["items"])
        r = c.post("/api/v1/jobs", json=body)
        assert r.status_code == 422, r.text
        assert len(c.get("/api/v1/jobs").json()["items"]) == before


def test_a_nul_in_json_bodies_of_the_other_routes_is_a_422_and_changes_nothing(edge_hub):
    with edge_hub.client() as c:
        r = c.patch("/api/v1/adapters/acme/demo/versions/1/metrics", json={"note": "a\u0000b"})
        assert r.status_code == 422, r.text
        r = c.patch("/api/v1/adapters/acme/demo/versions/1/metrics", json={"a\u0000": 1})
        assert r.status_code == 422, r.text
        assert c.get("/api/v1/adapters/acme/demo/versions/1").json()["metrics"] == {}
        assert c.post("/api/v1/namespaces", json={"name": "n\u0000"}).status_code == 422
        r = c.post("/api/v1/bases", json={"name": "b", "architecture": "x\u0000", "module_shapes": {"m": [1, 1]}})
        assert r.status_code == 422, r.text
        assert "b" not in {b["name"] for b in c.get("/api/v1/bases").json()["items"]}


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(edge_hub):
    """The body check decodes the JSON: `"\\\\u0000"` is six characters of text, stored and returned as sent."""
    with edge_hub.client() as c:
        r = c.patch("/api/v1/datasets/acme/data/versions/1/metrics", content=b'{"note": "\\\\u0000"}',
                    headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["metrics"]["note"] == "\\u0000"


@pytest.mark.parametrize("field", ["description", "base", "tag"])
def test_a_nul_in_a_multipart_field_is_a_422_and_stores_nothing(edge_hub, field):
    with edge_hub.client() as c:
        before = _versions(c, "adapters", "demo")
        r = upload(c, "acme", "demo", lora_files(rank=4), **{field: "x\u0000y"})
        assert r.status_code == 422, r.text
        assert _versions(c, "adapters", "demo") == before


@pytest.mark.parametrize("config", [{"note": "\u0000"}, {"target_modules": ["q_proj", "v_proj\u0000"]},
                                    {"rank_pattern": {"q\u0000": 2}}])
def test_an_adapter_config_holding_a_nul_is_a_422_and_the_adapter_stays_listable(edge_hub, config):
    with edge_hub.client() as c:
        before = _versions(c, "adapters", "demo")
        r = upload(c, "acme", "demo", lora_files(config))
        assert r.status_code == 422, r.text
        assert "NUL" in r.json()["detail"]
        assert _versions(c, "adapters", "demo") == before


def test_a_generator_config_or_dataset_line_holding_a_nul_is_a_422(edge_hub):
    with edge_hub.client() as c:
        r = _upload_generator(c, {"base": SYN_BASE, "note": "a\u0000"})
        assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text
        r = c.post("/api/v1/datasets/acme/data/versions",
                   files={"data.jsonl": ("data.jsonl", b'{"prompt": "a", "completion": "b"}\n'
                                                       b'{"prompt": "a\\u0000", "completion": "b"}\n')})
        assert r.status_code == 422 and "line 2" in r.json()["detail"], r.text
        assert _versions(c, "generators", "gen") == 1 and _versions(c, "datasets", "data") == 1


def test_json_nested_too_deep_in_any_upload_is_a_422(edge_hub):
    deep = _deep(DEEP)
    with edge_hub.client() as c:
        r = upload(c, "acme", "demo", lora_files(raw_config=('{"peft_type": "LORA", "r": 2, "lora_alpha": 4, '
                                                             f'"target_modules": ["q_proj"], "x": {deep}}}').encode()))
        assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
        r = upload(c, "acme", "demo", lora_files({"x": json.loads(_deep(80))}))  # parses, but deeper than we keep
        assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
        r = _upload_generator(c, raw=f'{{"base": "{SYN_BASE}", "x": {deep}}}'.encode())
        assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
        r = c.post("/api/v1/datasets/acme/data/versions",
                   files={"data.jsonl": ("data.jsonl", f'{{"prompt": "a", "completion": "b", "x": {deep}}}\n'.encode())})
        assert r.status_code == 422 and "nested" in r.json()["detail"], r.text
        assert (_versions(c, "adapters", "demo"), _versions(c, "generators", "gen"),
                _versions(c, "datasets", "data")) == (1, 1, 1)


@pytest.mark.parametrize("depth", [80, DEEP])
def test_a_json_body_nested_too_deep_is_a_422(edge_hub, depth):
    with edge_hub.client() as c:
        r = c.patch("/api/v1/adapters/acme/demo/versions/1/metrics",
                    content=f'{{"x": {_deep(depth)}}}'.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        r = c.post("/api/v1/jobs", content=f'{{"kind": "noop", "params": {{"x": {_deep(depth)}}}}}'.encode(),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert "x" not in c.get("/api/v1/adapters/acme/demo/versions/1").json()["metrics"]


def test_an_idempotency_key_over_the_bound_is_a_422(edge_hub):
    with edge_hub.client() as c:
        before = len(c.get("/api/v1/jobs").json()["items"])
        r = c.post("/api/v1/jobs", json={"kind": "noop"}, headers={"Idempotency-Key": "k" * 400})
        assert r.status_code == 422, r.text
        assert len(c.get("/api/v1/jobs").json()["items"]) == before
        r = c.post("/api/v1/jobs", json={"kind": "noop"}, headers={"Idempotency-Key": "k" * 200})
        assert r.status_code == 202, r.text


@pytest.mark.parametrize("number", [-7390599274, 2**31, 2**63 + 1, 0])
def test_a_tag_at_a_version_no_column_can_hold_is_a_422(edge_hub, number):
    with edge_hub.client() as c:
        r = c.put("/api/v1/adapters/acme/demo/tags/t", json={"version": number})
        assert r.status_code == 422, r.text
        assert "t" not in c.get("/api/v1/adapters/acme/demo").json()["tags"]


@pytest.mark.parametrize("path, method, allowed", [
    ("/api/v1/adapters/acme/demo/versions", "DELETE", {"GET", "POST"}),
    ("/api/v1/datasets/acme/data/versions", "PUT", {"GET", "POST"}),
    ("/api/v1/adapters/acme/demo/versions/1", "POST", {"GET", "DELETE"}),
    ("/api/v1/jobs", "DELETE", {"GET", "POST"}),
])
def test_a_405_allows_every_method_the_path_has(edge_hub, path, method, allowed):
    with edge_hub.client() as c:
        r = c.request(method, path)
        assert r.status_code == 405, r.text
        assert allowed <= {m.strip() for m in r.headers["allow"].split(",")}, r.headers["allow"]
        assert r.json() == {"detail": "Method Not Allowed"}


def test_deleting_a_version_ref_that_is_not_a_number_is_the_422_the_document_declares(edge_hub):
    with edge_hub.client() as c:
        spec = c.get("/openapi.json").json()
        item = spec["paths"]["/api/v1/adapters/{ns}/{name}/versions/{ref}"]
        assert {"get", "delete"} <= set(item) and "422" in item["delete"]["responses"]
        assert "/api/v1/adapters/{ns}/{name}/versions/{number}" not in spec["paths"]
        assert c.delete("/api/v1/adapters/acme/demo/versions/prod").status_code == 422
        assert c.get("/api/v1/adapters/acme/demo/versions/1").json()["yanked"] is False


@pytest.mark.parametrize("body, accepted", [
    ({"kind": "noop"}, True), ({"kind": "noop", "params": {"seconds": 1}}, True),
    ({"kind": "noop", "output": None}, True),
    ({"kind": "noop", "output": "acme/x"}, False), ({"kind": "noop", "output": {"namespace": "acme", "name": "x"}}, False),
    ({"kind": "noop", "inputs": ["acme/demo@1"]}, False), ({"kind": "noop", "params": {"seconds": "1"}}, False),
    ({"kind": "noop", "params": {"seconds": 601}}, False), ({"kind": "noop", "priority": 1}, False),
    ({"kind": "train", "params": {"base": SYN_BASE, "task": "builtin:caesar_shift"}}, False),  # no output
    ({"kind": "nope"}, False),
])
def test_the_documented_submit_body_accepts_what_the_server_accepts(edge_hub, body, accepted):
    """The document declared one body for every kind, so a noop with an output passed it and was then refused; each
    kind is now its own variant (input count, params, output)."""
    from jsonschema import Draft202012Validator

    with edge_hub.client() as c:
        spec = c.get("/openapi.json").json()
        schema = {**spec["components"]["schemas"]["JobIn"], "components": spec["components"]}
        assert Draft202012Validator(schema).is_valid(body) is accepted
        assert (c.post("/api/v1/jobs", json=body).status_code == 202) is accepted
