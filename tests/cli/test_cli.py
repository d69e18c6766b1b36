"""The `adaptarium` CLI against a real hub: registry commands over HTTP, and `up` as a user would run it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.api.conftest import make_adapter_dir
from tests.cli.conftest import invoke
from tests.conftest import free_port, wait_for_health


def test_bases_push_ls_show_pull_round_trip(cli_env, tmp_path):
    r = invoke("bases", "add", "tiny-llama", "--tiny", "llama")
    assert r.exit_code == 0, r.output
    assert "registered base tiny-llama" in r.output
    adapter_dir = make_adapter_dir(tmp_path / "a")
    r = invoke("push", adapter_dir, "team/demo", "--tag", "prod")
    assert r.exit_code == 0, r.output
    assert "team/demo@1" in r.output
    r = invoke("ls")
    assert r.exit_code == 0 and "team/demo" in r.output and "prod→1" in r.output
    r = invoke("show", "team/demo@prod")
    assert r.exit_code == 0 and "adapter_model.safetensors" in r.output
    r = invoke("pull", "team/demo@1", tmp_path / "out")
    assert r.exit_code == 0, r.output
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (tmp_path / "out" / name).read_bytes() == (adapter_dir / name).read_bytes()


def test_push_to_an_unknown_base_prints_the_server_reason_and_exits_1(cli_env, tmp_path):
    r = invoke("push", make_adapter_dir(tmp_path / "a"), "team/demo")
    assert r.exit_code == 1
    assert "unknown base 'tiny-llama'" in r.output


def test_pull_of_a_missing_version_fails_cleanly(cli_env, tmp_path):
    r = invoke("pull", "team/none@3", tmp_path / "out")
    assert r.exit_code == 1 and "no adapter, dataset or generator team/none" in r.output
    assert not (tmp_path / "out").exists()


def test_token_create_prints_a_token_that_the_api_accepts(cli_env):
    r = invoke("token", "create", "--namespace", "team", "--scope", "write")
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    with httpx.Client(base_url=cli_env.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/adapters").status_code == 200
        assert c.post("/api/v1/namespaces", json={"name": "x"}).status_code == 403  # write, not admin
    assert invoke("token", "create", "--scope", "root").exit_code == 1


def test_a_revoked_token_is_refused(cli_env):
    token = invoke("token", "create", "--scope", "read").output.strip().splitlines()[-1]
    with httpx.Client(base_url=cli_env.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/adapters").status_code == 200
        r = invoke("token", "revoke", token)
        assert r.exit_code == 0, r.output
        assert c.get("/api/v1/adapters").status_code == 401
    assert invoke("token", "revoke", token + "x").exit_code == 1


def test_up_starts_the_hub_and_a_worker_on_the_embedded_defaults(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTARIUM_")}
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "up", "--data-dir", str(data_dir), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, proc, timeout=60)
        token_file = data_dir / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0.2}}).json()
            deadline = time.monotonic() + 90
            while c.get(f"/api/v1/jobs/{job['id']}").json()["state"] != "succeeded":
                assert time.monotonic() < deadline, "the embedded worker did not run the job"
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output and str(token_file) in output and "worker ready" in output
    # quiet by default: no access log, Celery banner or library warnings on the terminal; all of it in the log file
    assert token not in output and "GET /" not in output and "celery@" not in output.lower()
    assert "Warning" not in output, output
    assert len(output.splitlines()) <= 8, output
    log = (data_dir / "adaptarium.log").read_text()
    assert "GET /healthz" in log and "POST /api/v1/jobs" in log and "ready." in log



def test_bases_add_from_a_local_hf_folder_records_its_modules(cli_env, tmp_path):
    from lora.bases import module_shapes, tiny_model

    model, tok = tiny_model("qwen2", seed=3)
    model.save_pretrained(tmp_path / "qwen")
    tok.save_pretrained(tmp_path / "qwen")
    r = invoke("bases", "add", "tiny-qwen", "--from-dir", tmp_path / "qwen", "--alias", "org/tiny-qwen")
    assert r.exit_code == 0, r.output
    base = httpx.get(f"{cli_env.url}/api/v1/bases/org/tiny-qwen").json()
    assert base["name"] == "tiny-qwen" and base["architecture"] == "qwen2"
    assert base["module_shapes"] == {m: list(s) for m, s in module_shapes(model).items()}
    assert invoke("bases", "add", "nothing", "--from-dir", tmp_path / "missing").exit_code == 1


def test_the_api_process_does_not_import_torch():
    code = "import sys, hub.api.app, hub.cli; print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
