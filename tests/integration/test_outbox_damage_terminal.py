"""More damage the terminal survives, as a technician or an attacker meets it, on real files
and the real CLI: the outbox removed with its manifest, an unreadable manifest, the log and
its index removed under a running terminal, damaged entries counted by `sync`, and a
refused enrollment's personal details left on disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pos_client.backends.http import HttpBackend
from pos_client.bootstrap import build_terminal
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase
from pos_client.operations import Consent, EnrollOp
from pos_client.outbox import EntryState, ManifestUnreadable, Outbox, witness_path
from pos_client.sync import SyncWorker
from tests.conftest import REPO, damage_stored_entry, make_settings
from tests.integration.ledger_helpers import sale_body
from tests.integration.server_helpers import Answer, LoopbackServer, json_answer

POS_CLIENT = str(REPO / ".venv" / "bin" / "pos-client")


def pos_client(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POS_CLIENT, "--data-dir", str(data), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fill(path: Path, count: int) -> list[str]:
    with Outbox(path) as outbox:
        return [outbox.add(sale_body("m1", f"{index + 1}.00")).key for index in range(count)]


# ------------------------------------------------------------------ outbox and manifest removed


def test_removing_the_outbox_with_its_manifest_is_refused_by_the_second_record(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    fill(data / "outbox.sqlite", 4)
    removed = sorted(data.glob("outbox.sqlite*"))  # what `rm outbox.sqlite*` removes
    assert data / "outbox.sqlite.manifest" in removed
    for file in removed:
        file.unlink()
    witness = witness_path(data / "outbox.sqlite")
    assert witness.exists() and oct(witness.stat().st_mode & 0o777) == "0o600"

    status = pos_client(data, "queue", "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert "is missing" in status.stderr and "4 sale(s)" in status.stderr
    assert not (data / "outbox.sqlite").exists()  # not started afresh behind staff's back
    doctor = pos_client(data, "doctor")
    assert doctor.returncode == 1 and "BAD outbox: " in doctor.stdout
    assert "is missing" in doctor.stdout

    # Staff accept the loss explicitly: the record goes aside and a new outbox is made.
    quarantined = pos_client(data, "queue", "quarantine")
    assert quarantined.returncode == 0 and "kept aside" in quarantined.stdout
    assert not witness.exists()
    assert pos_client(data, "queue", "status").returncode == 0


def test_a_brand_new_data_folder_starts_and_keeps_both_records(tmp_path: Path) -> None:
    data = tmp_path / "new"
    status = pos_client(data, "queue", "status")
    assert status.returncode == 0, status.stderr
    fill(data / "outbox.sqlite", 2)
    assert json.loads((data / "outbox.sqlite.manifest").read_text())["written"] == 2
    assert json.loads(witness_path(data / "outbox.sqlite").read_text())["written"] == 2


def test_a_manifest_removed_alone_is_written_again_from_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    fill(path, 3)
    path.with_name("outbox.sqlite.manifest").unlink()
    with Outbox(path) as outbox:
        assert outbox.stats().pending == 3
    assert json.loads(path.with_name("outbox.sqlite.manifest").read_text())["written"] == 3


def test_a_data_folder_of_the_previous_release_opens_and_gains_the_second_record(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "tests" / "fixtures" / "release-2026-11-25" / "data", data)
    assert not witness_path(data / "outbox.sqlite").exists()
    status = pos_client(data, "queue", "status")
    assert status.returncode == 0, status.stderr
    assert "pending 3, sending 0, acked 2, dead 1" in status.stdout
    assert json.loads(witness_path(data / "outbox.sqlite").read_text())["written"] == 6


# ------------------------------------------------------------------ an unreadable manifest


def test_an_unreadable_manifest_is_refused_naming_it_and_the_other_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fill(data / "outbox.sqlite", 3)
    manifest = data / "outbox.sqlite.manifest"
    manifest.write_bytes(b"\x00\xffnot json")

    status = pos_client(data, "queue", "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert str(manifest) in status.stderr and "cannot be read" in status.stderr
    assert "says 3 sale(s)" in status.stderr and "queue reseal" in status.stderr
    assert manifest.read_bytes() == b"\x00\xffnot json"  # nothing rewritten behind staff
    doctor = pos_client(data, "doctor")
    assert doctor.returncode == 1 and "BAD outbox: " in doctor.stdout

    # The technician's way back (README, troubleshooting): reseal, checked against the
    # record still readable.
    resealed = pos_client(data, "queue", "reseal")
    assert resealed.returncode == 0, resealed.stderr
    assert "records of sales written now say 3" in resealed.stdout
    assert list(data.glob("outbox.sqlite.manifest.unreadable-*"))
    assert json.loads(manifest.read_text())["written"] == 3
    status = pos_client(data, "queue", "status")
    assert status.returncode == 0 and "pending 3" in status.stdout


def test_reseal_refuses_an_outbox_older_than_the_readable_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    fill(path, 1)
    older = path.read_bytes()
    fill(path, 2)
    path.write_bytes(older)  # an older copy put back, and the manifest spoiled
    (data / "outbox.sqlite.manifest").write_text("{garbage")

    resealed = pos_client(data, "queue", "reseal")
    assert resealed.returncode == 1 and "Traceback" not in resealed.stderr
    assert "holds 1 sale(s)" in resealed.stderr and "says 3" in resealed.stderr
    assert pos_client(data, "queue", "status").returncode == 1


def test_an_unreadable_second_record_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    fill(path, 2)
    witness_path(path).write_text('{"written": "many"}')
    with pytest.raises(ManifestUnreadable, match=r"sales-written.*cannot be read.*says 2 sale"):
        Outbox(path).open()


# ------------------------------------------------------------------ log and index removed live

RUNNING_TERMINAL = """
import sys
from pos_client.outbox import Outbox
from tests.integration.ledger_helpers import sale_body
outbox = Outbox(sys.argv[1]).open()
for line in sys.stdin:
    if line.strip() == "ack":
        outbox.ack_many([(e.key, None) for e in outbox.entries(limit=100)])
    else:
        outbox.add(sale_body("m1", "9.00"))
    print(outbox.stats().acked, flush=True)
