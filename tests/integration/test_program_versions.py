"""The store server's programme is the source of truth: terminals fetch it (versioned,
with an ETag), check it, cache it for offline starts and preview with it; each sale
carries the version it was previewed under and its result the version it was applied
under. A hostile or broken answer changes nothing on the terminal."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from loyalty_server.cli import migrate
from pos_client.backends.http import HttpBackend
from pos_client.bootstrap import build_terminal
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase
from pos_client.ledger import sqlite_url
from pos_client.program import program_version
from pos_client.program_updates import PROGRAM_CACHE_FILE, ProgramChanged
from pos_client.settings import BackendKind
from tests.conftest import CONFIG_DIR, make_settings
from tests.integration.server_helpers import ServerProcess, free_port, http_terminal

PRESET = CONFIG_DIR / "programs" / "category_tiers.toml"
CARD = DEMO_MEMBERS[1].card_number
TEN = Purchase.of_amount(Decimal("10.00"))


def store_program(path: Path, rate: int) -> Path:
    """The preset with another base rate (the local preset earns 1 point per dollar)."""
    text = PRESET.read_text()
    assert "\nrate = 1\n" in text
    path.write_text(text.replace("\nrate = 1\n", f"\nrate = {rate}\n", 1))
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    program = store_program(tmp_path / "store.toml", rate=3)
    url = sqlite_url(tmp_path / "server.sqlite")
    migrate(url)
    server = ServerProcess(url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program))
    server.seed()
    server.start()
    try:
        yield server, program
    finally:
        server.stop()


def token_of(server: ServerProcess) -> str:
    return server.pair("reader")["token"]


def test_the_server_tells_its_programme_version_and_answers_304_when_unchanged(
    store: tuple[ServerProcess, Path],
) -> None:
    server, program = store
    headers = {"Authorization": f"Bearer {token_of(server)}"}
    first = requests.get(server.url + "/v1/program", headers=headers, timeout=10)
    assert first.status_code == 200
    version = program_version(program.read_bytes())
    assert first.json()["version"] == version
    assert first.json()["source"] == program.read_text()
    assert first.headers["ETag"] == f'"{version}"'
    again = requests.get(
        server.url + "/v1/program",
        headers={**headers, "If-None-Match": first.headers["ETag"]},
        timeout=10,
    )
    assert again.status_code == 304 and again.content == b""
    for asked in (f"W/{first.headers['ETag']}", '"0123456789abcdef", *'):  # weak; any
        weak = requests.get(
            server.url + "/v1/program", headers={**headers, "If-None-Match": asked}, timeout=10
        )
        assert weak.status_code == 304, asked
    stale = requests.get(
        server.url + "/v1/program",
        headers={**headers, "If-None-Match": '"0123456789abcdef"'},
        timeout=10,
    )
    assert stale.status_code == 200
    assert requests.get(server.url + "/v1/program", timeout=10).status_code == 401


def test_a_terminal_previews_with_the_servers_programme_after_one_sync(
    store: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, program = store
    version = program_version(program.read_bytes())
    with http_terminal(server, tmp_path / "desk") as terminal:
        changes: list[ProgramChanged] = []
        terminal.bus.subscribe(ProgramChanged, changes.append)
        session = terminal.checkout.identify(CARD)
        before = terminal.checkout.preview(session, TEN).points
        terminal.sync.drain()
        assert changes == [ProgramChanged(terminal.program.id, version)]
        after = terminal.checkout.preview(session, TEN).points
        assert after == 3 * before  # the server's rate, not the local preset's
        receipt = terminal.checkout.earn(session, TEN)
        body = terminal.outbox.get(receipt.key).body
        assert body["program_version"] == version
        terminal.sync.drain()
        result = terminal.outbox.get(receipt.key).result
        assert result is not None
        assert result["program_version"] == version
        assert result["points_earned"] == receipt.expected_points == after
        cache = tmp_path / "desk" / PROGRAM_CACHE_FILE
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600
        assert json.loads(cache.read_text())["version"] == version


def test_a_terminal_picks_up_a_new_version_within_one_sync_interval(
    store: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, program = store
    with http_terminal(server, tmp_path / "desk") as terminal:
        terminal.sync.drain()
        updater = terminal.sync.program_updater
        assert updater is not None
        session = terminal.checkout.identify(CARD)
        assert terminal.checkout.preview(session, TEN).points == 30
        terminal.sync.drain()  # within the interval: not asked again
        server.stop()
        store_program(program, rate=5)
        server.start()
        updater.interval_s = 0  # one interval later
        terminal.sync.drain()
        assert terminal.checkout.program_version == program_version(program.read_bytes())
        assert terminal.checkout.preview(session, TEN).points == 50


def test_a_terminal_starts_offline_with_the_programme_it_cached(
    store: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, program = store
    data_dir = tmp_path / "desk"
    with http_terminal(server, data_dir) as terminal:
        terminal.sync.drain()
        settings = terminal.settings
    server.stop()
    with build_terminal(settings) as restarted:
        assert restarted.checkout.program_version == program_version(program.read_bytes())
        assert restarted.program.earn.rate == Decimal(3)


def test_a_damaged_programme_cache_is_ignored_and_the_local_preset_used(
    store: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, _program = store
    data_dir = tmp_path / "desk"
    with http_terminal(server, data_dir) as terminal:
        terminal.sync.drain()
        settings = terminal.settings
    server.stop()
    cache = data_dir / PROGRAM_CACHE_FILE
    cached = json.loads(cache.read_text())
    cached["source"] = cached["source"].replace("rate = 3", "rate = 300")  # not its version
    cache.write_text(json.dumps(cached))
    with build_terminal(settings) as restarted:
        assert restarted.program.earn.rate == Decimal(1)


# ---------------------------------------------------------------- a hostile server


class HostileProgramServer(BaseHTTPRequestHandler):
    answer: bytes = b"{}"

    def do_GET(self) -> None:
        status, body = (200, self.answer) if self.path == "/v1/program" else (200, b"{}")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[tuple[str, type[HostileProgramServer]]]:
    handler = type("Handler", (HostileProgramServer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def tampered() -> bytes:
    """The version of one text (rate 2) with another (rate 100)."""
    source = PRESET.read_text()
    claimed = source.replace("\nrate = 1\n", "\nrate = 2\n", 1)
    forged = source.replace("\nrate = 1\n", "\nrate = 100\n", 1)
    return json.dumps({"version": program_version(claimed.encode()), "source": forged}).encode()


def broken_toml() -> bytes:
    source = "[earn\nrate = 1"
    return json.dumps({"version": program_version(source.encode()), "source": source}).encode()


def not_a_programme() -> bytes:
    source = 'id = "x"\n'
    return json.dumps({"version": program_version(source.encode()), "source": source}).encode()


HOSTILE_ANSWERS = {
    "text not its version": tampered(),
    "not TOML": broken_toml(),
    "TOML but no programme": not_a_programme(),
    "not JSON": b"<html>",
    "no version": json.dumps({"source": PRESET.read_text()}).encode(),
    "a list": b"[1, 2]",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "far too large": json.dumps({"version": "0" * 16, "source": "#" * 2_000_000}).encode(),
}


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS.values(), ids=HOSTILE_ANSWERS.keys())
def test_a_bad_programme_answer_changes_nothing_on_the_terminal(
    hostile: tuple[str, type[HostileProgramServer]], tmp_path: Path, answer: bytes
) -> None:
    url, handler = hostile
    handler.answer = answer
    settings = make_settings(tmp_path)
    settings = replace(
        settings,
        backend=replace(settings.backend, kind=BackendKind.HTTP, url=url, token_file=None),
    )
    (tmp_path / "terminal.token").write_text("t" * 40)
    with build_terminal(settings) as terminal:
        before = (terminal.program, terminal.checkout.program_version)
        updater = terminal.sync.program_updater
        assert updater is not None
        assert updater.check(force=True) is False
        assert (terminal.program, terminal.checkout.program_version) == before
        assert updater.last_error is not None
        assert "refused" in updater.last_error
        assert not (tmp_path / PROGRAM_CACHE_FILE).exists()


def test_the_embedded_backend_has_no_programme_to_fetch(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        assert terminal.sync.program_updater is None
        assert terminal.network.fetch_program(None) is None
        assert terminal.checkout.program_version == program_version(PRESET.read_bytes())


def test_http_backend_bounds_the_programme_answer(
    hostile: tuple[str, type[HostileProgramServer]],
) -> None:
    url, handler = hostile
    handler.answer = HOSTILE_ANSWERS["far too large"]
    backend = HttpBackend(url, "t" * 40)
    with pytest.raises(ValueError, match="larger than"):
        backend.fetch_program(None)
    backend.close()


def worker_pids(server: ServerProcess) -> set[int]:
    """The uvicorn worker processes under the server (its children, from /proc)."""
    assert server.process is not None
    parent = str(server.process.pid)
    found = set()
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] != parent:
            continue
        try:
            command = (stat_file.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:  # multiprocessing's helper is no worker
            found.add(int(stat_file.parent.name))
    return found


def test_a_worker_restarted_after_the_file_was_edited_serves_the_same_programme(
    tmp_path: Path,
) -> None:
    """Two workers behind one port serve one programme: the file as it was when the server
    started, even for a worker restarted after the file was edited (an outside review saw
    half the answers on the new rate until the server restarted)."""
    import os
    import signal
    import time

    program = store_program(tmp_path / "store.toml", rate=3)
    started_version = program_version(program.read_bytes())
    url = sqlite_url(tmp_path / "server.sqlite")
    migrate(url)
    server = ServerProcess(url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program))
    server.workers = 2
    server.start()
    try:
        headers = {"Authorization": f"Bearer {token_of(server)}"}
        deadline = time.monotonic() + 20
        while len(workers := worker_pids(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        store_program(program, rate=7)  # edited, no restart
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # ours: a child of the server this test started
        while time.monotonic() < deadline:
            now = worker_pids(server)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server did not start a new worker")
        time.sleep(1.0)  # the new worker up and serving
        tags = {
            requests.get(server.url + "/v1/program", headers=headers, timeout=10).headers["ETag"]
            for _ in range(24)
        }
    finally:
        server.stop()
    assert tags == {f'"{started_version}"'}
