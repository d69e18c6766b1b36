"""Issue 10, item 9: a request whose body stops arriving is answered 408 after the body read timeout and its
connection closed, instead of holding the request (and what it holds) for as long as the socket lives."""
from __future__ import annotations

import socket
import time

import pytest

from tests.hardening.conftest import port_of, raw_request, status_of


@pytest.fixture
def short_timeout(live):
    before = live.app.state.body_read_timeout_s
    live.app.state.body_read_timeout_s = 0.5
    yield live
    live.app.state.body_read_timeout_s = before


@pytest.mark.parametrize("method, path, content_type", [
    ("POST", "/api/v1/adapters/slow/a/versions", "multipart/form-data; boundary=xyz"),  # the streaming upload
    ("PUT", "/api/v1/adapters/slow/a/tags/prod", "application/json"),  # FastAPI reading a JSON body
])
def test_a_body_that_stops_arriving_is_a_408_and_the_connection_closes(short_timeout, method, path, content_type):
    live = short_timeout
    head = (f"{method} {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {live.admin_token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {2 * 1024**3}\r\n\r\n")
    start = time.perf_counter()
    response, sock = raw_request(port_of(live), head, b"--xyz\r\n" if "multipart" in content_type else b'{"ver')
    took = time.perf_counter() - start
    with sock:
        assert status_of(response) == 408, response[:300]
        assert 0.4 < took < 5
        assert sock.recv(1) == b""  # closed by the server: the rest of a 2 GB body is not worth waiting for
    assert not list((live.settings.data_dir / "blobs" / ".staging").glob(".partial-*"))


def test_a_slow_but_steady_body_is_not_cut(short_timeout):
    live = short_timeout
    body = b'{"version":1}'
    head = (f"PUT /api/v1/adapters/slow/none/tags/prod HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer "
            f"{live.admin_token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", port_of(live)))
    with sock:
        sock.sendall(head.encode())
        for at in range(0, len(body) - 1, 3):  # 0.3 s apart: the total (1.5 s) is past the timeout, each gap is not
            sock.sendall(body[at:min(at + 3, len(body) - 1)])
            time.sleep(0.3)
        response, _ = raw_request(port_of(live), "", body[-1:], sock=sock)
        assert status_of(response) == 404  # the adapter does not exist: the body was read whole and the route ran
