"""A live hub for the hardening tests (issue 10), with a synthetic base so uploads need no torch and stay tiny.

The adapters are written with safetensors' numpy API: a few 8x8 float tensors, each test choosing dtype and values
(NaN, infinity) and the config (patterns, non-finite numbers) it needs.
"""
from __future__ import annotations

import contextlib
import json
import socket

import httpx
import numpy as np
import pytest
from safetensors.numpy import save

from tests.api.conftest import start_hub
from tests.conftest import new_pg_database

SYN_BASE = "syn-base"
SYN_MODULES = {f"model.layers.{i}.self_attn.{p}": [8, 8] for i in range(2) for p in ("q_proj", "v_proj")}


def lora_files(config: dict | None = None, dtype=np.float32, rank: int = 2, modules=None, poison=None,
               raw_config: bytes | None = None) -> dict[str, tuple[str, bytes]]:
    """Multipart `files=` for a LoRA upload against the synthetic base; `poison=(tensor_index, value)` puts one value
    (NaN, inf) into one tensor."""
    modules = list(modules or SYN_MODULES)
    rng = np.random.default_rng(0)
    tensors = {}
    for module in modules:
        fan_in, fan_out = SYN_MODULES.get(module, [8, 8])
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((rank, fan_in)).astype(dtype)
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((fan_out, rank)).astype(dtype)
    if poison is not None:
        index, value = poison
        name = sorted(tensors)[index]
        tensors[name].flat[-1] = value
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"],
           "base_model_name_or_path": SYN_BASE, **(config or {})}
    return {"adapter_config.json": ("adapter_config.json", raw_config or json.dumps(cfg).encode()),
            "adapter_model.safetensors": ("adapter_model.safetensors", save(tensors))}


def register_base(live, name: str = SYN_BASE, modules: dict | None = None) -> None:
    with live.client() as c:
        r = c.post("/api/v1/bases", json={"name": name, "architecture": "synthetic",
                                          "module_shapes": modules or SYN_MODULES})
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One SQLite + local-blob hub (the `adaptarium up` default) per test module, the synthetic base registered."""
    hub, stop = start_hub(tmp_path_factory.mktemp("hub"))
    register_base(hub)
    yield hub
    stop()
    hub.app.state.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request, tmp_path):
    """A hub of this test's own (collections see every blob), on SQLite or PostgreSQL, local blobs."""
    url = request.getfixturevalue("private_pg_db") if request.param == "postgres" else None
    live, stop = start_hub(tmp_path, url)
    register_base(live)
    yield live
    stop()
    live.app.state.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub_per_database(request, tmp_path_factory):
    """A hub per test module on each database (SQLite, and a private PostgreSQL database), local blobs, the
    synthetic base registered: for the edge checks that must answer alike on both (issue 27)."""
    with new_pg_database("adaptarium_mod") if request.param == "postgres" else contextlib.nullcontext() as url:
        live, stop = start_hub(tmp_path_factory.mktemp(f"hub-{request.param}"), url)
        register_base(live)
        yield live
        stop()
        live.app.state.engine.dispose()


def port_of(live) -> int:
    return int(live.url.rsplit(":", 1)[1])


def raw_request(port: int, head: str, body: bytes = b"", sock: socket.socket | None = None,
                timeout: float = 10) -> tuple[bytes, socket.socket]:
    """Send one HTTP/1.1 request on a raw socket (a path httpx would normalise, or a connection we watch) and read
    the whole response (by Content-Length); returns (response bytes, socket), b'' if the server closed it."""
    sock = sock or socket.create_connection(("127.0.0.1", port))
    sock.settimeout(timeout)
    sock.sendall(head.encode("latin-1") + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, sock
        data += chunk
    head_part, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head_part + b"\r\n\r\n" + rest, sock


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response else 0


def upload(client: httpx.Client, ns: str, name: str, files: dict, **fields) -> httpx.Response:
    return client.post(f"/api/v1/adapters/{ns}/{name}/versions", files=files, data=fields)
