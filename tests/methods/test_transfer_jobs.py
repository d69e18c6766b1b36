"""Trans-LoRA through the job API with a real worker: a kit for a tiny-llama adapter, then a transfer to a tiny
gemma3 base, seeded and bit-identical twice; lineage, metrics, events; and the 422s that must queue nothing."""
from __future__ import annotations

import pytest

from tests.api.conftest import TINY_BASE
from tests.methods.conftest import events, file_sha, run_job

REDIS_URL = "redis://127.0.0.1:6379/12"
TARGET = {"name": "tiny-gemma3", "source": "tiny:gemma3?seed=1"}
TASK = "builtin:word_sorting?n=24&test=8&seed=0"
KIT = {"task": TASK, "seeds": 5, "steps": 20, "lr": 1e-2, "max_new_tokens": 24, "rank": 4}
TRANSFER = {"target_base": "tiny-gemma3", "synthetic_size": 6, "max_new_tokens": 16, "label_max_new_tokens": 12,
            "steps": 6, "rank": 4, "lr": 1e-2, "measure_mmd": False}


@pytest.fixture(scope="module")
def world(method_hub):
    """Both bases registered, a source adapter trained on the task, and its kit."""
    from lora.bases import architecture, load_base, module_shapes

    model, _ = load_base(TARGET["source"])
    with method_hub.client() as c:
        assert c.post("/api/v1/bases", json={**TARGET, "architecture": architecture(model),
                                             "module_shapes": {m: list(s) for m, s in module_shapes(model).items()}}
                      ).status_code == 201
        trained = run_job(c, {"kind": "train", "output": "team/sorter", "params": {
            "base": TINY_BASE, "task": TASK, "steps": 20, "lr": 3e-2, "rank": 4}})
        assert trained["state"] == "succeeded", trained
        kit = run_job(c, {"kind": "transfer_kit", "inputs": ["team/sorter@1"], "params": KIT,
                          "output": "team/sorter-kit"})
        assert kit["state"] == "succeeded", kit
    return method_hub, kit


def test_kit_is_a_discriminator_adapter_and_a_seed_dataset_linked_to_the_source(world):
    hub, kit = world
    assert kit["results"] == ["team/sorter-kit@1", "team/sorter-kit@1"]  # an adapter and a dataset of that name
    with hub.client() as c:
        disc = c.get("/api/v1/adapters/team/sorter-kit/versions/1").json()
        seeds = c.get("/api/v1/datasets/team/sorter-kit/versions/1").json()
        assert disc["base"] == TINY_BASE and disc["peft_config"]["r"] == 4
        assert {"adapter_config.json", "adapter_model.safetensors", "kit/kit.json", "kit/seeds.jsonl"} == \
            {f["name"] for f in disc["files"]}
        assert 0 <= disc["metrics"]["kit"]["heldout_accuracy"] <= 1 and disc["metrics"]["kit"]["seeds"] == 5
        assert seeds["metrics"]["records"] == 5
        children = c.get("/api/v1/adapters/team/sorter/versions/1/lineage").json()["children"]
        assert {(e["version"], e["object"], e["relation"]) for e in children} == {
            ("team/sorter-kit@1", "adapter", "discriminates_for"), ("team/sorter-kit@1", "dataset", "seeds_for")}


def test_transfer_finds_the_kit_through_lineage_and_is_seeded(world):
    hub, _ = world
    with hub.client() as c:
        first = run_job(c, {"kind": "transfer", "inputs": ["team/sorter@1"], "output": "team/sorter-gemma",
                            "params": {**TRANSFER, "evaluate": "builtin:word_sorting?n=8&test=4&seed=1"}})
        assert first["state"] == "succeeded", first
        assert first["params"]["kit"] == "team/sorter-kit@1"  # found through lineage, pinned on the job
        again = run_job(c, {"kind": "transfer", "inputs": ["team/sorter@1"], "output": "team/sorter-gemma",
                            "params": {**TRANSFER, "evaluate": "builtin:word_sorting?n=8&test=4&seed=1"}})
        assert first["results"] == ["team/sorter-gemma@1"] and again["results"] == ["team/sorter-gemma@2"]
        assert file_sha(c, "adapters", "team/sorter-gemma@1", "adapter_model.safetensors") == \
            file_sha(c, "adapters", "team/sorter-gemma@2", "adapter_model.safetensors")
        version = c.get("/api/v1/adapters/team/sorter-gemma/versions/1").json()
        assert version["base"] == "tiny-gemma3"
        report = version["metrics"]["transfer"]
        assert report["synthetic_size"] == 6 and 0 <= report["acceptance_rate"] <= 1
        assert report["filter"] == "calibrated" and report["kept_by_threshold"] + report["kept_by_rank"] == 6
        assert report["candidates_judged"] >= 6 and set(report["seconds"]) >= {"teacher labelling", "distilling"}
        assert "eval/word_sorting/exact_match" in version["metrics"]
        assert "transfer/synthetic.jsonl" in {f["name"] for f in version["files"]}
        parents = c.get("/api/v1/adapters/team/sorter-gemma/versions/1/lineage").json()["parents"]
        assert {(e["version"], e["relation"]) for e in parents} == {
            ("team/sorter@1", "transferred_from"), ("team/sorter-kit@1", "filtered_by")}
        stages = {e["data"]["stage"] for e in events(c, first["id"]) if e["type"] == "progress"}
        assert {"generating candidates", "filtering", "teacher labelling", "distilling"} <= stages
        names = {e["data"]["name"] for e in events(c, first["id"]) if e["type"] == "metric"}
        assert {"acceptance_rate", "loss"} <= names


