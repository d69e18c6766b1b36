"""A real hub for API tests: uvicorn serving `create_app` on a loopback port, over both storage stacks.

`hub` is parametrized: SQLite + local blob directory (the `adaptarium up` default) and PostgreSQL + S3 (a private
database on 127.0.0.1:5432 and a bucket on the moto server). Tests talk HTTP to it with httpx, like any client.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub import auth
from hub.api.app import create_app
from hub.migrate import upgrade
from hub.settings import Settings
from tests.conftest import free_port

TINY_BASE = "tiny-llama"


@dataclass
class LiveHub:
    url: str
    admin_token: str
    settings: Settings
    app: object

    def client(self, token: str | None = "admin", **kwargs) -> httpx.Client:
        token = self.admin_token if token == "admin" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def token(self, namespace: str | None, *scopes: str) -> str:
        with self.app.state.session_factory() as session:
            plaintext = auth.create_token(session, namespace, set(scopes))
            session.commit()
        return plaintext

    def scalar(self, sql: str):
        from sqlalchemy import text

        with self.app.state.engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()


def serve(app, port: int):
    """Run uvicorn in a daemon thread; returns a stop() function."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(timeout=10)

    return stop


def start_hub(tmp_path: Path, database_url: str | None = None, storage_url: str | None = None, **overrides):
    env = {"ADAPTARIUM_DATA_DIR": str(tmp_path / "data"),  # S3 keys come from the environment (s3_storage_url)
           **{k: v for k, v in os.environ.items() if k.startswith("ADAPTARIUM_S3_")}}
    if database_url:
        env["ADAPTARIUM_DATABASE_URL"] = database_url
    if storage_url:
        env["ADAPTARIUM_STORAGE_URL"] = storage_url
    env.update({k: str(v) for k, v in overrides.items()})
    settings = Settings.from_env(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    app = create_app(settings)
    port = free_port()
    stop = serve(app, port)
    with app.state.session_factory() as session:
        admin = auth.create_token(session, None, {"read", "write", "admin"})
        session.commit()
    return LiveHub(f"http://127.0.0.1:{port}", admin, settings, app), stop


@pytest.fixture(params=["sqlite-local", pytest.param("postgres-s3", marks=pytest.mark.postgres)])
def hub(request, tmp_path):
    if request.param == "sqlite-local":
        live, stop = start_hub(tmp_path)
    else:
        db_url = request.getfixturevalue("private_pg_db")
        live, stop = start_hub(tmp_path, db_url, request.getfixturevalue("s3_storage_url"))
    yield live
    stop()
    live.app.state.engine.dispose()


@pytest.fixture(scope="session")
def tiny_base():
    """The tiny llama base (model, tokenizer) and its registration body."""
    from lora.bases import architecture, module_shapes, tiny_model

    model, tok = tiny_model("llama", seed=0)
    body = {"name": TINY_BASE, "architecture": architecture(model), "aliases": ["tiny:llama?seed=0"],
            "source": "tiny:llama?seed=0", "module_shapes": {m: list(s) for m, s in module_shapes(model).items()}}
    return model, tok, body


def make_adapter_dir(path: Path, seed: int = 0, rank: int = 4, targets=("q_proj", "v_proj")) -> Path:
    """A real PEFT LoRA directory for the tiny llama base, with non-zero B so it changes the model's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lora.adapter import Adapter
    from lora.bases import tiny_model

    model, _ = tiny_model("llama", seed=0)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets)))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    adapter = Adapter.from_peft_model(peft_model)
    adapter.config["base_model_name_or_path"] = TINY_BASE
    adapter.save(path)
    return path


@pytest.fixture
def registered(hub, tiny_base):
    """The hub with the tiny base registered."""
    with hub.client() as c:
        r = c.post("/api/v1/bases", json=tiny_base[2])
        assert r.status_code == 201, r.text
    return hub


def upload(client: httpx.Client, ns: str, name: str, adapter_dir: Path, **fields) -> httpx.Response:
    files = {f.name: (f.name, f.read_bytes()) for f in sorted(adapter_dir.iterdir()) if f.is_file()}
    return client.post(f"/api/v1/adapters/{ns}/{name}/versions", files=files, data=fields)
