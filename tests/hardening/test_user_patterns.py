"""Issue 10, item 5: the regular expressions in an uploaded config (target_modules as a string, exclude_modules,
rank_pattern and alpha_pattern keys) never run unbounded: a catastrophic pattern is a quick 422 and the API keeps
answering meanwhile; an invalid one is a 422 too, not a 500."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.hardening.conftest import lora_files, register_base, upload

SLOW_MODULE = "a" * 40 + "b"  # (a|aa)+ against it backtracks ~fib(40) times in Python's re: hours


@pytest.mark.parametrize("config", [
    {"target_modules": "("},
    {"target_modules": "[a-"},
    {"rank_pattern": {"(": 2}},
    {"alpha_pattern": {"q_proj)": 4}},
    {"exclude_modules": "(?P<x"},
    {"exclude_modules": 5},
])
def test_an_invalid_pattern_is_a_422_naming_the_field(live, config):
    with live.client() as c:
        r = upload(c, "pat", "bad", lora_files(config))
    assert r.status_code == 422, r.text
    field = next(iter(config))
    assert field in r.json()["detail"]


def test_a_catastrophic_target_pattern_is_refused_quickly_while_the_api_keeps_answering(live):
    register_base(live, "slow-base", {SLOW_MODULE: [8, 8]})
    files = lora_files({"target_modules": "(a|aa)+", "base_model_name_or_path": "slow-base"}, modules=[SLOW_MODULE])
    health: list[float] = []
    done = threading.Event()

    def poll():
        with httpx.Client(base_url=live.url, timeout=30) as c:
            while not done.is_set():
                start = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                health.append(time.perf_counter() - start)
                time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with live.client() as c:
            start = time.perf_counter()
            r = upload(c, "pat", "slow", files)
            took = time.perf_counter() - start
    finally:
        done.set()
        poller.join()
    assert r.status_code == 422, r.text
    assert "too long" in r.json()["detail"]
    assert took < 3
    assert health and max(health) < 1.0


def test_patterns_still_select_modules_like_peft_does(live):
    with live.client() as c:
        # a lookahead (common for multimodal models) works, rank_pattern gives one module its own rank
        ok = upload(c, "pat", "look", lora_files({"target_modules": r".*\.(?!.*vision).*(q_proj|v_proj)"}))
        assert ok.status_code == 201, ok.text
        files = lora_files({"target_modules": ["q_proj", "v_proj"], "exclude_modules": r".*layers\.1\..*"})
        r = upload(c, "pat", "excluded", files)
        assert r.status_code == 422 and "not covered" in r.json()["detail"], r.text
