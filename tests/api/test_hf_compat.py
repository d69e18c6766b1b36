"""The real `huggingface_hub` + `peft` clients load adapters from the hub with HF_ENDPOINT pointed at it.

The client runs in a subprocess because huggingface_hub reads HF_ENDPOINT once, at import time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch

from tests.api.conftest import make_adapter_dir, upload

CLIENT = textwrap.dedent("""
    import json, sys, torch
    from huggingface_hub import model_info
    from peft import PeftModel
    from lora.bases import tiny_model

    repo, revision, out = sys.argv[1], sys.argv[2], sys.argv[3]
    model, _ = tiny_model("llama", seed=0)
    peft_model = PeftModel.from_pretrained(model, repo, revision=revision)
    with torch.no_grad():
        logits = peft_model(torch.arange(1, 17).unsqueeze(0)).logits
    torch.save(logits, out)
    info = model_info(repo, revision=revision)
    print(json.dumps({"sha": info.sha, "files": sorted(s.rfilename for s in info.siblings)}))
""")


def _local_logits(adapter_dir):
    from peft import PeftModel

    from lora.bases import tiny_model

    model, _ = tiny_model("llama", seed=0)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    with torch.no_grad():
        return peft_model(torch.arange(1, 17).unsqueeze(0)).logits


def _load_through_hub(live, tmp_path, repo: str, revision: str, token: str | None = None):
    out = tmp_path / f"logits-{revision}.pt"
    env = {**os.environ, "HF_ENDPOINT": live.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    if token:
        env["HF_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-c", CLIENT, repo, revision, str(out)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=os.getcwd())
    return proc, (torch.load(out) if proc.returncode == 0 else None)


def test_peft_from_pretrained_through_hf_endpoint_gives_identical_outputs(registered, tmp_path):
    v1_dir = make_adapter_dir(tmp_path / "v1", seed=1)
    v2_dir = make_adapter_dir(tmp_path / "v2", seed=2)
    with registered.client() as c:
        upload(c, "team", "hf-demo", v1_dir, tag="stable")
        upload(c, "team", "hf-demo", v2_dir)

    expected_v1, expected_v2 = _local_logits(v1_dir), _local_logits(v2_dir)
    assert not torch.equal(expected_v1, expected_v2)
    for revision, expected in [("main", expected_v2), ("v1", expected_v1), ("stable", expected_v1)]:
        proc, got = _load_through_hub(registered, tmp_path, "team/hf-demo", revision)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert torch.equal(got, expected), revision
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        assert info["files"] == ["adapter_config.json", "adapter_model.safetensors"]
        assert len(info["sha"]) == 40


def test_hf_resolve_headers_and_errors(registered, tmp_path):
    with registered.client() as c:
        upload(c, "team", "hdr", make_adapter_dir(tmp_path / "a"))
        head = c.head("/team/hdr/resolve/main/adapter_model.safetensors")
        assert head.status_code == 200
        assert len(head.headers["x-repo-commit"]) == 40 and head.headers["etag"].strip('"')
        assert int(head.headers["content-length"]) == (tmp_path / "a" / "adapter_model.safetensors").stat().st_size
        commit = head.headers["x-repo-commit"]
        assert c.get(f"/team/hdr/resolve/{commit}/adapter_config.json").status_code == 200
        assert c.get("/team/hdr/resolve/main/nope.bin").headers["x-error-code"] == "EntryNotFound"
        assert c.get("/team/hdr/resolve/v9/adapter_config.json").headers["x-error-code"] == "RevisionNotFound"
        assert c.get("/team/none/resolve/main/adapter_config.json").headers["x-error-code"] == "RepoNotFound"


def test_private_adapter_loads_with_hf_token(registered, tmp_path):
    with registered.client() as c:
        c.post("/api/v1/namespaces", json={"name": "vault", "private": True})
        upload(c, "vault", "p", make_adapter_dir(tmp_path / "p", seed=5))
    denied, _ = _load_through_hub(registered, tmp_path, "vault/p", "main")
    assert denied.returncode != 0
    proc, got = _load_through_hub(registered, tmp_path, "vault/p", "main", token=registered.token("vault", "read"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.equal(got, _local_logits(tmp_path / "p"))


HF_CALLS = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import huggingface_hub as hf

    repo, revision, repo_type, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    said = {}
    try:
        folder = hf.snapshot_download(repo, revision=revision, repo_type=repo_type, local_dir=out)
        said["snapshot"] = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                                  if p.is_file() and ".cache" not in p.parts)
        said["files"] = hf.list_repo_files(repo, revision=revision, repo_type=repo_type)
        first = said["files"][0]
        said["one"] = Path(hf.hf_hub_download(repo, first, revision=revision, repo_type=repo_type)).read_bytes().hex()
        api = hf.HfApi()
        info = (api.model_info if repo_type == "model" else api.dataset_info)(repo, revision=revision,
                                                                             files_metadata=True)
        said["info"] = {"id": info.id, "sha": info.sha, "private": info.private,
                        "siblings": {s.rfilename: [s.size, s.lfs.sha256 if s.lfs else None] for s in info.siblings}}
    except Exception as exc:
        said["error"] = type(exc).__name__
    print(json.dumps(said))
""")


