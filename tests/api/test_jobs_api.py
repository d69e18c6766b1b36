"""Jobs through the REST API with a real Celery worker process on Redis: train, evaluate, merge end to end.

One hub (SQLite + local blobs, the embedded default's storage) and one worker per module; the broker is Redis db 9,
flushed first, so nothing else on this machine's Redis is touched.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta

import pytest
import redis

from tests.api.conftest import TINY_BASE, make_adapter_dir, start_hub, upload
from tests.conftest import start_worker, stop_process

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture(scope="module")
def jobs_hub(tmp_path_factory, tiny_base):
    redis.Redis.from_url(REDIS_URL).flushdb()
    tmp = tmp_path_factory.mktemp("jobs-hub")
    live, stop = start_hub(tmp, ADAPTARIUM_BROKER_URL=REDIS_URL)
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": REDIS_URL}
    worker = start_worker(env, "api-test")
    with live.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
    yield live
    stop_process(worker)
    stop()


def wait_for(client, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_train_job_publishes_a_version_with_loss_curve_events(jobs_hub):
    with jobs_hub.client() as c:
        body = {"kind": "train", "inputs": [], "output": {"namespace": "jobs", "name": "caesar"},
                "params": {"base": TINY_BASE, "task": "builtin:caesar_shift?n=64&seed=0", "steps": 12, "rank": 4,
                           "lora_alpha": 8, "lr": 5e-3, "batch_size": 8, "seed": 0, "checkpoint_every": 6}}
        r = c.post("/api/v1/jobs", json=body)
        assert r.status_code == 202, r.text
        job = wait_for(c, r.json()["id"])
        assert job["state"] == "succeeded", job
        assert job["results"] == ["jobs/caesar@1"] and job["progress"] == 1.0 and job["attempts"] == 1
        version = c.get("/api/v1/adapters/jobs/caesar/versions/1").json()
        assert version["base"] == TINY_BASE and version["job_id"] == job["id"] and version["peft_config"]["r"] == 4
        names = sorted(f["name"] for f in version["files"])
        assert names == ["adapter_config.json", "adapter_model.safetensors",
                         "checkpoints/step-12/adapter_config.json", "checkpoints/step-12/adapter_model.safetensors",
                         "checkpoints/step-6/adapter_config.json", "checkpoints/step-6/adapter_model.safetensors"]
        checkpoint = c.get("/api/v1/adapters/jobs/caesar/versions/1/files/checkpoints/step-6/adapter_config.json")
        assert checkpoint.status_code == 200 and checkpoint.json()["r"] == 4
        events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        stamps = [datetime.fromisoformat(e["at"]) for e in events]  # explicit UTC, so browsers show local time right
        assert all(s.utcoffset() == timedelta(0) for s in stamps) and stamps == sorted(stamps)
        losses = [e["data"]["value"] for e in events if e["type"] == "metric" and e["data"].get("name") == "loss"]
        assert len(losses) == 12
        later = c.get(f"/api/v1/jobs/{job['id']}/events", params={"after": events[-3]["seq"]}).json()["items"]
        assert [e["seq"] for e in later] == [events[-2]["seq"], events[-1]["seq"]]


def test_a_train_job_with_an_input_continues_that_adapter_on_its_own_base(jobs_hub, tiny_base):
    params = {"base": TINY_BASE, "task": "builtin:caesar_shift?n=64&seed=0", "steps": 8, "rank": 4, "lora_alpha": 8,
              "lr": 5e-3, "batch_size": 8, "seed": 0}
    with jobs_hub.client() as c:
        first = wait_for(c, c.post("/api/v1/jobs", json={"kind": "train", "output": "jobs/steps-8",
                                                         "params": params}).json()["id"])
        assert first["state"] == "succeeded", first
        # rank 8 (the default) is not asked for: a continuation keeps the input's LoRA shape
        more = {k: v for k, v in params.items() if k not in ("rank", "lora_alpha")}
        r = c.post("/api/v1/jobs", json={"kind": "train", "inputs": ["jobs/steps-8@1"], "output": "jobs/steps-16",
                                         "params": more})
        assert r.status_code == 202, r.text
        second = wait_for(c, r.json()["id"])
        assert second["state"] == "succeeded", second
        a = c.get("/api/v1/adapters/jobs/steps-8/versions/1").json()
        b = c.get("/api/v1/adapters/jobs/steps-16/versions/1").json()
        assert b["peft_config"]["r"] == 4 and b["peft_config"]["lora_alpha"] == 8
        # same seed, same first batch: a fresh LoRA starts at the base's loss, the continuation where the input ended
        assert b["metrics"]["train/first_loss"] < a["metrics"]["train/first_loss"] - 0.1, (a["metrics"], b["metrics"])
        lineage = c.get("/api/v1/adapters/jobs/steps-16/versions/1/lineage").json()
        assert [(p["version"], p["relation"]) for p in lineage["parents"]] == [("jobs/steps-8@1", "continued_from")]

        other = {**tiny_base[2], "name": "tiny-llama-other", "aliases": ["tiny:llama?seed=1"],
                 "source": "tiny:llama?seed=1"}
        assert c.post("/api/v1/bases", json=other).status_code == 201
        before = jobs_hub.scalar("select count(*) from jobs")
        r = c.post("/api/v1/jobs", json={"kind": "train", "inputs": ["jobs/steps-8@1"], "output": "jobs/x",
                                         "params": {**more, "base": "tiny-llama-other"}})
        assert r.status_code == 422 and "is on base 'tiny-llama'" in r.json()["detail"], r.text
        r = c.post("/api/v1/jobs", json={"kind": "train", "inputs": ["jobs/steps-8@1"], "output": "jobs/x",
                                         "params": {**more, "transfer_kit": True}})
        assert r.status_code == 422 and "transfer_kit" in r.text, r.text
        assert jobs_hub.scalar("select count(*) from jobs") == before


def test_events_stream_as_server_sent_events_until_the_job_ends(jobs_hub):
    with jobs_hub.client() as c:
        job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 1.0}}).json()
        lines = []
        with c.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                lines.append(line)
        data = [json.loads(l[5:]) for l in lines if l.startswith("data:")]
        assert data[-1] == {"state": "succeeded"}
        assert any(d.get("type") == "state" for d in data[:-1])


def test_evaluate_and_merge_jobs_record_metrics_and_lineage(jobs_hub, tmp_path):
    with jobs_hub.client() as c:
        for seed, name in [(1, "left"), (2, "right")]:
            assert upload(c, "jobs", name, make_adapter_dir(tmp_path / name, seed=seed)).status_code == 201
        ev = c.post("/api/v1/jobs", json={"kind": "evaluate", "inputs": ["jobs/left@1"],
                                          "params": {"task": "builtin:caesar_shift?n=8&test=8&seed=1"}}).json()
        assert wait_for(c, ev["id"])["state"] == "succeeded"
        metrics = c.get("/api/v1/adapters/jobs/left/versions/1").json()["metrics"]
        assert any(k.startswith("eval/") for k in metrics), metrics
        merge = c.post("/api/v1/jobs", json={"kind": "merge", "inputs": ["jobs/left@1", "jobs/right"],
                                             "params": {"method": "lego", "rank": 4},
                                             "output": {"namespace": "jobs", "name": "merged"}}).json()
        done = wait_for(c, merge["id"])
        assert done["state"] == "succeeded", done
        lineage = c.get("/api/v1/adapters/jobs/merged/versions/1/lineage").json()
        assert sorted((p["version"], p["relation"]) for p in lineage["parents"]) == [
            ("jobs/left@1", "merged_from"), ("jobs/right@1", "merged_from")]
        assert c.get("/api/v1/adapters/jobs/merged/versions/1").json()["metrics"]["merge"]["method"] == "lego"


def test_bad_job_requests_are_422_and_queue_nothing(jobs_hub, tmp_path):
    with jobs_hub.client() as c:
        upload(c, "jobs", "yanked-one", make_adapter_dir(tmp_path / "y", seed=3))
        c.delete("/api/v1/adapters/jobs/yanked-one/versions/1")
        before = jobs_hub.scalar("select count(*) from jobs")
        bad = [
            {"kind": "teleport", "params": {}},
            {"kind": "train", "params": {"base": TINY_BASE, "task": "builtin:caesar_shift", "steps": "many"},
             "output": {"namespace": "jobs", "name": "t"}},
            {"kind": "evaluate", "inputs": ["jobs/does-not-exist@1"], "params": {"task": "builtin:caesar_shift"}},
            {"kind": "evaluate", "inputs": ["jobs/yanked-one@1"], "params": {"task": "builtin:caesar_shift"}},
            {"kind": "merge", "inputs": ["jobs/yanked-one@1"], "params": {"method": "lego"},
             "output": {"namespace": "jobs", "name": "m"}},
            {"kind": "evaluate", "inputs": ["jobs/yanked-one@9223372036854775808"],
             "params": {"task": "builtin:caesar_shift"}},  # past any integer column: not found, not a 500
            # JSON's non-standard Infinity, as Python's json module writes it (a LoRA with it trains to NaN)
            '{"kind": "train", "output": "jobs/t", "params": {"base": "%s", "task": "builtin:caesar_shift", '
            '"lora_alpha": Infinity}}' % TINY_BASE,
        ]
        for body in bad:
            r = c.post("/api/v1/jobs", content=body, headers={"Content-Type": "application/json"}) \
                if isinstance(body, str) else c.post("/api/v1/jobs", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["detail"]
        assert jobs_hub.scalar("select count(*) from jobs") == before


def test_idempotency_key_returns_the_same_job(jobs_hub):
    with jobs_hub.client() as c:
        body = {"kind": "noop", "params": {"seconds": 0.1}}
        first = c.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "abc-123"}).json()
        second = c.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "abc-123"}).json()
        assert first["id"] == second["id"]
        assert wait_for(c, first["id"])["state"] == "succeeded"


def test_cancel_a_running_job_and_retry_it(jobs_hub):
    with jobs_hub.client() as c:
        job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 30}}).json()
        deadline = time.monotonic() + 60
        while c.get(f"/api/v1/jobs/{job['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
        assert wait_for(c, job["id"], timeout=30)["state"] == "cancelled"
        retried = c.post(f"/api/v1/jobs/{job['id']}/retry")
        assert retried.status_code == 202 and retried.json()["state"] == "queued"
        c.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert wait_for(c, job["id"], timeout=60)["state"] == "cancelled"


def test_cli_merge_submits_a_job_waits_and_reports_the_result(jobs_hub, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    with jobs_hub.client() as c:
        for seed, name in [(5, "cli-a"), (6, "cli-b")]:
            assert upload(c, "jobs", name, make_adapter_dir(tmp_path / name, seed=seed)).status_code == 201
    monkeypatch.setenv("ADAPTARIUM_URL", jobs_hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", jobs_hub.admin_token)
    result = CliRunner().invoke(app, ["merge", "cli-a@1", "jobs/cli-b", "--method", "ties", "--density", "0.5",
                                      "--into", "jobs/cli-merged"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "jobs/cli-merged@1" in result.output
    bad = CliRunner().invoke(app, ["merge", "cli-a@1", "--method", "lego", "--into", "jobs/x"])
    assert bad.exit_code == 1 and "2 to 64 input" in bad.output


def test_train_on_a_registry_dataset_records_trained_from_lineage(jobs_hub):
    rows = b"".join(json.dumps({"prompt": f"shift: {w} =", "completion": f" {w[1:]}{w[0]}"}).encode() + b"\n"
                    for w in ("abc", "bcd", "cde", "def", "efg", "fgh", "ghi", "hij"))
    with jobs_hub.client() as c:
        r = c.post("/api/v1/datasets/jobs/rotations/versions", files={"data.jsonl": ("data.jsonl", rows)})
        assert r.status_code == 201, r.text
        job = c.post("/api/v1/jobs", json={"kind": "train", "output": "jobs/from-data",
                                           "params": {"base": TINY_BASE, "dataset": "jobs/rotations@1", "steps": 4,
                                                      "rank": 2, "batch_size": 4}}).json()
        done = wait_for(c, job["id"])
        assert done["state"] == "succeeded", done
        lineage = c.get("/api/v1/adapters/jobs/from-data/versions/1/lineage").json()
        assert lineage["parents"] == [{"version": "jobs/rotations@1", "object": "dataset", "relation": "trained_from",
                                       "hidden": False}]
        missing = c.post("/api/v1/jobs", json={"kind": "train", "output": "jobs/x",
                                               "params": {"base": TINY_BASE, "dataset": "jobs/none@1"}})
        assert missing.status_code == 422 and "jobs/none" in missing.json()["detail"]


def test_cli_train_evaluate_and_generic_submit_logs_cancel_retry(jobs_hub, monkeypatch):
    """Every CLI job command against the real worker: train and evaluate wrappers, `jobs submit` typed by the kind's
    schema, logs, cancel and retry; a failing job exits non-zero with its error."""
    from typer.testing import CliRunner

    from hub.cli import app

    monkeypatch.setenv("ADAPTARIUM_URL", jobs_hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", jobs_hub.admin_token)
    cli = CliRunner()
    r = cli.invoke(app, ["train", "--task", "builtin:caesar_shift?n=32&seed=0", "--base", TINY_BASE,
                         "--into", "jobs/cli-trained", "--steps", "4", "--rank", "2", "-p", "batch_size=4",
                         "-p", "target_modules=q_proj,v_proj"])
    assert r.exit_code == 0, r.output
    assert "succeeded" in r.output and "jobs/cli-trained@1" in r.output
    r = cli.invoke(app, ["evaluate", "jobs/cli-trained@1", "--task", "builtin:caesar_shift?n=8&test=4&seed=1"])
    assert r.exit_code == 0, r.output
    assert "eval/caesar_shift/exact_match" in r.output  # the job's result data is printed
    with jobs_hub.client() as c:
        metrics = c.get("/api/v1/adapters/jobs/cli-trained/versions/1").json()["metrics"]
    assert metrics["eval/caesar_shift/n"] == 4

    r = cli.invoke(app, ["jobs", "submit", "evaluate", "-p", f"base={TINY_BASE}", "--wait",
                         "-p", "task=builtin:caesar_shift?n=8&test=4&seed=1"])
    assert r.exit_code == 0 and "eval/caesar_shift/exact_match" in r.output, r.output  # the base alone: data only

    r = cli.invoke(app, ["jobs", "submit", "noop", "-p", "seconds=30", "--no-wait"])  # every command waits by default
    assert r.exit_code == 0, r.output
    job_id = r.output.split("noop job ", 1)[1].split()[0]
    with jobs_hub.client() as c:
        deadline = time.monotonic() + 60
        while c.get(f"/api/v1/jobs/{job_id}").json()["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert cli.invoke(app, ["jobs", "cancel", job_id]).exit_code == 0
    r = cli.invoke(app, ["jobs", "wait", job_id])
    assert r.exit_code == 1 and "cancelled" in r.output
    r = cli.invoke(app, ["jobs", "logs", job_id])
    assert r.exit_code == 0 and "cancellation requested" in r.output and "cancelled" in r.output
    r = cli.invoke(app, ["jobs", "retry", job_id, "--no-wait"])
    assert r.exit_code == 0 and "queued" in r.output
    assert cli.invoke(app, ["jobs", "cancel", job_id]).exit_code == 0

    bad = cli.invoke(app, ["jobs", "submit", "noop", "-p", "sconds=1"])
    assert bad.exit_code == 1 and "unknown parameter 'sconds'" in bad.output
    failing = cli.invoke(app, ["jobs", "submit", "train", "--into", "jobs/never", "--wait",
                               "-p", f"base={TINY_BASE}", "-p", "task=builtin:caesar_shift?n=8", "-p", "steps=2",
                               "-p", "max_len=8", "-p", "target_modules=no_such_module"])
    assert failing.exit_code == 1 and "failed" in failing.output and "no_such_module" in failing.output


def test_idempotency_keys_belong_to_their_caller_and_a_changed_body_is_409(jobs_hub):
    body = {"kind": "noop", "params": {"seconds": 0}}
    with jobs_hub.client(jobs_hub.token(None, "write")) as one, jobs_hub.client(jobs_hub.token(None, "write")) as two:
        first = one.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "same-key"})
        again = one.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "same-key"})
        other = two.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "same-key"})
        changed = one.post("/api/v1/jobs", json={**body, "params": {"seconds": 1}},
                           headers={"Idempotency-Key": "same-key"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["id"] == first.json()["id"] and other.json()["id"] != first.json()["id"]
    assert changed.status_code == 409 and "different request" in changed.json()["detail"]
