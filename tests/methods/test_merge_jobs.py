"""Fitted merges through the job API with a real worker: the published version is a plain PEFT adapter with the
coefficients, the fit curve and the fit time in its metrics and lineage to the inputs and to the fit dataset; a fit
dataset the caller may not read is refused at submit like a missing one, and nothing is queued."""
from __future__ import annotations

import pytest

from tests.api.conftest import make_adapter_dir, upload
from tests.methods.conftest import run_job

REDIS_URL = "redis://127.0.0.1:6379/1"
ROWS = b"".join(b'{"prompt": "%d+1=", "completion": "%d"}\n' % (i, i + 1) for i in range(12))
FIT = ["team/data@1", "builtin:add_constant?n=8&k=5"]


@pytest.fixture(scope="module")
def merge_world(method_hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("merge-inputs")
    with method_hub.client() as c:
        for seed, name in ((1, "a"), (2, "b")):
            assert upload(c, "team", name, make_adapter_dir(tmp / name, seed=seed)).status_code == 201
        assert c.post("/api/v1/namespaces", json={"name": "secret", "private": True}).status_code in (200, 201)
        for ns in ("team", "secret"):
            r = c.post(f"/api/v1/datasets/{ns}/data/versions", files={"data.jsonl": ("data.jsonl", ROWS)})
            assert r.status_code == 201, r.text
    return method_hub


def test_a_fitted_merge_job_publishes_a_peft_adapter_with_its_fit_in_the_metrics_and_lineage(merge_world, tmp_path):
    from peft import PeftModel

    from lora.bases import tiny_model

    with merge_world.client() as c:
        job = run_job(c, {"kind": "merge", "inputs": ["team/a@1", "team/b@1"], "output": "team/ab-fit",
                          "params": {"method": "lego", "rank": 4, "fit": FIT, "fit_budget": 8, "fit_examples": 6}})
        assert job["state"] == "succeeded", job
        (ref,) = job["results"]
        version = c.get(f"/api/v1/adapters/{ref.replace('@', '/versions/')}").json()
        fit = version["metrics"]["merge"]["fit"]
        assert len(fit["coefficients"]) == 2 and fit["evaluations"] == len(fit["curve"]) == 8
        assert fit["examples"] == [6, 6] and fit["sources"] == FIT and fit["time_s"] > 0
        assert fit["loss_fitted"]["mean"] <= fit["loss_unfitted"]["mean"]
        parents = c.get(f"/api/v1/adapters/{ref.replace('@', '/versions/')}/lineage").json()["parents"]
        assert sorted((e["version"], e["relation"]) for e in parents) == [
            ("team/a@1", "merged_from"), ("team/b@1", "merged_from"), ("team/data@1", "fitted_on")]
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            url = f"/api/v1/adapters/{ref.replace('@', '/versions/')}/files/{name}"
            (tmp_path / name).write_bytes(c.get(url).content)
    model, _ = tiny_model("llama", seed=0)
    assert isinstance(PeftModel.from_pretrained(model, tmp_path), PeftModel)


def test_a_fit_dataset_the_caller_may_not_read_is_refused_like_a_missing_one(merge_world):
    token = merge_world.token("team", "read", "write")
    before = merge_world.scalar("SELECT count(*) FROM jobs")

    def submit(fit):
        with merge_world.client(token) as c:
            return c.post("/api/v1/jobs", json={"kind": "merge", "inputs": ["team/a@1", "team/b@1"],
                                                "output": "team/refused", "params": {"method": "linear", "fit": fit}})

    private = submit(["secret/data@1", FIT[1]])
    assert private.status_code == 403 and "params.fit[0]" in private.text and "'secret'" in private.text
    missing = submit(["team/nothing@1", FIT[1]])
    assert missing.status_code == 422 and "params.fit[0]" in missing.text
    short = submit([FIT[1]])
    assert short.status_code == 422 and "one example set" in short.text
    assert merge_world.scalar("SELECT count(*) FROM jobs") == before


def test_cli_merge_passes_fit_and_its_budget(merge_world, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    monkeypatch.setenv("ADAPTARIUM_URL", merge_world.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", merge_world.admin_token)
    r = CliRunner().invoke(app, ["merge", "team/a@1", "team/b@1", "--into", "team/ab-cli", "--method", "linear",
                                 "--fit", FIT[0], "--fit", FIT[1], "--fit-budget", "4"])
    assert r.exit_code == 0 and "team/ab-cli@1" in r.output, r.output
    with merge_world.client() as c:
        fit = c.get("/api/v1/adapters/team/ab-cli/versions/1").json()["metrics"]["merge"]["fit"]
    assert fit["sources"] == FIT and fit["evaluations"] == 4