def _hf_calls(live, tmp_path, repo: str, revision: str, repo_type: str = "model", token: str | None = None) -> dict:
    env = {**os.environ, "HF_ENDPOINT": live.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    out = tmp_path / f"snap-{repo.replace('/', '-')}-{revision}-{token is not None}"
    proc = subprocess.run([sys.executable, "-c", HF_CALLS, repo, revision, repo_type, str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"dir": str(out)}


def test_snapshot_download_list_files_hf_hub_download_and_model_info_match_adaptarium_pull(registered, tmp_path):
    from hub.client import HubClient

    adapter_dir = make_adapter_dir(tmp_path / "a", seed=3)
    (adapter_dir / "README.md").write_text("# a card\n")
    with registered.client() as c:
        assert upload(c, "team", "snap", adapter_dir, tag="prod").status_code == 201
    said = _hf_calls(registered, tmp_path, "team/snap", "prod")
    names = ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert said["snapshot"] == names and sorted(said["files"]) == names
    with HubClient(registered.url, registered.admin_token) as client:
        version = client.pull("team", "snap", "prod", tmp_path / "pulled")
    for name in names:  # file for file what `adaptarium pull` writes
        assert (tmp_path / "pulled" / name).read_bytes() == (tmp_path / "snap-team-snap-prod-False" / name).read_bytes()
    assert bytes.fromhex(said["one"]) == (adapter_dir / said["files"][0]).read_bytes()
    assert said["info"]["id"] == "team/snap" and said["info"]["private"] is False and len(said["info"]["sha"]) == 40
    assert said["info"]["siblings"] == {f["name"]: [f["size"], f["sha256"]] for f in version["files"]}


def test_a_dataset_snapshot_downloads_with_repo_type_dataset(registered, tmp_path):
    data = b'{"prompt": "a", "completion": "b"}\n'
    with registered.client() as c:
        r = c.post("/api/v1/datasets/team/rows/versions", files={"data.jsonl": ("data.jsonl", data)})
        assert r.status_code == 201, r.text
    said = _hf_calls(registered, tmp_path, "team/rows", "main", repo_type="dataset")
    assert said["snapshot"] == ["data.jsonl"] and bytes.fromhex(said["one"]) == data


def test_hf_clients_see_a_private_repo_as_the_hub_shows_it(registered, tmp_path):
    with registered.client() as c:
        c.post("/api/v1/namespaces", json={"name": "vault", "private": True})
        upload(c, "vault", "snap", make_adapter_dir(tmp_path / "p", seed=4))
    assert _hf_calls(registered, tmp_path, "vault/snap", "main")["error"] == "RepositoryNotFoundError"
    other = registered.token("elsewhere", "read")
    assert _hf_calls(registered, tmp_path, "vault/snap", "main", token=other)["error"] == "RepositoryNotFoundError"
    said = _hf_calls(registered, tmp_path, "vault/snap", "main", token=registered.token("vault", "read"))
    assert said["snapshot"] == ["adapter_config.json", "adapter_model.safetensors"] and said["info"]["private"]
    assert _hf_calls(registered, tmp_path, "vault/snap", "v7", token=registered.token("vault", "read"))["error"] == (
        "RevisionNotFoundError")


def test_the_tree_lists_folders_once_and_descends_only_when_recursive():
    from hub.api.hf import tree_entries

    files = [{"name": n, "size": 1, "sha256": "0" * 64} for n in
             ("adapter_config.json", "checkpoints/step-5/adapter_config.json", "checkpoints/step-5/w.bin", "o3/d.bin")]
    top = tree_entries(files, "", recursive=False)
    assert [(e["type"], e["path"]) for e in top] == [("file", "adapter_config.json"), ("directory", "checkpoints"),
                                                     ("directory", "o3")]
    deep = [e["path"] for e in tree_entries(files, "", recursive=True) if e["type"] == "file"]
    assert deep == [f["name"] for f in files]
    assert [e["path"] for e in tree_entries(files, "checkpoints", recursive=False)] == ["checkpoints/step-5"]
    assert tree_entries(files, "nothing", recursive=True) is None
