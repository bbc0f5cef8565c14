"""Phones survive a stolen terminal: its files (outbox, WAL, keys) give back no phone key of
an enrollment once synced, the offline cache is keyed under the terminal's own key (the
store-wide key does not unlock it), and a cached member is forgotten after its lifetime."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.checkout import MemberNotFound, cache_lookup_key, legacy_cache_lookup_key
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import utcnow
from pos_client.outbox import EntryState
from pos_client.privacy import OfflineLookupKey, PhoneHasher, load_or_create_key
from pos_client.settings import BackendKind
from tests.conftest import REPO, make_settings
from tests.integration.server_helpers import ServerProcess

ANNA = DEMO_MEMBERS[0]

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
        terminal.checkout.settle()
        lookups = {
            row[0] for row in terminal.outbox.conn.execute("SELECT lookup FROM member_cache")
        }
    store = PhoneHasher(load_or_create_key(tmp_path / "phone.key"))
    own = OfflineLookupKey(load_or_create_key(tmp_path / "lookup.key"))
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
    own = OfflineLookupKey(load_or_create_key(tmp_path / "lookup.key"))
    forgotten = cache_lookup_key("phone", own.phone_key(E164)).encode()
    assert forgotten not in files_bytes(tmp_path)  # overwritten on disk, not just unlinked


# ------------------------------------------------------------------ the key stays on the server


def test_a_terminal_paired_without_the_store_key_enrolls_and_finds_members_by_phone(
    server: ServerProcess, tmp_path: Path
) -> None:
    data = tmp_path / "terminal"
    paired = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(data), "pair", server.url,
         server.pairing_code("desk")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert paired.returncode == 0, paired.stderr
    assert "stays on the server" in paired.stdout
    assert not (data / "phone.key").exists()
    settings = make_settings(data)
    settings = replace(
        settings, backend=replace(settings.backend, kind=BackendKind.HTTP, url=server.url)
    )
    store = server.hasher()
    with build_terminal(settings) as terminal:
        assert terminal.checkout.server_hashes_phones
        anna = terminal.checkout.identify(ANNA.phone, "phone")  # keyed by the server
        assert anna.view.display_name.startswith(ANNA.first_name[0])
        session = terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        assert terminal.sync.drain().acked == 1
        ledger = server.ledger()
        assert ledger.find_member_id("phone", store.phone_key(E164)) == session.view.member_id
        ledger.engine.dispose()
        assert terminal.checkout.identify(PHONE, "phone").online
        terminal.network.set_online(False)
        offline = terminal.checkout.identify(PHONE, "phone")  # from its own cache
        assert offline.view.member_id == session.view.member_id and not offline.online
    assert not (data / "phone.key").exists()
    stolen = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert store.phone_key(E164).encode() not in stolen
    assert store.phone_key(ANNA.phone).encode() not in stolen
    assert server.key_file.read_text().strip().encode() not in stolen
    assert E164.encode() not in stolen  # the number left with the pruned enrollment


def test_a_lookup_by_number_must_be_e164(server: ServerProcess) -> None:
    token = server.pair("kiosk")["token"]
    for bad in ("12345", "+1 650 253 0001", "+999999999999", "+16502530001\u0000"):
        response = requests.post(
            server.url + "/v1/members/lookup",
            json={"kind": "phone_number", "value": bad},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code in (400, 422), (bad, response.status_code)


def pair_asking_for_the_key(server: ServerProcess) -> dict[str, object]:
    response = requests.post(
        server.url + "/v1/terminals/pair",
        json={"code": server.pairing_code("old-desk"), "share_phone_key": True},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_a_terminal_asking_for_the_store_key_does_not_get_it_by_default(
    server: ServerProcess,
) -> None:
    answer = pair_asking_for_the_key(server)
    assert answer["token"] and answer.get("phone_key") is None


def test_a_store_may_share_the_key_with_older_terminals_on_purpose(tmp_path: Path) -> None:
    database = f"sqlite+pysqlite:///{tmp_path / 'legacy.sqlite'}"
    process = ServerProcess(database, tmp_path, LOYALTY_SERVER_SHARE_PHONE_KEY="1")
    process.start()
    try:
        answer = pair_asking_for_the_key(process)
        assert answer.get("phone_key") == process.key_file.read_text().strip()
    finally:
        process.stop()


# ------------------------------------------------------------------ the offline phone key is slow


def cache_rows(terminal: Terminal) -> dict[str, str]:
    terminal.checkout.settle()
    return dict(terminal.outbox.conn.execute("SELECT lookup, member_id FROM member_cache"))


def test_a_member_cached_by_phone_is_found_offline_under_the_slow_key_only(
    tmp_path: Path,
) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        terminal.sync.drain()
        member = terminal.checkout.identify(PHONE, "phone").view.member_id
        rows = cache_rows(terminal)
        terminal.network.set_online(False)
        offline = terminal.checkout.identify(PHONE, "phone")
        assert offline.view.member_id == member and not offline.online
        with pytest.raises(MemberNotFound):
            terminal.checkout.identify("+1 650 253 0002", "phone")  # one digit off
        terminal.outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    key = load_or_create_key(tmp_path / "lookup.key")
    fast = PhoneHasher(key).phone_key(E164)  # what earlier versions stored
    slow = OfflineLookupKey(key).phone_key(E164)
    assert (
        cache_lookup_key("phone", slow) in rows and rows[cache_lookup_key("phone", slow)] == member
    )
    stolen = files_bytes(tmp_path)
    for old_form in (fast, legacy_cache_lookup_key("phone", fast), cache_lookup_key("phone", fast)):
        assert old_form.encode() not in stolen
    assert slow != fast and E164.encode() not in stolen


def test_one_guess_at_an_offline_phone_key_needs_16_mib(tmp_path: Path) -> None:
    import hashlib

    key = load_or_create_key(tmp_path / "lookup.key")
    slow = OfflineLookupKey(key)
    assert slow.cost.memory_bytes >= 16 * 2**20
    assert "<key hidden>" in repr(slow) and key.hex() not in repr(slow)
    with pytest.raises(ValueError):  # OpenSSL refuses it with less memory than that
        hashlib.scrypt(
            E164.encode(), salt=key, n=slow.cost.n, r=slow.cost.r, p=slow.cost.p,
            maxmem=slow.cost.memory_bytes // 2, dklen=32,
        )  # fmt: skip
    other = OfflineLookupKey(secrets.token_bytes(32))
    assert other.phone_key(E164) != slow.phone_key(E164)  # salted with the terminal's key


def test_an_online_phone_lookup_does_not_wait_for_the_slow_key(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        terminal.sync.drain()
        terminal.checkout.settle()
        writer = terminal.checkout.cache_writer
        assert writer is not None
        gate = threading.Event()
        writer.submit(lambda: gate.wait(30))  # the cache writer is busy
        terminal.outbox.conn.execute("DELETE FROM member_cache")
        started = time.monotonic()
        session = terminal.checkout.identify(PHONE, "phone")  # answered without the KDF
        assert session.online and time.monotonic() - started < 5
        assert cache_rows_now(terminal) == {}  # not cached yet: the KDF waits its turn
        gate.set()
        terminal.network.set_online(False)
        offline = terminal.checkout.identify(PHONE, "phone")  # waits for the write, finds it
        assert offline.view.member_id == session.view.member_id


def cache_rows_now(terminal: Terminal) -> dict[str, str]:
    return dict(terminal.outbox.conn.execute("SELECT lookup, member_id FROM member_cache"))


def test_cache_entries_of_an_earlier_version_are_upgraded_or_dropped(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        terminal.checkout.enroll(PHONE, "Dana", "Q", consent=True)
        terminal.sync.drain()
        session = terminal.checkout.identify(PHONE, "phone")
        card = session.view.card_number
        assert card
        rows = cache_rows(terminal)
        member = session.view.member_id
        # As an earlier version wrote them: phone under the fast HMAC, a card UID, a card
        # number, all without the new form.
        fast = PhoneHasher(load_or_create_key(tmp_path / "lookup.key")).phone_key(E164)
        legacy = {
            legacy_cache_lookup_key("phone", fast),
            legacy_cache_lookup_key("card_uid", "04A224C25E6C80"),
            legacy_cache_lookup_key("card_number", card),
        }
        conn = terminal.outbox.conn
        view = conn.execute("SELECT view FROM member_cache LIMIT 1").fetchone()[0]
        conn.execute("DELETE FROM member_cache")
        for lookup in legacy:
            conn.execute(
                "INSERT INTO member_cache VALUES (?, ?, ?, ?)",
                (lookup, member, view, utcnow().isoformat()),
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert legacy_cache_lookup_key("phone", fast).encode() in files_bytes(tmp_path)
    assert len(rows) == 2  # the phone and the card number of the enrollment
    with build_terminal(make_settings(tmp_path)) as terminal:  # an upgraded terminal starts
        after = cache_rows_now(terminal)
        assert set(after) == {cache_lookup_key("card_number", card)}
        terminal.network.set_online(False)
        assert terminal.checkout.identify(card, "barcode").view.member_id == member
        with pytest.raises(MemberNotFound):  # dropped: found again once seen online
            terminal.checkout.identify(PHONE, "phone")
    stolen = files_bytes(tmp_path)
    assert legacy_cache_lookup_key("phone", fast).encode() not in stolen  # overwritten


def test_the_member_cache_of_the_previous_release_keeps_its_card_numbers(
    tmp_path: Path,
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(REPO / "tests" / "fixtures" / "release-2026-11-25" / "data", data)
    with sqlite3.connect(data / "outbox.sqlite") as conn:
        before = dict(conn.execute("SELECT lookup, member_id FROM member_cache"))
    assert before and not any(lookup.startswith("k2:") for lookup in before)
    with build_terminal(make_settings(data)) as terminal:
        after = cache_rows_now(terminal)
        assert sorted(after.values()) == sorted(before.values())  # both card numbers kept
        assert all(lookup.startswith("k2:") for lookup in after)
        terminal.network.set_online(False)
        bob = terminal.checkout.identify(DEMO_MEMBERS[1].card_number, "barcode")
        assert not bob.online and bob.view.member_id in after.values()
