"""Issue 10, item 3: the HF-compatible routes quote the request path in X-Error-Message; a path with a non-latin-1
or a control character must still get its 404, on a connection that stays open."""
from __future__ import annotations

import pytest

from tests.hardening.conftest import port_of, raw_request, status_of


@pytest.mark.parametrize("path", [
    "/api/models/%C4%80/x",                     # U+0100: not encodable in a latin-1 header
    "/api/models/a%04/x",                       # control character
    # a NUL is refused before any route, with a 422 (issue 27; test_edge_input.py)
    "/api/models/ns/x/revision/%0d%0aX-Evil:%201",  # CR LF: would split the header
    "/api/datasets/%E2%98%83/x",
    "/ns%0a/x/resolve/main/adapter_config.json",
    "/datasets/ns/x/resolve/main/%01file",
])
def test_hf_error_for_an_odd_path_is_a_404_with_a_printable_header_on_a_kept_connection(live, path):
    port = port_of(live)
    response, sock = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n")
    with sock:
        assert status_of(response) == 404, response[:300]
        head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        message = next(line for line in head.split("\r\n") if line.lower().startswith("x-error-message:"))
        assert all(" " <= c <= "~" for c in message)
        assert "x-evil" not in head.lower().replace("x-error-message", "")
        # the same connection still answers
        again, _ = raw_request(port, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n", sock=sock)
        assert status_of(again) == 200


def test_header_safe_escapes_what_a_header_cannot_carry_and_keeps_the_rest():
    from hub.api.hf import header_safe

    assert header_safe("repository ns/x not found") == "repository ns/x not found"
    assert header_safe("a\x00b\r\nc\u0100\U0001f600") == "a\\x00b\\r\\nc\\u0100\\U0001f600"
    assert len(header_safe("x" * 5000)) == 400
