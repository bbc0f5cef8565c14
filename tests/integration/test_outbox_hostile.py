"""A damaged outbox entry that is still valid JSON never reaches the server and never
stalls the queue; a server that leaves a sent key without a result cannot keep it pending
for ever. On a real outbox file edited with sqlite3 and a real HTTP server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pos_client.backends.http import HttpBackend
from pos_client.domain import Consent, uuid7
from pos_client.operations import EnrollOp
from pos_client.outbox import CORRUPT_ENTRY, SCHEMA_VERSION, EntryState, Outbox
from pos_client.sync import NO_RESULT, SyncPolicy, SyncWorker
from tests.conftest import REPO
from tests.integration.ledger_helpers import action_body, sale_body
from tests.integration.server_helpers import Answer, LoopbackServer, json_answer


class RecordingServer(LoopbackServer):
    """Applies every operation under the key its body carries; `skip` keys get no result."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.skip: set[str] = set()
        super().__init__()

    def post(self, payload: Any) -> Answer:
        keys = [str(operation.get("key")) for operation in payload["operations"]]
        self.applied += keys
        results = [{"key": k, "outcome": "applied"} for k in keys if k not in self.skip]
        return json_answer({"results": results})


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    running = RecordingServer()
    yield running
    running.close()


def damage(path: Path, key: str, body: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET body = ? WHERE key = ?", (body, key))
    conn.close()


def worker(outbox: Outbox, url: str, max_server_errors: int = 5) -> SyncWorker:
    return SyncWorker(
        outbox,
        HttpBackend(url, "token", 2.0, 5.0),
        policy=SyncPolicy(backoff_base_s=30, backoff_cap_s=30, max_server_errors=max_server_errors),
        rand=lambda: 1.0,
    )


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(lambda key, other: "{}", id="empty-object"),
        pytest.param(lambda key, other: "[1, 2]", id="a-list"),
        pytest.param(lambda key, other: json.dumps({**other, "key": key}), id="another-kind"),
        pytest.param(lambda key, other: json.dumps({"type": "sale", "key": key}), id="no-fields"),
    ],
)
def test_a_valid_json_but_damaged_body_goes_dead_as_corrupt_and_the_queue_moves(
    tmp_path: Path, server: RecordingServer, make_body: object
) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2, 3)]
    damage(path, keys[1], make_body(keys[1], action_body("m1", "visit")))  # type: ignore[operator]
    with Outbox(path) as outbox:
        report = worker(outbox, server.url).drain()
        assert report.acked == 2 and report.dead == 1
        dead = outbox.get(keys[1])
        assert dead is not None and dead.state is EntryState.DEAD
        assert dead.error_code == CORRUPT_ENTRY
        assert outbox.stats().unsent == 0
    assert server.applied == [keys[0], keys[2]]  # never sent


def test_a_body_under_another_key_is_never_applied_by_the_server(
    tmp_path: Path, server: RecordingServer
) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2)]
    stranger = sale_body("m1", "9.00")
    damage(path, keys[1], json.dumps(stranger))
    with Outbox(path) as outbox:
        report = worker(outbox, server.url).drain()
        dead = outbox.get(keys[1])
        assert dead is not None and dead.state is EntryState.DEAD
        assert dead.error_code == CORRUPT_ENTRY and "key" in (dead.last_error or "")
    assert report.acked == 1 and stranger["key"] not in server.applied


def test_a_key_the_server_never_answers_goes_dead_after_bounded_retries(
    tmp_path: Path, server: RecordingServer
) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2)]
        server.skip.add(keys[0])
        sync = worker(outbox, server.url, max_server_errors=3)
        assert sync.drain().acked == 1
        for _ in range(5):
            outbox.make_due()
            sync.drain()
        entry = outbox.get(keys[0])
        assert entry is not None and entry.state is EntryState.DEAD
        assert entry.error_code == NO_RESULT and "3 times" in (entry.last_error or "")
        later = outbox.add(sale_body("m1", "4.00")).key
        assert sync.drain().acked == 1 and later in server.applied


CARD = "2969632977389"


def enrollment_body() -> dict[str, object]:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    return EnrollOp(
        key=uuid7(),
        member_id=uuid7(),
        first_name="Dana",
        last_name="Kay",
        phone_key="ab" * 32,
        phone_last="89",
        card_number=CARD,
        consent=Consent("terms-v1", now, "pos", True),
        occurred_at=now,
    ).to_body()


def on_disk(path: Path) -> bytes:
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def test_an_acknowledged_enrollment_keeps_only_the_last_4_of_its_card_number(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        first, second = (str(outbox.add(enrollment_body()).key) for _ in range(2))
        outbox.ack_many([(first, {"member_id": "m", "card_number": CARD, "balance": 0})])
        outbox.claim(10)
        outbox.ack(second, {"member_id": "m2", "card_number": CARD})
        for key in (first, second):
            entry = outbox.get(key)
            assert entry is not None and entry.result is not None
            assert entry.result["card_number"] == "*********7389"
    assert CARD.encode() not in on_disk(path)


def test_a_card_number_an_older_release_kept_whole_is_masked_on_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        key = str(outbox.add(enrollment_body()).key)
        sale = outbox.add(sale_body("m1", "1.00")).key
        outbox.ack_many([(key, {"member_id": "m"}), (sale, {"balance": 3})])
    with sqlite3.connect(path) as conn:  # as an older release stored it
        conn.execute(
            "UPDATE entries SET result = ? WHERE key = ?",
            (json.dumps({"member_id": "m", "card_number": CARD}, separators=(",", ":")), key),
        )
        conn.execute("UPDATE entries SET result = 'not json' WHERE key = ?", (sale,))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")  # before the masking step
    conn.close()
    with Outbox(path) as outbox:
        entry = outbox.get(key)
        assert entry is not None and entry.result == {
            "member_id": "m",
            "card_number": "*********7389",
        }
    assert CARD.encode() not in on_disk(path)


def test_doctor_names_a_damaged_unsent_entry_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with Outbox(data / "outbox.sqlite") as outbox:
        keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2, 3)]
    damage(data / "outbox.sqlite", keys[1], "{}")
    doctor = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(data), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POS_CLIENT__ADMIN__PIN": "97531"},
    )
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr, doctor.stdout
    assert "BAD outbox entries: 1 unsent entry damaged (seq 2)" in doctor.stdout
    with Outbox(data / "outbox.sqlite") as outbox:
        assert outbox.stats().unsent == 3  # doctor only looks
