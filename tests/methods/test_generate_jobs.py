"""ICM-LoRA through the job API with a real worker: a family of caesar-shift adapters with trajectories, a
generator trained on it (hidden-state and text conditions), seeded generation, likelihood selection, and the 422s
for inputs that cannot be one family."""
from __future__ import annotations

import pytest

from tests.api.conftest import TINY_BASE
from tests.methods.conftest import file_sha, run_job

REDIS_URL = "redis://127.0.0.1:6379/15"
FAST = {"epochs": 30, "latent": 8, "basis": 4, "batch_size": 4, "condition_examples": 4}


def shift(k: int) -> str:
    return f"builtin:caesar_shift?k={k}&n=16&test=4&seed=0"


@pytest.fixture(scope="module")
def family(method_hub):
    with method_hub.client() as c:
        for k in (1, 2, 3):
            job = run_job(c, {"kind": "train", "output": f"team/shift-{k}", "params": {
                "base": TINY_BASE, "task": shift(k), "steps": 8, "rank": 2, "lr": 2e-2, "checkpoint_every": 2}})
            assert job["state"] == "succeeded", job
        gen = run_job(c, {"kind": "train_generator", "inputs": ["team/shift-1@1", "team/shift-2@1", "team/shift-3@1"],
                          "output": "team/shift-gen", "params": FAST})
        assert gen["state"] == "succeeded", gen
    return method_hub, gen


def test_the_generator_is_a_versioned_registry_object_with_its_report_and_lineage(family):
    hub, gen = family
    assert gen["results"] == ["team/shift-gen@1"]
    with hub.client() as c:
        version = c.get("/api/v1/generators/team/shift-gen/versions/1").json()
        assert {f["name"] for f in version["files"]} == {"generator_config.json", "generator.safetensors"}
        assert version["base"] == TINY_BASE and version["metrics"]["condition"] == "hidden_state"
        report = version["metrics"]["generator"]
        assert report and any("byte" in k for k in report)  # the size comparison against the checkpoints
        # per member, from its own examples: how close the generator's decode comes to its trained adapter
        assert [row["member"] for row in report["member_fidelity"]] == [f"team/shift-{k}@1" for k in (1, 2, 3)]
        assert all(row["weight_error"] >= 0 and "recovered" in row for row in report["member_fidelity"])
        parents = c.get("/api/v1/generators/team/shift-gen/versions/1/lineage").json()["parents"]
        assert sorted((e["version"], e["object"], e["relation"]) for e in parents) == [
            (f"team/shift-{k}@1", "adapter", "trained_from") for k in (1, 2, 3)]
        assert "team/shift-gen" in {f"{g['namespace']}/{g['name']}" for g in c.get("/api/v1/generators").json()["items"]}


def test_generate_is_seeded_loads_as_peft_and_links_to_generator_and_examples(family, tmp_path):
    from peft import PeftModel

    from lora.bases import tiny_model

    hub, _ = family
    body = {"kind": "generate", "inputs": ["team/shift-gen@1"], "output": "team/shift-4",
            "params": {"examples": shift(4), "seed": 7}}
    with hub.client() as c:
        first, again = run_job(c, body), run_job(c, body)
        assert first["state"] == again["state"] == "succeeded", first
        assert file_sha(c, "adapters", "team/shift-4@1", "adapter_model.safetensors") == \
            file_sha(c, "adapters", "team/shift-4@2", "adapter_model.safetensors")
        parents = c.get("/api/v1/adapters/team/shift-4/versions/1/lineage").json()["parents"]
        assert [(e["version"], e["object"], e["relation"]) for e in parents] == [
            ("team/shift-gen@1", "generator", "generated_by")]  # a builtin task is no registry object
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (tmp_path / name).write_bytes(c.get(f"/api/v1/adapters/team/shift-4/versions/1/files/{name}").content)
    model, _ = tiny_model("llama", seed=0)
    assert isinstance(PeftModel.from_pretrained(model, tmp_path), PeftModel)

    with hub.client() as c:
        picked = run_job(c, {**body, "params": {"examples": shift(4), "samples": 3, "select": "likelihood"}})
        assert picked["state"] == "succeeded", picked
        report = c.get(f"/api/v1/adapters/{picked['results'][0].replace('@', '/versions/')}").json()["metrics"]
        scores = report["generate"]["scores"]
        assert len(scores) == 3 and report["generate"]["chosen"] == scores.index(max(scores))


