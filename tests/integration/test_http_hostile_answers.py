"""Bad answers from a server or a proxy before it: the terminal treats them as the backend
being unavailable (nothing lost, retried later, a clear last error), never a traceback; a
pairing answer of the wrong shape stores nothing. A real loopback HTTP server, the real
HttpBackend and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pos_client.backends.http import HttpBackend
from pos_client.outbox import EntryState, Outbox
from pos_client.sync import SyncPolicy, SyncWorker
from tests.conftest import REPO
from tests.integration.ledger_helpers import sale_body
from tests.integration.server_helpers import Answer, LoopbackServer, json_answer

HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class ScriptedServer(LoopbackServer):
    """Answers every POST with `status` and `body` (bytes, or a callable of the keys)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes | object = b"{}"
        super().__init__()

    def get(self, path: str) -> Answer:
        if path.startswith("/v1/program"):
            return 304, None
        return json_answer({"status": "ok"})

    def post(self, payload: Any) -> Answer:
        keys = [op.get("key") for op in payload.get("operations", [])]
        body = self.body(keys) if callable(self.body) else self.body
        assert isinstance(body, bytes)
        return self.status, body


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer()
    yield running
    running.close()


def results(outcome: object) -> object:
    return lambda keys: json.dumps(
        {"results": [{"key": key, "outcome": outcome} for key in keys]}
    ).encode()


BAD_BATCH_ANSWERS = [
    pytest.param(HTML, id="html"),
    pytest.param(b"{}", id="no-results"),
    pytest.param(b"[1, 2]", id="a-list"),
    pytest.param(b'{"results": "all fine"}', id="results-not-a-list"),
    pytest.param(b'{"results": [1, 2]}', id="results-not-objects"),
    pytest.param(results("exploded"), id="unknown-outcome"),
    pytest.param(results(None), id="no-outcome"),
    pytest.param(
        lambda keys: json.dumps(
            {"results": [{"key": "someone-else", "outcome": "applied"}]}
        ).encode(),
        id="another-key",
    ),
    pytest.param(
        lambda keys: json.dumps(
            {"results": [{"key": key, "outcome": "applied"} for key in keys + keys]}
        ).encode(),
        id="twice",
    ),
]


@pytest.mark.parametrize("answer", BAD_BATCH_ANSWERS)
def test_a_malformed_batch_answer_is_the_backend_unavailable_and_loses_nothing(
    tmp_path: Path, server: ScriptedServer, answer: object
) -> None:
    server.body = answer
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2)]
        worker = SyncWorker(outbox, HttpBackend(server.url, "token", 2.0, 5.0), policy=SyncPolicy())
        report = worker.drain()
        assert not report.online and report.acked == 0 and report.dead == 0
        assert worker.last_error and worker.last_error.startswith("batch: ")
        for key in keys:
            entry = outbox.get(key)
            assert entry is not None and entry.state is EntryState.PENDING
        server.body = results("applied")  # the real server back: everything goes through
        assert worker.drain().acked == 2


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pos_client.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POS_CLIENT__ADMIN__PIN": "97531"},
    )


def test_sync_against_an_html_answer_says_offline_without_a_traceback(
    tmp_path: Path, server: ScriptedServer
) -> None:
    data = tmp_path / "t1"
    data.mkdir(mode=0o700)
    (data / "terminal.token").write_text("a-terminal-token-of-some-length\n")
    config = tmp_path / "t1.toml"
    config.write_text(f'[backend]\nkind = "http"\nurl = "{server.url}"\n')
    with Outbox(data / "outbox.sqlite") as outbox:
        key = outbox.add(sale_body("m1", "1.00")).key
    server.body = HTML
    synced = cli("--config", str(config), "--data-dir", str(data), "sync")
    assert synced.returncode == 1 and "Traceback" not in synced.stderr, synced.stderr
    assert "offline: batch: the answer is not JSON" in synced.stdout
    with Outbox(data / "outbox.sqlite") as outbox:
        entry = outbox.get(key)
        assert entry is not None and entry.state is EntryState.PENDING


@pytest.mark.parametrize(
    ("status", "answer", "says"),
    [
        pytest.param(502, HTML, "pairing refused: HTTP 502", id="bad-gateway-html"),
        pytest.param(200, HTML, "not JSON", id="html"),
        pytest.param(200, b"[1, 2]", "not an object", id="a-list"),
        pytest.param(
            200, b'{"token": "a\\nb", "terminal_id": "t"}', "valid token", id="token-newline"
        ),
        pytest.param(
            200,
            b'{"token": "abcdefghijklmnopqrstuvwxyz", "terminal_id": "t", "phone_key": "zz"}',
            "64 hex",
            id="phone-key-not-hex",
        ),
        pytest.param(200, b'{"token": "abcdefghijklmnopqrstuvwxyz"}', "terminal id", id="no-id"),
    ],
)
def test_a_malformed_pairing_answer_is_one_line_and_stores_nothing(
    tmp_path: Path, server: ScriptedServer, status: int, answer: bytes, says: str
) -> None:
    server.status, server.body = status, answer
    data = tmp_path / "t1"
    paired = cli("--data-dir", str(data), "pair", server.url, "CODE-1234")
    assert paired.returncode == 1 and "Traceback" not in paired.stderr, paired.stderr
    assert says in paired.stderr and len(paired.stderr.strip().splitlines()) == 1
    assert not (data / "terminal.token").exists()
    assert not (data / "phone.key").exists()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(json.dumps({"url": "javascript:alert(1)"}).encode(), id="script"),
        pytest.param(json.dumps({"url": "https://evil.example/phish"}).encode(), id="elsewhere"),
        pytest.param(
            json.dumps({"url": "https://a.example/v1/passes/" + "x" * 600}).encode(), id="long"
        ),
        pytest.param(json.dumps({"url": ["https://a.example/v1/passes/t"]}).encode(), id="list"),
        pytest.param(HTML, id="html"),
    ],
)
def test_a_pass_link_that_is_no_link_to_passes_is_never_shown(
    server: ScriptedServer, answer: bytes
) -> None:
    """The link is shown to a customer as a QR code: only a web address of the server's
    pass pages, of sane length, ever is."""
    from pos_client.backends.http import MalformedAnswer

    server.body = answer
    with pytest.raises(MalformedAnswer):
        HttpBackend(server.url, "token", 2.0, 5.0).pass_link("m1")
    server.body = json.dumps({"url": "https://loyalty.example/v1/passes/abc.123.def"}).encode()
    link = HttpBackend(server.url, "token", 2.0, 5.0).pass_link("m1")
    assert link == "https://loyalty.example/v1/passes/abc.123.def"
    behind = "https://shop.example/loyalty/v1/passes/abc.123.def"  # under a path prefix
    server.body = json.dumps({"url": behind}).encode()
    assert HttpBackend(server.url, "token", 2.0, 5.0).pass_link("m1") == behind
