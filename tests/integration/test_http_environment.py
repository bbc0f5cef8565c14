"""What the terminal's HTTP client takes from its environment: the proxy a store network
sets (HTTP_PROXY/HTTPS_PROXY, NO_PROXY), read when the backend is built; never a ~/.netrc
entry or a CA bundle variable, which would replace the terminal's token or its configured
CA. A real loopback HTTP server that records what reaches it, the real HttpBackend."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pos_client.backends.http import HttpBackend, MalformedAnswer
from pos_client.domain import MemberView, member_view_to_json
from pos_client.ports import BackendUnavailable


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


def private_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A store's private CA and a certificate it signed for 127.0.0.1: (CA, cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Store CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_recorder(tmp_path: Path) -> Iterator[tuple[Recorder, Path]]:
    import ssl

    ca, cert, key = private_ca_and_server_cert(tmp_path)
    running = Recorder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    running.httpd.socket = context.wrap_socket(running.httpd.socket, server_side=True)
    running.url = running.url.replace("http://", "https://")
    yield running, ca
    running.close()


def test_a_store_ca_named_by_the_environment_is_trusted_as_for_pairing(
    tls_recorder: tuple[Recorder, Path],
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder, ca = tls_recorder
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with pytest.raises(BackendUnavailable, match="SSLError"):
        HttpBackend(recorder.url, "terminal-token").ping()  # the CA is nobody's: refused
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    HttpBackend(recorder.url, "terminal-token").ping()
    assert recorder.seen == [("/v1/health", "Bearer terminal-token")]


def test_a_configured_ca_is_not_replaced_by_the_environment(
    tls_recorder: tuple[Recorder, Path],
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    recorder, ca = tls_recorder
    (tmp_path / "other").mkdir()
    other_ca, _cert, _key = private_ca_and_server_cert(tmp_path / "other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))  # would trust the server
    with pytest.raises(BackendUnavailable, match="SSLError"):
        HttpBackend(recorder.url, "terminal-token", verify=str(other_ca)).ping()
    assert recorder.seen == []


class MemberServer(Recorder):
    """Answers GET /v1/members/... with Anna's record, whatever id was asked for (a server
    that answers for another member than the one named)."""

    def __init__(self) -> None:
        super().__init__()
        owner = self
        handler = self.httpd.RequestHandlerClass

        def do_get(request: BaseHTTPRequestHandler) -> None:
            owner.seen.append((request.path, request.headers.get("Authorization")))
            view = MemberView("anna-id", "Anna K.", "•••89", "base", "Base", 5700)
            body = json.dumps(member_view_to_json(view)).encode()
            request.send_response(200)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        handler.do_GET = do_get  # type: ignore[attr-defined]


def test_a_member_id_is_one_quoted_path_segment_and_the_answer_must_be_that_member(
    clean_environment: Path,
) -> None:
    server = MemberServer()
    try:
        backend = HttpBackend(server.url, "terminal-token")
        assert backend.member("anna-id") is not None
        # An id holding "?" asked for Anna's record; now it is one segment, and an answer
        # for another member than the one asked for is refused.
        with pytest.raises(MalformedAnswer, match="another member"):
            backend.member("anna-id?x")
        assert [path for path, _auth in server.seen] == [
            "/v1/members/anna-id",
            "/v1/members/anna-id%3Fx",
        ]
    finally:
        server.close()
