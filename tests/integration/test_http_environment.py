"""What the terminal's HTTP client takes from its environment: the proxy a store network
sets (HTTP_PROXY/HTTPS_PROXY, NO_PROXY), read when the backend is built; never a ~/.netrc
entry or a CA bundle variable, which would replace the terminal's token or its configured
CA. A real loopback HTTP server that records what reaches it, the real HttpBackend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pos_client.backends.http import HttpBackend


class Recorder:
    """Answers every GET with 200 {"status": "ok"}, recording (path, Authorization)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append((self.path, self.headers.get("Authorization")))
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    yield running
    running.close()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_a_netrc_entry_or_a_ca_bundle_variable_never_replaces_the_terminals_token(
    recorder: Recorder, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = clean_environment / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password stolen\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(clean_environment / "no-such-bundle.pem"))
    backend = HttpBackend(recorder.url, "terminal-token")
    backend.ping()
    backend.ping()
    assert recorder.seen == [("/v1/health", "Bearer terminal-token")] * 2


def test_the_proxy_the_environment_names_is_used(
    recorder: Recorder, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The recorder stands in for the store network's proxy: it is asked for the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", recorder.url)
    backend = HttpBackend("http://store-server.invalid:8000", "terminal-token")
    backend.ping()
    assert recorder.seen == [
        ("http://store-server.invalid:8000/v1/health", "Bearer terminal-token")
    ]


def test_a_server_named_in_no_proxy_is_reached_directly(
    recorder: Recorder, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    backend = HttpBackend(recorder.url, "terminal-token")
    backend.ping()
    assert recorder.seen == [("/v1/health", "Bearer terminal-token")]