def test_text_conditioned_generator_from_descriptions(family):
    hub, _ = family
    with hub.client() as c:
        gen = run_job(c, {"kind": "train_generator", "inputs": ["team/shift-1@1", "team/shift-2@1"],
                          "output": "team/shift-text", "params": {**FAST, "condition": "text", "descriptions": [
                              "shift every letter forward by 1", "shift every letter forward by 2"]}})
        assert gen["state"] == "succeeded", gen
        out = run_job(c, {"kind": "generate", "inputs": ["team/shift-text@1"], "output": "team/shift-5",
                          "params": {"description": "shift every letter forward by 5"}})
        assert out["state"] == "succeeded", out
        missing = c.post("/api/v1/jobs", json={"kind": "generate", "inputs": ["team/shift-text@1"],
                                               "output": "team/x", "params": {"examples": shift(5)}})
        assert missing.status_code == 422 and "conditioned on text" in missing.json()["detail"]


def test_inputs_that_are_not_one_family_are_422_naming_them(family):
    hub, _ = family
    with hub.client() as c:
        odd = run_job(c, {"kind": "train", "output": "team/odd", "params": {
            "base": TINY_BASE, "task": shift(1), "steps": 2, "rank": 4, "checkpoint_every": 1}})
        flat = run_job(c, {"kind": "train", "output": "team/flat", "params": {
            "base": TINY_BASE, "task": shift(1), "steps": 2, "rank": 2}})
        assert odd["state"] == flat["state"] == "succeeded"
        before = hub.scalar("SELECT count(*) FROM jobs")
        r = c.post("/api/v1/jobs", json={"kind": "train_generator", "output": "team/bad", "params": FAST,
                                         "inputs": ["team/shift-1@1", "team/shift-2@1", "team/odd@1"]})
        assert r.status_code == 422 and "team/odd@1" in r.json()["detail"] and "rank" in r.json()["detail"]
        r = c.post("/api/v1/jobs", json={"kind": "train_generator", "output": "team/bad", "params": FAST,
                                         "inputs": ["team/shift-1@1", "team/flat@1"]})
        assert r.status_code == 422 and "no training trajectory" in r.json()["detail"] and "team/flat@1" in r.text
        assert hub.scalar("SELECT count(*) FROM jobs") == before


def test_a_result_that_does_not_fit_its_base_is_refused_like_an_upload():
    from lora.bases import module_shapes, tiny_model
    from tests.api.conftest import make_adapter_dir
    from workers.runner import check_result_adapter

    import tempfile
    from pathlib import Path

    folder = make_adapter_dir(Path(tempfile.mkdtemp()) / "a")
    config, weights = (folder / "adapter_config.json").read_bytes(), (folder / "adapter_model.safetensors").read_bytes()
    model, _ = tiny_model("llama", seed=0)
    check_result_adapter(config, weights, {m: list(s) for m, s in module_shapes(model).items()})  # fits
    wider = {m: [s[0] * 2, s[1]] for m, s in module_shapes(model).items()}
    with pytest.raises(ValueError, match="does not fit its base"):
        check_result_adapter(config, weights, wider)


def test_cli_train_generator_and_generate(family, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    hub, _ = family
    monkeypatch.setenv("ADAPTARIUM_URL", hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", hub.admin_token)
    cli = CliRunner()
    args = ["train-generator", "team/shift-1@1", "team/shift-3@1", "--into", "team/cli-gen", "--condition", "text",
            "--description", "shift by one", "--description", "shift by three"]
    for key, value in FAST.items():
        args += ["-p", f"{key}={value}"]
    r = cli.invoke(app, args)
    assert r.exit_code == 0 and "team/cli-gen@1" in r.output, r.output
    r = cli.invoke(app, ["generate", "team/cli-gen@1", "--description", "shift by two", "--into", "team/cli-shift"])
    assert r.exit_code == 0 and "team/cli-shift@1" in r.output, r.output