def test_the_fixed_rules_attempts_cap_fails_the_job_naming_the_acceptance_rate(world):
    hub, _ = world
    with hub.client() as c:
        job = run_job(c, {"kind": "transfer", "inputs": ["team/sorter@1"], "output": "team/capped",
                          "params": {**TRANSFER, "filter": "fixed", "synthetic_size": 50, "max_attempts": 20,
                                     "give_up_after": 400}})
    assert job["state"] == "failed" and "acceptance rate" in job["error"]["message"]


def test_bad_transfers_are_422_with_nothing_queued(world, tmp_path):
    from tests.api.conftest import make_adapter_dir, upload

    hub, _ = world
    with hub.client() as c:
        assert upload(c, "team", "no-kit", make_adapter_dir(tmp_path / "a")).status_code == 201
        before = hub.scalar("SELECT count(*) FROM jobs")
        cases = {
            "unknown base 'nowhere'": {"inputs": ["team/sorter@1"], "params": {**TRANSFER, "target_base": "nowhere"}},
            "has no transfer kit": {"inputs": ["team/no-kit@1"], "params": TRANSFER},
            "is not a transfer kit": {"inputs": ["team/sorter@1"], "params": {**TRANSFER, "kit": "team/no-kit@1"}},
            "synthetic_size": {"inputs": ["team/sorter@1"], "params": {**TRANSFER, "synthetic_size": 0}},
        }
        for fragment, body in cases.items():
            r = c.post("/api/v1/jobs", json={"kind": "transfer", "output": "team/x", **body})
            assert r.status_code == 422 and fragment in r.json()["detail"], (fragment, r.text)
        assert hub.scalar("SELECT count(*) FROM jobs") == before


def test_a_kit_on_another_base_is_refused(world):
    """The kit's discriminator must run on the source base: a transferred adapter's kit cannot serve the source."""
    hub, _ = world
    with hub.client() as c:
        r = c.post("/api/v1/jobs", json={"kind": "transfer_kit", "inputs": ["team/sorter-gemma@1"],
                                         "params": {**KIT, "steps": 2}, "output": "team/gemma-kit"})
        assert r.status_code == 202, r.text
        from tests.methods.conftest import TERMINAL
        import time
        deadline = time.monotonic() + 120
        while c.get(f"/api/v1/jobs/{r.json()['id']}").json()["state"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.2)
        bad = c.post("/api/v1/jobs", json={"kind": "transfer", "inputs": ["team/sorter@1"], "output": "team/x",
                                           "params": {**TRANSFER, "kit": "team/gemma-kit@1"}})
    assert bad.status_code == 422 and "discriminator is on base 'tiny-gemma3'" in bad.json()["detail"]


def test_train_with_transfer_kit_publishes_the_kit_beside_the_adapter(world):
    hub, _ = world
    with hub.client() as c:
        job = run_job(c, {"kind": "train", "output": "team/with-kit", "params": {
            "base": TINY_BASE, "task": TASK, "steps": 4, "rank": 2, "transfer_kit": True}})
        assert job["state"] == "succeeded", job
        assert job["results"] == ["team/with-kit@1", "team/with-kit-kit@1", "team/with-kit-kit@1"]
        children = c.get("/api/v1/adapters/team/with-kit/versions/1/lineage").json()["children"]
        assert {(e["version"], e["object"], e["relation"]) for e in children} == {
            ("team/with-kit-kit@1", "adapter", "discriminates_for"), ("team/with-kit-kit@1", "dataset", "seeds_for")}
        found = c.post("/api/v1/jobs", json={"kind": "transfer", "inputs": ["team/with-kit@1"], "output": "team/y",
                                             "params": {**TRANSFER, "steps": 1}}).json()
        assert found["params"]["kit"] == "team/with-kit-kit@1"
        c.post(f"/api/v1/jobs/{found['id']}/cancel")