outbox.close()
"""


def test_queue_status_is_never_stale_after_the_log_and_index_go_under_a_running_terminal(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    fill(path, 2)  # closed: both sales are in the main file
    running = subprocess.Popen(
        [sys.executable, "-c", RUNNING_TERMINAL, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert running.stdin is not None and running.stdout is not None
        running.stdin.write("ack\n")
        running.stdin.flush()
        assert running.stdout.readline().strip() == "2"  # acked, in the log only
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink()

        status = pos_client(data, "queue", "status")
        # Before: "pending 2, ... acked 0" read from the main file alone.
        assert "pending 2" not in status.stdout
        assert status.returncode == 1 and "running terminal" in status.stderr
        assert "Traceback" not in status.stderr

        running.stdin.write("add\n")  # its next write notices, saves the log, reopens
        running.stdin.flush()
        assert running.stdout.readline().strip() == "2"
        status = pos_client(data, "queue", "status")
        assert status.returncode == 0, status.stderr
        assert "pending 1, sending 0, acked 2" in status.stdout
        assert "incident" in status.stdout and "deleted" in status.stdout
        assert "every entry kept (pending 0, sending 0, acked 2, dead 0)" in status.stdout
        running.stdin.close()
        assert running.wait(timeout=30) == 0
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    status = pos_client(data, "queue", "status")
    assert "pending 1, sending 0, acked 2" in status.stdout


# ------------------------------------------------------------------ `sync` counts what it killed


def test_sync_reports_the_damaged_entries_it_sent_to_dead_letter(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        session = terminal.checkout.identify(DEMO_MEMBERS[1].card_number)
        keys = [
            terminal.checkout.earn(session, Purchase.of_amount(Decimal(amount))).key
            for amount in ("10.00", "20.00", "30.00")
        ]
        path = terminal.outbox.path
    damage_stored_entry(path, keys[1])

    synced = pos_client(tmp_path, "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert report["acked"] == 2 and report["dead"] == 1  # before: "dead 0"
    text = pos_client(tmp_path, "queue", "status")
    assert "dead 1" in text.stdout


# ------------------------------------------------------------------ a refused enrollment

PHONE = "+447700900789"
FIRST, LAST, BIRTHDAY = "Zebedee", "Quixotovna", date(1987, 6, 5)


class EnrollServer(LoopbackServer):
    """A real HTTP server on loopback answering every operation with `outcome`."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        super().__init__()

    def post(self, payload: Any) -> Answer:
        results = [
            {"key": op["key"], "outcome": self.outcome, "code": "phone_taken", "error": "refused"}
            for op in payload["operations"]
        ]
        return json_answer({"results": results})


