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
