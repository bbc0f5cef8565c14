"""Phones survive a stolen terminal: its files (outbox, WAL, keys) give back no phone key of
an enrollment once synced, the offline cache is keyed under the terminal's own key (the
store-wide key does not unlock it), and a cached member is forgotten after its lifetime."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pos_client.bootstrap import build_terminal
from pos_client.checkout import MemberNotFound, cache_lookup_key
from pos_client.domain import utcnow
from pos_client.outbox import EntryState
from pos_client.privacy import PhoneHasher, load_or_create_key
from tests.conftest import REPO, make_settings

PHONE = "+1 650 253 0001"
E164 = "+16502530001"


def files_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data.glob("outbox.sqlite*")) if p.is_file())


def test_a_synced_enrollment_leaves_no_phone_key_or_name_in_the_outbox(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(data), "enroll",
         "--phone", PHONE, "--first-name", "Dana", "--last-name", "Quixotically", "--consent",
         "--birthday", "1990-11-20"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "synced 1" in result.stdout
    store_key = PhoneHasher(load_or_create_key(data / "phone.key")).phone_key(E164)
    stolen = files_bytes(data)
    assert store_key.encode() not in stolen
    assert b"Quixotically" not in stolen and b"1990-11-20" not in stolen
    with sqlite3.connect(data / "outbox.sqlite") as conn:
        (body,) = conn.execute("SELECT body FROM entries WHERE kind = 'enroll'").fetchone()
    assert '"pruned":true' in body.replace(" ", "") and "phone_key" not in body


def test_an_unsynced_enrollment_keeps_its_body_until_acknowledged(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        terminal.network.set_online(False)
        session = terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        entry = terminal.outbox.entries()[0]
        assert entry.kind == "enroll" and entry.body["phone_key"]  # needed to sync it
        terminal.network.set_online(True)
        assert terminal.sync.drain().acked == 1
        synced = terminal.outbox.get(entry.key)
        assert synced is not None and synced.state is EntryState.ACKED
        assert synced.body == {
            "type": "enroll",
            "key": entry.key,
            "member_id": session.view.member_id,
            "pruned": True,
        }


def test_the_offline_cache_is_keyed_under_the_terminals_own_key(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        terminal.sync.drain()
        terminal.checkout.identify(PHONE, "phone")
        lookups = {
            row[0] for row in terminal.outbox.conn.execute("SELECT lookup FROM member_cache")
        }
    store = PhoneHasher(load_or_create_key(tmp_path / "phone.key"))
    own = PhoneHasher(load_or_create_key(tmp_path / "lookup.key"))
    assert cache_lookup_key("phone", store.phone_key(E164)) not in lookups
    assert cache_lookup_key("phone", own.phone_key(E164)) in lookups
    assert (tmp_path / "lookup.key").stat().st_mode & 0o077 == 0


def test_a_cached_member_is_forgotten_after_its_lifetime(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, privacy__offline_lookup_days="2")
    with build_terminal(settings) as terminal:
        terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        terminal.sync.drain()
        member = terminal.checkout.identify(PHONE, "phone").view.member_id
        terminal.network.set_online(False)
        now = utcnow()
        terminal.checkout.clock = lambda: now + timedelta(days=1)
        offline = terminal.checkout.identify(PHONE, "phone")  # within its lifetime
        assert offline.view.member_id == member and not offline.online
        terminal.checkout.clock = lambda: now + timedelta(days=3)
        with pytest.raises(MemberNotFound):
            terminal.checkout.identify(PHONE, "phone")
        count = terminal.outbox.conn.execute("SELECT count(*) FROM member_cache").fetchone()[0]
        assert count == 0
        terminal.outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    own = PhoneHasher(load_or_create_key(tmp_path / "lookup.key"))
    forgotten = cache_lookup_key("phone", own.phone_key(E164)).encode()
    assert forgotten not in files_bytes(tmp_path)  # overwritten on disk, not just unlinked
