"""docker-compose.yml cannot run here (no Docker engine), so pin what can break silently: it parses, every command
it runs exists in this package, every setting it passes is one the code reads, and the image copies real folders."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import typer
import yaml

from hub.cli import app

ROOT = Path(__file__).parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _cli_command_exists(words: list[str]) -> bool:
    command = typer.main.get_command(app)
    for word in words:
        if word.startswith("-"):
            break
        if word not in getattr(command, "commands", {}):  # typer's groups are not click.Group subclasses
            return False
        command = command.commands[word]
    return callable(getattr(command, "main", None))


def test_every_built_service_runs_a_real_command():
    services = _compose()["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    assert {"migrate", "api", "worker-gpu", "worker-cpu"} <= set(built)
    for name, service in built.items():
        command = service["command"]
        if command[0] == "adaptarium":
            assert _cli_command_exists(command[1:]), (name, command)
        else:
            assert command[0] == "uvicorn" and "--factory" in command, (name, command)
            module, _, attr = next(c for c in command if ":" in c).partition(":")
            assert callable(getattr(importlib.import_module(module), attr)), (name, command)


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _gpu_workers(services: dict) -> dict:
    return {name: s for name, s in services.items() if name.startswith("worker-gpu")}


def test_one_gpu_worker_per_gpu_each_reserving_its_own_device():
    services = _compose()["services"]
    gpu_workers = _gpu_workers(services)
    assert len(gpu_workers) >= 2  # the two-GPU pattern is spelled out, not left to the reader
    ids = []
    for name, service in gpu_workers.items():
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1 and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"], name
        assert "count" not in devices[0] and len(devices[0]["device_ids"]) == 1, name  # one GPU, named
        ids += devices[0]["device_ids"]
        # the container sees only its GPU, as cuda:0: the worker asks for "cuda" and refuses to start without one
        assert _flag(service["command"], "--device") == "cuda", name
        assert _flag(service["command"], "--queues") == "gpu", name
    assert len(set(ids)) == len(ids)
    extra = [name for name in gpu_workers if name != "worker-gpu"]
    assert all(services[name].get("profiles") for name in extra)  # a one-GPU host's plain `up` still starts
    assert "profiles" not in services["worker-gpu"]


def test_workers_cover_both_queues_and_the_cpu_worker_stays_on_cpu():
    services = _compose()["services"]
    queues = {_flag(services[w]["command"], "--queues") for w in ("worker-gpu", "worker-cpu")}
    assert queues == {"gpu", "cpu"}
    assert _flag(services["worker-cpu"]["command"], "--device") == "cpu"
    assert "deploy" not in services["worker-cpu"]


def test_each_role_builds_the_torch_it_needs_under_its_own_image_tag():
    services = _compose()["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    index = {name: s["build"]["args"]["TORCH_INDEX"] for name, s in built.items()}
    for name in ("api", "migrate", "worker-cpu"):
        assert index[name] == "https://download.pytorch.org/whl/cpu", name
    for name in _gpu_workers(services):
        assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d{3}", index[name]), (name, index[name])
    # one tag per variant, so the CUDA build never overwrites the CPU image the API runs (or the other way round)
    tags: dict[str, set[str]] = {}
    for name, service in built.items():
        assert service["build"]["context"] == "." and service.get("image"), name
        tags.setdefault(service["image"], set()).add(index[name])
    assert all(len(indexes) == 1 for indexes in tags.values()), tags
    assert services["api"]["image"] != services["worker-gpu"]["image"]


def test_dockerfile_takes_the_torch_index_as_a_build_argument_defaulting_to_cpu():
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
    assert args["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    install = next(line for line in text.splitlines() if line.startswith("RUN pip install") and "torch" in line)
    assert "${TORCH_INDEX}" in install and "${TORCH_VERSION}" in install
    assert text.index("ARG TORCH_INDEX") > text.index("FROM ")  # an ARG before FROM is out of scope in RUN


def _variables_the_code_reads() -> set[str]:
    """ADAPTARIUM_<FIELD> for every Settings field (Settings.from_env reads each so), plus the names
    hub/storage.py spells out (the S3 credentials' fallback)."""
    from dataclasses import fields

    from hub.settings import Settings

    spelled = re.findall(r'"(ADAPTARIUM_[A-Z0-9_]+)"', (ROOT / "hub/storage.py").read_text())
    return {f"ADAPTARIUM_{f.name.upper()}" for f in fields(Settings)} | set(spelled)


def test_gpu_worker_settings_are_ones_the_worker_reads():
    compose = _compose()
    read = _variables_the_code_reads()
    gpu_env = compose["services"]["worker-gpu"]["environment"]
    assert gpu_env["ADAPTARIUM_BROKER_URL"] == compose["x-adaptarium-env"]["ADAPTARIUM_BROKER_URL"]  # merged in
    for key in set(gpu_env) - set(compose["x-adaptarium-env"]):
        assert key in read, key
    assert float(gpu_env["ADAPTARIUM_BASE_CACHE_GB"]) > 0


def test_settings_passed_to_the_containers_are_ones_the_code_reads():
    compose = _compose()
    env = compose["x-adaptarium-env"]
    read = _variables_the_code_reads()
    for key in env:
        assert key in read, key
    api = compose["services"]["api"]
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]  # several workers, one metrics view
    assert env["ADAPTARIUM_STORAGE_URL"].startswith("s3://") and "minio:9000" in env["ADAPTARIUM_STORAGE_URL"]
    assert "mc mb" in " ".join(compose["services"]["create-bucket"]["command"])


def test_dockerfile_copies_existing_folders():
    for folder in re.findall(r"^COPY (\S+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.M):
        for part in folder.split():
            assert (ROOT / part).exists(), part
