"""The dashboard tests' shared world, started once for both browser test modules: a hub served by uvicorn
(PostgreSQL, local blobs), one real Celery worker on Redis db 6, a tiny base with one uploaded adapter, and a headless
Chromium (Debian's chromium + chromium-driver) at 1280 x 1000.
Screenshots go to $ADAPTARIUM_SCREENSHOT_DIR or the pytest tmp dir, never into the repository.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import free_port, start_worker, stop_process, wait_for_port
from tests.dashboard.driving import BASE, BASE_SOURCE

REDIS_URL = "redis://127.0.0.1:6379/6"  # the dashboard tests' own Redis db; flushed before use


# ---------- a real hub and a real worker ----------

@pytest.fixture(scope="session")
def hub(pg_url, tmp_path_factory):
    """A hub served by uvicorn in its own process on a loopback port; yields (url, admin token, env)."""
    from hub import auth
    from hub.db import make_engine, make_session_factory
    from hub.migrate import upgrade
    from hub.settings import Settings

    data_dir = tmp_path_factory.mktemp("hub")
    env = dict(os.environ, ADAPTARIUM_DATA_DIR=str(data_dir), ADAPTARIUM_DATABASE_URL=pg_url,
               ADAPTARIUM_STORAGE_URL=f"file://{data_dir / 'blobs'}", ADAPTARIUM_BROKER_URL=REDIS_URL,
               OMP_NUM_THREADS="1")
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        token = auth.create_token(session, None, {"read", "write", "admin"})
        session.commit()
    engine.dispose()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], env=env, cwd=Path(__file__).parents[2])
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", token, env
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def worker(hub):
    """One Celery worker process on both queues, consuming from Redis db 6."""
    _, _, env = hub
    redis.Redis.from_url(REDIS_URL).flushdb()
    proc = start_worker(env, "dashboard")
    yield proc
    stop_process(proc, timeout=20)


@pytest.fixture(scope="session")
def registered(hub, tmp_path_factory):
    """A tiny base registered through the API and one adapter uploaded to it; returns the uploaded bytes."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lora.bases import architecture, module_shapes, tiny_model

    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}
    model, _ = tiny_model("llama")
    res = httpx.post(f"{url}/api/v1/bases", headers=auth, json={
        "name": BASE, "architecture": architecture(model), "source": BASE_SOURCE,
        "module_shapes": {k: list(v) for k, v in module_shapes(model).items()}})
    assert res.status_code in (200, 201), res.text
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    files = {name: (out / name).read_bytes() for name in ("adapter_config.json", "adapter_model.safetensors")}
    res = httpx.post(f"{url}/api/v1/adapters/dash/uploaded/versions", headers=auth, data={"base": BASE},
                     files={k: (k, io.BytesIO(v)) for k, v in files.items()})
    assert res.status_code == 201, res.text
    return files


# ---------- the browser ----------

@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("ADAPTARIUM_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