def test_cli_transfer_kit_and_transfer(world, monkeypatch):
    from typer.testing import CliRunner

    from hub.cli import app

    hub, _ = world
    monkeypatch.setenv("ADAPTARIUM_URL", hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", hub.admin_token)
    cli = CliRunner()
    r = cli.invoke(app, ["transfer-kit", "team/sorter@1", "--task", TASK, "--into", "team/cli-kit", "--seeds", "4",
                         "-p", "steps=4", "-p", "max_new_tokens=16", "-p", "rank=2"])
    assert r.exit_code == 0 and "team/cli-kit@1" in r.output, r.output
    args = ["transfer", "team/sorter@1", "--to", "tiny-gemma3", "--into", "team/cli-gemma", "--kit", "team/cli-kit@1"]
    for key in ("synthetic_size", "max_new_tokens", "label_max_new_tokens", "rank"):
        args += ["-p", f"{key}={TRANSFER[key]}"]
    r = cli.invoke(app, args + ["-p", "steps=2", "-p", "measure_mmd=false", "-p", "data=unfiltered"])
    assert r.exit_code == 0 and "team/cli-gemma@1" in r.output, r.output


def cli_env(hub, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("ADAPTARIUM_URL", hub.url)
    monkeypatch.setenv("ADAPTARIUM_TOKEN", hub.admin_token)
    return CliRunner()


def test_the_readme_walkthrough_on_tiny_bases_succeeds_with_default_settings(world, monkeypatch):
    """train -> transfer-kit -> transfer --to another tiny base, no -p anywhere: the default filter is calibrated
    and tops the set up by rank, so it cannot fail the way the paper's fixed rule does on tiny bases."""
    from hub.cli import app

    hub, _ = world
    cli = cli_env(hub, monkeypatch)
    r = cli.invoke(app, ["train", "--task", TASK, "--base", TINY_BASE, "--into", "team/walk"])
    assert r.exit_code == 0 and "team/walk@1" in r.output, r.output
    r = cli.invoke(app, ["transfer-kit", "team/walk@1", "--task", TASK, "--into", "team/walk-kit"])
    assert r.exit_code == 0 and "team/walk-kit@1" in r.output, r.output
    assert "discriminator held-out balanced accuracy" in r.output
    r = cli.invoke(app, ["transfer", "team/walk@1", "--to", "tiny-gemma3", "--into", "team/walk-gemma"])
    assert r.exit_code == 0 and "team/walk-gemma@1" in r.output, r.output
    assert "filter calibrated: threshold" in r.output
    with hub.client() as c:
        report = c.get("/api/v1/adapters/team/walk-gemma/versions/1").json()["metrics"]["transfer"]
        kit = c.get("/api/v1/adapters/team/walk-kit/versions/1").json()["metrics"]["kit"]
    assert report["filter"] == "calibrated" and report["train_size"] == 24  # |D| of the task's train split
    assert report["threshold_source"].startswith("the 0.1-quantile of p_real over the kit's")
    assert len(kit["heldout_real_scores"]) == kit["heldout_real"] > 0 and kit["calibration"]


def test_a_kit_at_chance_warns_in_its_report_the_job_log_and_the_cli(world, monkeypatch):
    from hub.cli import app

    hub, _ = world
    cli = cli_env(hub, monkeypatch)
    # one step at a vanishing learning rate: a discriminator that has learnt nothing
    r = cli.invoke(app, ["transfer-kit", "team/sorter@1", "--task", TASK, "--into", "team/coin-kit",
                         "-p", "steps=1", "-p", "lr=1e-9", "-p", "max_new_tokens=16"])
    assert r.exit_code == 0, r.output
    assert "warning: discriminator at chance on held-out data" in r.output
    with hub.client() as c:
        kit = c.get("/api/v1/adapters/team/coin-kit/versions/1").json()["metrics"]["kit"]
        assert kit["warnings"] and kit["warnings"][0].startswith("discriminator at chance")
        job_id = c.get("/api/v1/jobs", params={"kind": "transfer_kit"}).json()["items"][0]["id"]
        logs = [e["data"]["message"] for e in events(c, job_id) if e["type"] == "log"]
    assert any(m.startswith("warning: discriminator at chance") for m in logs)
    args = ["transfer", "team/sorter@1", "--to", "tiny-gemma3", "--into", "team/coin-gemma", "--kit", "team/coin-kit@1"]
    for key in ("synthetic_size", "max_new_tokens", "label_max_new_tokens", "rank", "steps"):
        args += ["-p", f"{key}={TRANSFER[key]}"]
    r = cli.invoke(app, args + ["-p", "measure_mmd=false"])
    assert r.exit_code == 0 and "warning: kit team/coin-kit@1: discriminator at chance" in r.output, r.output
