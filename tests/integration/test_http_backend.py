"""The HTTP backend against a loopback server that refuses batches as too large."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pos_client.backends.http import HttpBackend
from pos_client.ports import Outcome

LIMIT = 300  # bytes: a batch over it is refused with 413, as the store server does


class TooLargeServer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if length > LIMIT:
            self._answer(413, {"detail": "request body too large"})
            return
        operations = json.loads(body)["operations"]
        results = [{"key": op["key"], "outcome": "applied"} for op in operations]
        self._answer(200, {"results": results})

    def _answer(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TooLargeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_batch_too_large_is_judged_per_operation_and_the_huge_one_is_refused(
    base_url: str,
) -> None:
    backend = HttpBackend(base_url, "token")
    try:
        small = [{"key": f"k{i}", "kind": "sale"} for i in range(2)]
        huge = {"key": "huge", "kind": "sale", "note": "x" * 1000}
        results = backend.submit([small[0], huge, small[1]])
    finally:
        backend.close()
    outcomes = {result.key: (result.outcome, result.code) for result in results}
    assert outcomes == {
        "k0": (Outcome.APPLIED, None),
        "huge": (Outcome.REJECTED, "too_large"),  # dead letter, not "offline" for ever
        "k1": (Outcome.APPLIED, None),
    }
