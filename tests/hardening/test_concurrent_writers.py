"""Issue 10, item 10: concurrent writers on PostgreSQL. Sixteen keep-alive clients moving one tag, annotating and
yanking one version, and uploading to one adapter: every request answered 200/201, on the connection it came on,
nothing lost. And an unexpected error is a 500 that leaves the keep-alive connection usable."""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import start_hub
from tests.hardening.conftest import lora_files, port_of, raw_request, register_base, status_of, upload

CLIENTS = 16


def _request(port, sock, token, method, path, body=None):
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    response, sock = raw_request(port, head, payload, sock=sock, timeout=60)
    return status_of(response), sock


@pytest.fixture
def pg_hub(tmp_path, private_pg_db):
    live, stop = start_hub(tmp_path, private_pg_db)
    register_base(live)
    yield live
    stop()
    live.app.state.engine.dispose()


@pytest.mark.postgres
def test_sixteen_keep_alive_clients_moving_one_tag_all_succeed_on_their_own_connection(pg_hub):
    with pg_hub.client() as c:
        for _ in range(3):
            assert upload(c, "team", "a", lora_files()).status_code == 201
    port = port_of(pg_hub)

    def client(i: int) -> list[int]:
        rng, sock, statuses = random.Random(i), None, []
        for _ in range(25):
            status, sock = _request(port, sock, pg_hub.admin_token, "PUT", "/api/v1/adapters/team/a/tags/prod",
                                    {"version": rng.randint(1, 3)})
            statuses.append(status)  # 0 would mean the server closed this keep-alive connection
        sock.close()
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for chunk in pool.map(client, range(CLIENTS)) for s in chunk]
    assert statuses == [200] * (CLIENTS * 25)
    assert pg_hub.scalar("select count(*) from tags") == 1


@pytest.mark.postgres
def test_concurrent_uploads_yanks_and_metrics_on_one_adapter_lose_nothing(pg_hub):
    port = port_of(pg_hub)
    with pg_hub.client() as c:
        assert upload(c, "team", "b", lora_files()).status_code == 201

    def client(i: int) -> list[int]:
        sock, statuses = None, []
        for round_ in range(4):
            status, sock = _request(port, sock, pg_hub.admin_token, "PATCH",
                                    "/api/v1/adapters/team/b/versions/1/metrics", {f"m{i}_{round_}": i})
            statuses.append(status)
            status, sock = _request(port, sock, pg_hub.admin_token, "DELETE", "/api/v1/adapters/team/b/versions/1")
            statuses.append(status)
        sock.close()
        with pg_hub.client() as c:
            statuses.append(upload(c, "team", "b", lora_files()).status_code)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for chunk in pool.map(client, range(CLIENTS)) for s in chunk]
    assert sorted(set(statuses)) == [200, 201]
    with pg_hub.client() as c:
        metrics = c.get("/api/v1/adapters/team/b/versions/1").json()["metrics"]
        assert metrics == {f"m{i}_{r}": i for i in range(CLIENTS) for r in range(4)}  # no PATCH overwrote another
        numbers = [v["number"] for v in c.get("/api/v1/adapters/team/b/versions").json()["items"]]
    assert numbers == list(range(1, CLIENTS + 2))


def test_an_unexpected_error_is_a_json_500_and_the_keep_alive_connection_survives(live):
    def broken():
        raise RuntimeError("a bug")

    live.app.add_api_route("/test-only/broken", broken, methods=["GET"])
    port = port_of(live)
    response, sock = raw_request(port, "GET /test-only/broken HTTP/1.1\r\nHost: hub\r\n\r\n")
    with sock:
        assert status_of(response) == 500
        assert json.loads(response.split(b"\r\n\r\n", 1)[1]) == {"detail": "internal server error"}
        again, _ = raw_request(port, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n", sock=sock)
        assert status_of(again) == 200
