"""Terminals' heartbeats: a real terminal syncing with a real server process sends its
state, kept as its last heartbeat; the fleet and dead-letter reads the console shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty_server.heartbeats import (
    SILENT_AFTER_S,
    HeartbeatIn,
    dead_letters,
    fleet,
    readers_text,
    record_heartbeat,
)
from loyalty_server.terminals import add_terminal, revoke
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase, utcnow, uuid7
from pos_client.events import ReaderStatus
from pos_client.heartbeat import app_version
from pos_client.ledger import make_engine
from pos_client.operations import SaleOp
from pos_client.outbox import EntryState
from pos_client.sync import SyncPolicy
from tests.integration.server_helpers import ServerProcess, http_terminal

ANNA = DEMO_MEMBERS[0]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path)
    process.seed()
    process.start()
    yield process
    process.stop()


def beat(**fields: object) -> HeartbeatIn:
    body: dict[str, object] = {
        "app_version": "0.1.0",
        "mode": "cashier",
        "pending": 0,
        "dead": 0,
        "oldest_pending_s": None,
        "readers": [],
        "dead_entries": [],
    }
    body.update(fields)
    return HeartbeatIn.model_validate(body)


def sale(member_id: str, amount: str = "5.00") -> dict[str, object]:
    return SaleOp(uuid7(), member_id, "T", utcnow(), Purchase.of_amount(Decimal(amount))).to_body()


def test_a_syncing_terminal_reports_its_outbox_readers_version_and_mode(
    server: ServerProcess, tmp_path: Path
) -> None:
    with http_terminal(server, tmp_path / "till", TERMINAL__MODE="kiosk") as terminal:
        anna = terminal.checkout.identify("]E0" + ANNA.card_number).view.member_id
        outbox = terminal.outbox
        refused = outbox.add(sale("no-such-member")).key  # claimed first: dead letter
        acked = outbox.add(sale(anna)).key
        waiting = [outbox.add(sale(anna)).key for _ in range(3)]
        terminal.bus.publish(ReaderStatus("pcsc:ACS ACR122U 00 00", "connected", "/dev/x"))
        terminal.bus.publish(ReaderStatus("serial:front", "error", "unplugged"))
        terminal.sync.policy = SyncPolicy(batch_size=2)
        report = terminal.sync.drain(max_batches=1)  # two sent, three left pending
        assert (report.acked, report.dead, report.online) == (1, 1, True)
        assert outbox.get(refused).state is EntryState.DEAD  # type: ignore[union-attr]
        assert outbox.get(acked).state is EntryState.ACKED  # type: ignore[union-attr]
        policy = terminal.sync.heartbeat
        assert policy is not None and policy.runner is not None
        policy.runner.flush()  # sent on the heartbeat's own thread
        # A second pass within 30 s sends none.
        terminal.sync.drain(max_batches=0)
        assert not terminal.sync.send_heartbeat()

    engine = make_engine(server.database_url)
    try:
        rows = [row for row in fleet(engine, utcnow()) if row.name == "till"]
        letters = dead_letters(engine, utcnow())
    finally:
        engine.dispose()
    assert len(rows) == 1
    row = rows[0]
    assert row.received_at is not None and row.silent_s is not None and row.silent_s < 60
    assert (row.app_version, row.mode) == (app_version(), "kiosk")
    assert (row.pending, row.dead_count) == (len(waiting), 1)
    assert row.oldest_pending_s is not None and 0 <= row.oldest_pending_s < 60
    assert row.readers == (("pcsc:ACS ACR122U 00 00", "connected"), ("serial:front", "error"))
    assert [note.key for note in row.dead] == [refused]
    assert row.dead[0].reason.startswith("unknown_member")
    assert row.stands_out  # it holds a dead entry
    assert [(d.terminal_name, d.key) for d in letters] == [("till", refused)]
    assert "unknown_member" in letters[0].reason
    log = server.log_path.read_text()
    assert refused not in log and "Traceback" not in log


def test_a_heartbeat_is_kept_once_per_terminal_with_the_servers_time(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        desk, _code = add_terminal(engine, "desk", 600)
        record_heartbeat(engine, desk, beat(pending=4), T0)
        record_heartbeat(
            engine,
            desk,
            beat(
                mode="kiosk",
                pending=2,
                dead=1,
                oldest_pending_s=90,
                readers=[{"name": "pcsc", "status": "ready"}],
                dead_entries=[{"key": "k-1", "reason": "limit_amount: too much", "age_s": 30}],
            ),
            T0 + timedelta(minutes=1),
        )
        (row,) = fleet(engine, T0 + timedelta(minutes=3))
    finally:
        engine.dispose()
    assert row.received_at == T0 + timedelta(minutes=1)
    assert (row.mode, row.pending, row.dead_count, row.oldest_pending_s) == ("kiosk", 2, 1, 90)
    assert row.readers == (("pcsc", "ready"),)
    assert row.silent_s == 120.0


def test_the_fleet_tells_which_terminals_stand_out(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        ids = {name: add_terminal(engine, name, 600)[0] for name in "abcde"}
        now = T0 + timedelta(hours=1)
        record_heartbeat(engine, ids["a"], beat(), now - timedelta(minutes=1))  # fine
        record_heartbeat(engine, ids["b"], beat(), now - timedelta(minutes=20))  # silent
        record_heartbeat(  # holds a dead entry
            engine,
            ids["c"],
            beat(dead=1, dead_entries=[{"key": "c-1", "reason": "no member", "age_s": 100}]),
            now - timedelta(minutes=2),
        )
        # d: never heard from
        record_heartbeat(  # revoked: never stands out, its dead entries not listed
            engine,
            ids["e"],
            beat(dead=1, dead_entries=[{"key": "e-1", "reason": "no member", "age_s": 5}]),
            now - timedelta(hours=1),
        )
        revoke(engine, ids["e"])
        rows = {row.name: row for row in fleet(engine, now)}
        longer = {row.name: row.stands_out for row in fleet(engine, now, silent_after_s=3600)}
        letters = dead_letters(engine, now)
    finally:
        engine.dispose()
    assert list(rows) == ["a", "b", "c", "d", "e"]  # by name, revoked last
    assert {name: row.stands_out for name, row in rows.items()} == {
        "a": False,
        "b": True,
        "c": True,
        "d": True,
        "e": False,
    }
    assert rows["b"].silent_s == 1200.0 and rows["b"].silent_after_s == SILENT_AFTER_S
    assert rows["d"].received_at is None and rows["d"].silent_s is None
    assert rows["d"].pending is None and rows["d"].readers == () and rows["d"].dead == ()
    assert rows["e"].revoked_at is not None
    assert longer == {"a": False, "b": False, "c": True, "d": True, "e": False}
    assert [(d.terminal_id, d.terminal_name, d.key, d.reason, d.age_s) for d in letters] == [
        (ids["c"], "c", "c-1", "no member", 100)
    ]
    assert letters[0].since_heartbeat_s == 120.0 and letters[0].age_now_s == 220.0


def test_readers_are_kept_within_their_column_whatever_they_are_called(
    database_url: str,
) -> None:
    readers = [{"name": f'{i}"' + "n" * 58, "status": "\\" * 60} for i in range(8)]
    assert len(readers_text([(r["name"], r["status"]) for r in readers])) <= 400
    engine = make_engine(database_url)
    try:
        desk, _code = add_terminal(engine, "desk", 600)
        record_heartbeat(engine, desk, beat(readers=readers), T0)  # VARCHAR(400) on PostgreSQL
        (row,) = fleet(engine, T0)
    finally:
        engine.dispose()
    assert len(row.readers) == 8
    assert all(name.startswith(f'{i}"') for i, (name, _s) in enumerate(row.readers))
