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


ROUTE_FIT = ["builtin:caesar_shift?n=8&k=1", "builtin:add_constant?n=8&k=5"]
ROUTE_PROMPTS = ["shift: a b c d e =", "add: 123 ="]  # one of each input's task


def test_a_routed_merge_job_publishes_its_experts_and_routes_infer_and_evaluate(merge_world, tmp_path):
    from peft import PeftModel

    from lora.bases import tiny_model

    with merge_world.client() as c:
        job = run_job(c, {"kind": "merge", "inputs": ["team/a@1", "team/b@1"], "output": "team/ab-route",
                          "params": {"method": "route", "fit": ROUTE_FIT, "fit_examples": 6}})
        assert job["state"] == "succeeded", job
        (ref,) = job["results"]
        path = f"/api/v1/adapters/{ref.replace('@', '/versions/')}"
        version = c.get(path).json()
        route = version["metrics"]["merge"]["route"]
        assert route["sources"] == ["team/a@1", "team/b@1"] and route["router"] == "examples"
        assert route["top1_accuracy_held_out"] == [1.0, 1.0] and route["fit_sources"] == ROUTE_FIT
        names = {f["name"] for f in version["files"]}
        assert {"route/manifest.json", "route/experts/00/adapter_model.safetensors",
                "route/experts/01/adapter_config.json"} <= names
        for k in range(2):  # each expert is a PEFT folder of its own
            folder = tmp_path / f"expert{k}"
            folder.mkdir()
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                (folder / name).write_bytes(c.get(f"{path}/files/route/experts/{k:02d}/{name}").content)
            model, _ = tiny_model("llama", seed=0)
            assert isinstance(PeftModel.from_pretrained(model, folder), PeftModel)

        infer = run_job(c, {"kind": "infer", "inputs": [ref], "params": {"prompts": ROUTE_PROMPTS,
                                                                         "max_new_tokens": 4}})
        assert infer["state"] == "succeeded", infer
        result = infer["result"]
        assert result["experts"] == ["team/a@1", "team/b@1"] and len(result["completions"]) == 2
        assert [max(range(2), key=row.__getitem__) for row in result["route_weights"]] == [0, 1]
        assert result["routing_s"] > 0

        evaluate = run_job(c, {"kind": "evaluate", "inputs": [ref],
                               "params": {"task": "builtin:add_constant?n=8&test=6&k=5"}})
        assert evaluate["state"] == "succeeded", evaluate
        scores = evaluate["result"]["scores"]
        assert scores["route_top"] == [1] * 6 and scores["route_top1_counts"] == [0, 6]
        assert len(scores["route_weights"]) == 6 and 0 < scores["routing_share"] < 1
        assert c.get(path).json()["metrics"]["eval/add_constant/route_top1_counts"] == [0, 6]
        # gate "off": the plain PEFT files (the experts' cat merge), not routed, under keys of their own
        plain = run_job(c, {"kind": "infer", "inputs": [ref], "params": {"prompts": ROUTE_PROMPTS[:1],
                                                                         "max_new_tokens": 4, "gate": "off"}})
        assert plain["state"] == "succeeded" and "route_weights" not in plain["result"]
        plain = run_job(c, {"kind": "evaluate", "inputs": [ref],
                            "params": {"task": "builtin:add_constant?n=8&test=6&k=5", "gate": "off"}})
        assert "eval/add_constant/unrouted/exact_match" in plain["result"]
        assert "route_top" not in plain["result"]["scores"]


def test_route_with_the_examples_router_needs_fit_at_submit(merge_world):
    with merge_world.client() as c:
        r = c.post("/api/v1/jobs", json={"kind": "merge", "inputs": ["team/a@1", "team/b@1"],
                                         "output": "team/no-fit", "params": {"method": "route"}})
    assert r.status_code == 422 and "needs fit" in r.text


def test_cli_merge_method_route(merge_world, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    monkeypatch.setenv("ADAPTARIUM_URL", merge_world.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", merge_world.admin_token)
    r = CliRunner().invoke(app, ["merge", "team/a@1", "team/b@1", "--into", "team/ab-route-cli", "--method", "route",
                                 "--router", "arrow"])
    assert r.exit_code == 0 and "team/ab-route-cli@1" in r.output, r.output
    with merge_world.client() as c:
        route = c.get("/api/v1/adapters/team/ab-route-cli/versions/1").json()["metrics"]["merge"]["route"]
    assert route["router"] == "arrow" and route["calibrated"] is False and route["experts"] == 2
