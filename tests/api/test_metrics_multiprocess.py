"""/metrics under several API processes: with PROMETHEUS_MULTIPROC_DIR shared, any process's scrape counts every
process's requests (docker-compose runs the API as four uvicorn workers)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from hub.migrate import upgrade
from hub.settings import Settings
from tests.conftest import ROOT, free_port, stop_process


def _start_api(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory",
                             "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.2)


def _healthz_count(metrics_text: str) -> float:
    return sum(float(line.split()[-1]) for line in metrics_text.splitlines()
               if line.startswith("adaptarium_http_requests_total") and 'route="/healthz"' in line)


def test_a_scrape_of_one_process_counts_the_requests_of_all(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTARIUM_")}
    env.update({"ADAPTARIUM_DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    upgrade(Settings.from_env(env).database_url)
    (a, url_a), (b, url_b) = _start_api(env), _start_api(env)
    try:
        base_a = _healthz_count(httpx.get(f"{url_a}/metrics").text)
        for _ in range(5):
            assert httpx.get(f"{url_a}/healthz").status_code == 200
        for _ in range(7):
            assert httpx.get(f"{url_b}/healthz").status_code == 200
        assert _healthz_count(httpx.get(f"{url_a}/metrics").text) == base_a + 12
        assert _healthz_count(httpx.get(f"{url_b}/metrics").text) == base_a + 12
    finally:
        stop_process(a)
        stop_process(b)
