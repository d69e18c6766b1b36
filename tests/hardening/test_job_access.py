"""Issue 27, items 4, 6 and 7: who sees a job, who manages it, and what a submit or a retry accepts.

4. A job naming no namespace (noop; infer or evaluate on a base alone) showed its prompts and completions to anyone,
   anonymous included; it is now its creator's and the hub admins' alone. `created_by` (a token prefix) is shown only
   to those who may manage the job, and a lineage edge to a version the caller may not read names no relation.
6. A retry runs the submit checks again; seeds and counts are bounded to what the worker takes; types are strict; free-
   form lists are bounded; an unknown top-level key is refused.
7. A namespace token may cancel and retry its own noop or base-only job; infer on a readable adapter needs only read.

No worker runs here: jobs stay queued, which is all that visibility, cancel and retry need.
"""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from hub.models import Artifact, ArtifactVersion, Lineage, Namespace
from tests.hardening.conftest import SYN_BASE, lora_files, upload

BASE_INFER = {"kind": "infer", "params": {"base": SYN_BASE, "prompts": ["my private prompt"]}}


@pytest.fixture(scope="module")
def world(hub_per_database):
    """acme (public) holding demo v1-v3, vault (private) holding kit v1; tokens of two writers of their own
    namespaces, a reader of acme, and the admin."""
    live = hub_per_database
    with live.client() as c:
        assert c.post("/api/v1/namespaces", json={"name": "vault", "private": True}).status_code == 201
        for rank in (2, 4, 2):
            assert upload(c, "acme", "demo", lora_files(rank=rank)).status_code == 201
        assert upload(c, "vault", "kit", lora_files()).status_code == 201
    live.alice, live.bob = live.token("alice", "write"), live.token("bob", "write")
    live.reader = live.token("acme", "read")
    return live


def _submit(live, token, body, status=202):
    with live.client(token) as c:
        r = c.post("/api/v1/jobs", json=body)
    assert r.status_code == status, r.text
    return r.json()


def _ids(live, token) -> set[str]:
    with live.client(token) as c:
        return {j["id"] for j in c.get("/api/v1/jobs", params={"limit": 1000}).json()["items"]}


@pytest.mark.parametrize("body", [BASE_INFER, {"kind": "noop"},
                                  {"kind": "evaluate", "params": {"base": SYN_BASE, "task": "builtin:caesar_shift"}}])
def test_a_job_naming_no_namespace_is_seen_only_by_its_creator_and_admins(world, body):
    job = _submit(world, world.alice, body)
    for token in (None, world.bob, world.reader):
        assert job["id"] not in _ids(world, token)
        with world.client(token) as c:
            for path in (f"/api/v1/jobs/{job['id']}", f"/api/v1/jobs/{job['id']}/events"):
                r = c.get(path)
                assert r.status_code == 404 and "my private prompt" not in r.text, (path, r.text)
    for token in (world.alice, "admin"):
        assert job["id"] in _ids(world, token)
        with world.client(token) as c:
            assert c.get(f"/api/v1/jobs/{job['id']}").json()["params"] == job["params"]
            assert c.get(f"/api/v1/jobs/{job['id']}/events").status_code == 200


def test_created_by_is_shown_only_to_those_who_may_manage_the_job(world):
    job = _submit(world, world.alice, {"kind": "train", "output": "alice/t",
                                       "params": {"base": SYN_BASE, "task": "builtin:caesar_shift"}})
    assert job["created_by"].startswith("token:ada_")
    for token, shown in ((None, False), (world.bob, False), (world.reader, False), (world.alice, True),
                         ("admin", True)):
        with world.client(token) as c:
            one = c.get(f"/api/v1/jobs/{job['id']}").json()
            listed = next(j for j in c.get("/api/v1/jobs").json()["items"] if j["id"] == job["id"])
        assert one["created_by"] == listed["created_by"] == (job["created_by"] if shown else None), token


def test_a_hidden_lineage_node_shows_no_relation(world):
    """vault/kit@1 discriminates_for acme/demo@1: an anonymous caller may read demo, not the kit; the edge tells it
    neither the kit's name nor that it is a kit."""
    with world.app.state.session_factory() as s:
        def version_id(ns, name):
            return s.scalar(select(ArtifactVersion.id).join(Artifact).join(Namespace).where(
                Namespace.name == ns, Artifact.name == name, ArtifactVersion.number == 1))
        s.execute(insert(Lineage).values(child_id=version_id("vault", "kit"), parent_id=version_id("acme", "demo"),
                                         relation="discriminates_for"))
        s.commit()
    with world.client(None) as c:
        r = c.get("/api/v1/adapters/acme/demo/versions/1/lineage")
    assert r.status_code == 200
    assert r.json()["children"] == [{"version": None, "object": None, "relation": None, "hidden": True}]
    assert "discriminates_for" not in r.text and "vault" not in r.text
    with world.client() as c:
        edge = c.get("/api/v1/adapters/acme/demo/versions/1/lineage").json()["children"][0]
    assert (edge["version"], edge["relation"]) == ("vault/kit@1", "discriminates_for")


@pytest.mark.parametrize("body", [{"kind": "noop"}, BASE_INFER])
def test_a_namespace_token_cancels_and_retries_its_own_job_that_names_no_namespace(world, body):
    job = _submit(world, world.alice, body)
    with world.client(world.bob) as c:  # another writer does not even see it
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 404
    with world.client(world.alice) as c:
        r = c.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        r = c.post(f"/api/v1/jobs/{job['id']}/retry")
        assert r.status_code == 202 and r.json()["state"] == "queued", r.text


