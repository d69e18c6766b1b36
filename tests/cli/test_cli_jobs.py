"""Job commands: short ids (unique prefixes, access-checked), --json, state names, results that tell a kit's adapter
from its seed dataset, and a wait that rides out a hub restart."""
from __future__ import annotations

import json
import time
from collections import Counter
from types import SimpleNamespace

import httpx
import pytest
import typer

from hub import cli_jobs
from hub import jobs as job_service
from hub.client import ClientError, HubClient
from hub.job_kinds import KINDS
from tests.api.conftest import make_adapter_dir, upload
from tests.cli.conftest import invoke
from tests.conftest import free_port


def _noop_jobs(live, count: int) -> list[str]:
    with live.client() as c:
        return [c.post("/api/v1/jobs", json={"kind": "noop", "params": {}}).json()["id"] for _ in range(count)]


def test_any_unique_prefix_names_a_job_and_an_ambiguous_one_lists_the_matches(cli_env):
    ids = _noop_jobs(cli_env, 17)  # 17 ids over 16 hex digits: two share a first character
    shared, _ = Counter(i[0] for i in ids).most_common(1)[0]
    r = invoke("jobs", "show", ids[0][:6], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["id"] == ids[0]
    r = invoke("jobs", "show", ids[0][:6])
    assert r.exit_code == 0 and ids[0] in r.output and "noop" in r.output
    r = invoke("jobs", "cancel", shared)
    assert r.exit_code == 1 and "ambiguous" in r.output
    assert sum(i[:12] in r.output for i in ids if i[0] == shared) >= 2
    assert all(s == "queued" for s in {cli_env.client().get(f"/api/v1/jobs/{i}").json()["state"] for i in ids})
    r = invoke("jobs", "logs", "0123456789abcdef01")
    assert r.exit_code == 1 and "no job" in r.output


def test_a_prefix_lookup_never_shows_a_job_the_caller_may_not_read(cli_env, tiny_base, tmp_path):
    with cli_env.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
        assert c.post("/api/v1/namespaces", json={"name": "secret", "private": True}).status_code == 201
        assert upload(c, "secret", "a", make_adapter_dir(tmp_path / "a")).status_code == 201
        job = c.post("/api/v1/jobs", json={"kind": "evaluate", "inputs": ["secret/a@1"],
                                           "params": {"task": "builtin:boolean_expressions?n=8"}}).json()
        assert [j["id"] for j in c.get("/api/v1/jobs", params={"id_prefix": job["id"][:5]}).json()["items"]] == [
            job["id"]]
    outsider = cli_env.token("other", "read")
    with cli_env.client(outsider) as c:
        assert c.get("/api/v1/jobs", params={"id_prefix": job["id"][:5]}).json()["items"] == []
    with pytest.raises(ClientError) as caught, HubClient(cli_env.url, outsider) as client:
        client.job_id(job["id"][:5])
    assert caught.value.status == 404
    assert cli_env.client().get("/api/v1/jobs", params={"id_prefix": "%"}).status_code == 422


def test_jobs_ls_refuses_a_state_that_does_not_exist_and_names_the_states(cli_env):
    r = invoke("jobs", "ls", "--state", "finished")
    assert r.exit_code == 1 and "queued, running, succeeded, failed, cancelled" in r.output
    answer = cli_env.client().get("/api/v1/jobs", params={"state": "finished"})
    assert answer.status_code == 422 and "succeeded" in answer.json()["detail"]
    _noop_jobs(cli_env, 1)
    items = json.loads(invoke("jobs", "ls", "--state", "queued", "--json").output)["items"]
    assert [j["kind"] for j in items] == ["noop"]


def test_a_kits_adapter_and_seed_dataset_of_one_name_are_told_apart():
    assert KINDS["transfer_kit"].result_objects({}, 2) == ["adapter", "dataset"]
    assert KINDS["train"].result_objects({"transfer_kit": True}, 3) == ["adapter", "adapter", "dataset"]
    assert KINDS["train_generator"].result_objects({}, 1) == ["generator"]
    job = {"results": ["team/kit@1", "team/kit@1"], "result_objects": ["adapter", "dataset"]}
    assert cli_jobs._results(job) == ["team/kit@1 (adapter)", "team/kit@1 (dataset)"]


def test_wait_rides_out_a_hub_that_stops_answering_and_reports_the_job_that_finished_meanwhile(cli_env, monkeypatch):
    (job_id,) = _noop_jobs(cli_env, 1)
    naps = []

    class Restarting(httpx.HTTPTransport):
        """Connections refused for three polls, as while the hub restarts; the job ends in the meantime."""

        def handle_request(self, request):
            if 1 <= len(naps) <= 3:
                if len(naps) == 3:
                    factory = cli_env.app.state.session_factory
                    assert job_service.claim(factory, job_id, "test:1", 60)
                    assert job_service.finish(factory, job_id, "succeeded", results=[])
                raise httpx.ConnectError("Connection refused")
            return super().handle_request(request)

    monkeypatch.setattr(cli_jobs, "time", SimpleNamespace(sleep=naps.append, monotonic=time.monotonic))
    with HubClient(cli_env.url, cli_env.admin_token) as client:
        client.http = httpx.Client(base_url=cli_env.url, headers=client.http.headers, transport=Restarting())
        assert cli_jobs._wait(client, job_id)["state"] == "succeeded"
    assert naps.count(2) == 3  # each refused poll waited before the next


def test_wait_gives_up_after_a_while_and_says_how_to_follow_the_job_again(cli_env, monkeypatch, capsys):
    (job_id,) = _noop_jobs(cli_env, 1)
    monkeypatch.setattr(cli_jobs, "RECONNECT_S", 0.2)
    monkeypatch.setattr(cli_jobs, "time", SimpleNamespace(sleep=lambda s: time.sleep(0.05), monotonic=time.monotonic))
    with HubClient(f"http://127.0.0.1:{free_port()}", cli_env.admin_token) as client, pytest.raises(typer.Exit):
        cli_jobs._wait(client, job_id)
    said = capsys.readouterr().err
    assert f"adaptarium jobs wait {job_id[:8]}" in said and "goes on" in said


def test_a_job_result_prints_its_numbers_and_counts_per_item_values():
    """An evaluate's per-item `correct` string and `scores` list would fill the screen; a user came for exact_match."""
    from hub.cli_common import console
    from hub.cli_jobs import _print_result

    correct = "10" * 100
    with console.capture() as captured:
        _print_result({"eval/bool/exact_match": 0.5, "eval/bool/correct": correct, "scores": [0.25] * 200})
    out = captured.get()
    assert "eval/bool/exact_match" in out and "0.5" in out
    assert correct not in out and "(200 characters; --json shows them)" in out
    assert "(200 items; --json shows them)" in out
