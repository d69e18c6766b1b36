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


def test_gpu_worker_reserves_a_gpu_and_workers_cover_both_queues():
    services = _compose()["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    queues = {services[w]["command"][-1] for w in ("worker-gpu", "worker-cpu")}
    assert queues == {"gpu", "cpu"}


def test_settings_passed_to_the_containers_are_ones_the_code_reads():
    compose = _compose()
    env = compose["x-adaptarium-env"]
    source = "".join((ROOT / p).read_text() for p in ("hub/settings.py", "hub/storage.py"))
    for key in env:
        assert f'"{key}"' in source, key
    api = compose["services"]["api"]
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]  # several workers, one metrics view
    assert env["ADAPTARIUM_STORAGE_URL"].startswith("s3://") and "minio:9000" in env["ADAPTARIUM_STORAGE_URL"]
    assert "mc mb" in " ".join(compose["services"]["create-bucket"]["command"])


def test_dockerfile_copies_existing_folders():
    for folder in re.findall(r"^COPY (\S+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.M):
        for part in folder.split():
            assert (ROOT / part).exists(), part