@pytest.fixture
def refusing() -> Iterator[EnrollServer]:
    server = EnrollServer("rejected")
    yield server
    server.close()


@pytest.fixture
def applying() -> Iterator[EnrollServer]:
    server = EnrollServer("applied")
    yield server
    server.close()


def enrollment() -> dict[str, object]:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    body = EnrollOp(
        key="01a00000-0000-7000-8000-000000000001",
        member_id="01a00000-0000-7000-8000-000000000002",
        first_name=FIRST,
        last_name=LAST,
        phone_key="",
        phone_last="89",
        card_number="2900000000995",
        consent=Consent("terms-v1", now, "pos", True),
        occurred_at=now,
        birthday=BIRTHDAY,
    ).to_body()
    del body["phone_key"]
    body["phone"] = PHONE  # as a terminal whose server keys the phones sends it
    return body


def on_disk(path: Path) -> bytes:
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(file.read_bytes() for file in files if file.exists())


PERSONAL = (b"7700900789", FIRST.encode(), LAST.encode(), b"1987-06-05", b"2900000000995")


def test_a_refused_enrollment_leaves_no_phone_or_name_on_disk(
    tmp_path: Path, refusing: EnrollServer
) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path).open()
    body = enrollment()
    outbox.add(body)
    outbox.add(sale_body("m1", "1.00"))
    assert all(secret in on_disk(path) for secret in PERSONAL[:4])
    worker = SyncWorker(outbox, HttpBackend(refusing.url, "token", 2.0, 5.0))
    assert worker.drain().dead == 2

    dead = outbox.get(str(body["key"]))
    assert dead is not None and dead.state is EntryState.DEAD
    assert dead.error_code == "phone_taken"
    assert dead.body == {
        "type": "enroll",
        "key": body["key"],
        "member_id": body["member_id"],
        "phone_masked": "+44******789",
        "scrubbed": True,
    }
    assert outbox.requeue_dead() == 1  # the sale; the enrollment has nothing to resend
    found = [secret for secret in PERSONAL if secret in on_disk(path)]
    assert found == [], found  # not in the file, its log or its free pages
    outbox.close()
    found = [secret for secret in PERSONAL if secret in on_disk(path)]
    assert found == [], found


def test_an_acknowledged_enrollment_leaves_no_phone_or_name_on_disk(
    tmp_path: Path, applying: EnrollServer
) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path).open()
    outbox.add(enrollment())
    worker = SyncWorker(outbox, HttpBackend(applying.url, "token", 2.0, 5.0))
    assert worker.drain().acked == 1
    found = [secret for secret in PERSONAL if secret in on_disk(path)]
    assert found == [], found
    outbox.close()


def test_an_enrollment_left_dead_by_an_older_release_is_scrubbed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        outbox.add(enrollment())
    with sqlite3.connect(path) as conn:  # as the previous release left a refused one
        conn.execute("UPDATE entries SET state = 'dead', error_code = 'phone_taken'")
        conn.execute("PRAGMA user_version = 0")  # that release's outboxes had no version
    conn.close()
    assert PERSONAL[0] in on_disk(path)
    with Outbox(path) as outbox:
        (dead,) = outbox.entries(EntryState.DEAD)
        assert dead.body["scrubbed"] is True and "first_name" not in dead.body
        found = [secret for secret in PERSONAL if secret in on_disk(path)]
        assert found == [], found
