"""O3 through the job API with a real worker: two unlearning requests in sequence on a tiny-llama adapter, gated
`infer` and `evaluate` on the result, and the 422s that must queue nothing."""
from __future__ import annotations

import pytest

from tests.api.conftest import TINY_BASE
from tests.methods.conftest import events, run_job

REDIS_URL = "redis://127.0.0.1:6379/14"
TASK = "builtin:word_sorting?n=24&test=8&seed=0"
FAST = {"steps": 6, "rank": 4, "lora_alpha": 8, "detector_steps": 4, "detector_rank": 4, "batch_size": 4,
        "detector_batch_size": 4, "lr": 5e-3}


@pytest.fixture(scope="module")
def unlearned(method_hub):
    with method_hub.client() as c:
        trained = run_job(c, {"kind": "train", "output": "team/assistant", "params": {
            "base": TINY_BASE, "task": TASK, "steps": 10, "lr": 3e-2, "rank": 4}})
        assert trained["state"] == "succeeded", trained
        first = run_job(c, {"kind": "unlearn", "inputs": ["team/assistant@1"], "output": "team/assistant",
                            "params": {"forget": "builtin:boolean_expressions?n=12&test=4&seed=3",
                                       "reference": TASK, **FAST}})
        assert first["state"] == "succeeded", first
        second = run_job(c, {"kind": "unlearn", "inputs": ["team/assistant@2"], "output": "team/assistant",
                             "params": {"forget": "builtin:object_counting?n=12&test=4&seed=3", **FAST}})
        assert second["state"] == "succeeded", second
    return method_hub, first, second


def test_each_request_is_the_next_version_with_o3_files_lineage_and_report(unlearned):
    hub, first, second = unlearned
    assert first["results"] == ["team/assistant@2"] and second["results"] == ["team/assistant@3"]
    with hub.client() as c:
        v2 = c.get("/api/v1/adapters/team/assistant/versions/2").json()
        v3 = c.get("/api/v1/adapters/team/assistant/versions/3").json()
        names = {f["name"] for f in v3["files"]}
        assert {"adapter_config.json", "adapter_model.safetensors", "o3/manifest.json",
                "o3/task/adapter_model.safetensors", "o3/unlearn/adapter_model.safetensors"} <= names
        # the second request keeps the first one's detector and A matrices, byte for byte
        kept = {f["name"]: f["sha256"] for f in v2["files"] if "/000/" in f["name"]}
        assert kept and all({f["name"]: f["sha256"] for f in v3["files"]}.get(n) == sha for n, sha in kept.items())
        report = v2["metrics"]["unlearn"]
        assert report["n_requests"] == 1 and 0 <= report["detector"]["auroc"] <= 1  # reference inputs were given
        assert v3["metrics"]["unlearn"]["n_requests"] == 2 and len(v3["metrics"]["unlearn"]["overlap"]) == 1
        lineage = c.get("/api/v1/adapters/team/assistant/versions/3/lineage").json()["parents"]
        assert {(e["version"], e["relation"]) for e in lineage} == {("team/assistant@2", "unlearned_from")}
        names = {e["data"]["name"] for e in events(c, second["id"]) if e["type"] == "metric"}
        assert {"loss", "orth_loss"} <= names
        orth = [e["data"]["value"] for e in events(c, second["id"])
                if e["type"] == "metric" and e["data"]["name"] == "orth_loss"]
        assert max(orth) > 0  # the second request is pushed away from the first one's A matrices


def test_infer_reports_gate_weights_and_evaluate_is_gated(unlearned):
    hub, _, _ = unlearned
    prompts = ["True and not False = ", "Sort: pear apple fig ="]
    with hub.client() as c:
        r = c.post("/api/v1/jobs?wait=60", json={"kind": "infer", "inputs": ["team/assistant@3"],
                                                  "params": {"prompts": prompts, "max_new_tokens": 8}})
        assert r.status_code == 202 and r.json()["state"] == "succeeded", r.text  # ?wait= answered when done
        result = r.json()["result"]
        assert result["prompts"] == prompts and len(result["completions"]) == 2
        assert all(0 <= w <= 1 for w in result["gate_weights"])
        off = run_job(c, {"kind": "infer", "inputs": ["team/assistant@3"],
                          "params": {"prompts": prompts, "max_new_tokens": 8, "gate": "off"}})["result"]
        assert off["gate_weights"] == [1.0, 1.0]
        plain = run_job(c, {"kind": "infer", "params": {"base": TINY_BASE, "prompts": prompts, "max_new_tokens": 8}})
        assert "gate_weights" not in plain["result"] and len(plain["result"]["completions"]) == 2
        ev = run_job(c, {"kind": "evaluate", "inputs": ["team/assistant@3"],
                         "params": {"task": "builtin:boolean_expressions?n=12&test=4&seed=3", "limit": 4}})
        assert ev["state"] == "succeeded" and "eval/boolean_expressions/gate_mean" in ev["result"]


def test_bad_unlearn_and_infer_requests_are_422_with_nothing_queued(unlearned):
    hub, _, _ = unlearned
    with hub.client() as c:
        before = hub.scalar("SELECT count(*) FROM jobs")
        cases = [
            ({"kind": "unlearn", "inputs": ["team/assistant@1"], "output": "team/x",
              "params": {"forget": "builtin:boolean_expressions?n=5"}}, "needs at least 10"),
            ({"kind": "unlearn", "inputs": ["team/assistant@1"], "output": "team/x",
              "params": {"forget": TASK, "relabel": "shuffle"}}, "params.relabel"),
            ({"kind": "infer", "inputs": ["team/assistant@1"], "params": {"prompts": ["x"] * 65}}, "params.prompts"),
            ({"kind": "infer", "inputs": ["team/assistant@1"], "params": {"prompts": ["x" * 5000]}}, "params.prompts"),
        ]
        for body, fragment in cases:
            r = c.post("/api/v1/jobs", json=body)
            assert r.status_code == 422 and fragment in r.json()["detail"], (fragment, r.text)
        assert hub.scalar("SELECT count(*) FROM jobs") == before


def test_cli_unlearn_and_infer(unlearned, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    hub, _, _ = unlearned
    monkeypatch.setenv("ADAPTARIUM_URL", hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", hub.admin_token)
    cli = CliRunner()
    args = ["unlearn", "team/assistant@3", "--forget", "builtin:two_step_arithmetic?n=12&test=4&seed=3"]
    for key, value in FAST.items():
        args += ["-p", f"{key}={value}"]
    r = cli.invoke(app, args)
    assert r.exit_code == 0 and "team/assistant@4" in r.output, r.output
    r = cli.invoke(app, ["infer", "team/assistant@4", "True and False = ", "--max-new-tokens", "4"])
    assert r.exit_code == 0 and "True and False = " in r.output and "[gate " in r.output, r.output
    r = cli.invoke(app, ["infer", TINY_BASE, "--base", "True and False = ", "--max-new-tokens", "4"])
    assert r.exit_code == 0 and "[gate " not in r.output, r.output