def test_infer_on_a_readable_adapter_needs_only_read(world):
    body = {"kind": "infer", "inputs": ["acme/demo@2"], "params": {"prompts": ["hi"]}}
    job = _submit(world, world.reader, body)  # a read-only token of acme
    _submit(world, world.bob, body)  # a writer of another namespace, who may read public acme
    _submit(world, None, body, status=401)  # still a token's work: it spends a worker
    _submit(world, world.reader, {**body, "inputs": ["vault/kit@1"]}, status=403)
    with world.client(world.reader) as c:  # its creator manages it
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    with world.client(world.bob) as c:  # bob sees it (acme is public) but may not cancel it
        assert c.post(f"/api/v1/jobs/{job['id']}/retry").status_code == 403
    with world.client(world.reader) as c:  # evaluate writes metrics into acme: a reader may not
        r = c.post("/api/v1/jobs", json={"kind": "evaluate", "inputs": ["acme/demo@2"],
                                         "params": {"task": "builtin:caesar_shift"}})
        assert r.status_code == 403, r.text


def test_retry_runs_the_submit_checks_again(world):
    job = _submit(world, "admin", {"kind": "infer", "inputs": ["acme/demo@3"], "params": {"prompts": ["hi"]}})
    with world.client() as c:
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
        assert c.delete("/api/v1/adapters/acme/demo/versions/3").status_code == 200
        fresh = c.post("/api/v1/jobs", json={"kind": "infer", "inputs": ["acme/demo@3"], "params": {"prompts": ["x"]}})
        assert fresh.status_code == 422 and "yanked" in fresh.json()["detail"]
        r = c.post(f"/api/v1/jobs/{job['id']}/retry")
        assert r.status_code == 422 and "yanked" in r.json()["detail"], r.text
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "cancelled"


@pytest.mark.parametrize("params", [
    {"seed": 10**30}, {"seed": 2**64}, {"seed": 2**32}, {"seed": -1},  # past what numpy/torch seeding takes
    {"seed": "5"}, {"max_new_tokens": "8"}, {"max_new_tokens": True}, {"max_new_tokens": 8.0},  # strict types
    {"gate": 1}, {"prompts": "hi"},
])
def test_params_the_worker_could_not_take_are_a_422(world, params):
    before = _ids(world, "admin")
    r = _submit(world, "admin", {**BASE_INFER, "params": {**BASE_INFER["params"], **params}}, status=422)
    assert r["detail"] and _ids(world, "admin") == before


def test_bounded_params_at_their_limits_are_accepted(world):
    job = _submit(world, "admin", {**BASE_INFER, "params": {**BASE_INFER["params"], "seed": 2**32 - 1,
                                                            "temperature": 1}})  # an int is a fine float
    assert job["params"]["seed"] == 2**32 - 1 and job["params"]["temperature"] == 1.0


@pytest.mark.parametrize("body", [
    {"kind": "train", "output": "alice/t", "params": {"base": SYN_BASE, "task": "builtin:caesar_shift", "rank": "8"}},
    {"kind": "train", "output": "alice/t", "params": {"base": SYN_BASE, "task": "builtin:caesar_shift", "rank": True}},
    {"kind": "train", "output": "alice/t", "params": {"base": SYN_BASE, "task": "builtin:caesar_shift",
                                                       "use_rslora": 1}},
    {"kind": "unlearn", "inputs": ["acme/demo@1"], "output": "acme/u",
     "params": {"forget": "builtin:caesar_shift", "options": ["x" * 1000] * 1000}},  # 1 MB of options
    {"kind": "noop", "params": {"seconds": "1"}},
    {"kind": "noop", "priority": 9},  # unknown top-level keys are refused, not ignored
    {"kind": "noop", "inputs": "acme/demo@1"},
    {"kind": 5},
])
def test_a_submit_with_coerced_unbounded_or_unknown_fields_is_a_422(world, body):
    before = _ids(world, "admin")
    _submit(world, "admin", body, status=422)
    assert _ids(world, "admin") == before


def _walk(live, token, limit: int) -> list[str]:
    """Every job the caller sees, a page of `limit` at a time through next_cursor."""
    seen, cursor = [], None
    with live.client(token) as c:
        while True:
            answer = c.get("/api/v1/jobs", params={"limit": limit, **({"cursor": cursor} if cursor else {})}).json()
            assert len(answer["items"]) <= limit
            seen += [j["id"] for j in answer["items"]]
            cursor = answer["next_cursor"]
            if cursor is None:
                return seen


def test_a_page_holds_limit_jobs_the_caller_may_see_and_the_cursor_walks_every_one_once(world):
    mine = [_submit(world, world.alice, {"kind": "noop"})["id"] for _ in range(3)]
    hidden = [_submit(world, world.bob, {"kind": "noop"})["id"] for _ in range(5)]  # newer, and not alice's to see
    with world.client(world.alice) as c:
        first = c.get("/api/v1/jobs", params={"limit": 3}).json()
    assert [j["id"] for j in first["items"]] == mine[::-1] and first["next_cursor"]  # bob's five are skipped
    with world.client(world.alice) as c:
        everything = [j["id"] for j in c.get("/api/v1/jobs", params={"limit": 1000}).json()["items"]]
    walked = _walk(world, world.alice, 2)
    assert walked == everything and len(set(walked)) == len(walked) and not set(hidden) & set(walked)
    with world.client() as c:  # the admin sees all, in the same order a page at a time
        assert _walk(world, "admin", 4) == [j["id"] for j in c.get("/api/v1/jobs", params={"limit": 1000}).json()[
            "items"]]
        for bad in ("not-a-cursor", "W10", "eyJhIjoxfQ"):  # garbage, [] and {"a": 1}
            r = c.get("/api/v1/jobs", params={"cursor": bad})
            assert r.status_code == 422 and "cursor" in r.json()["detail"], r.text
