"""The outbox's disk full or read-only: the terminal says so, refuses new sales rather than
losing them, keeps what it already has, and carries on once the disk is back."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from pos_client.bootstrap import Terminal
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase
from pos_client.outbox import Outbox, OutboxUnavailable
from tests.integration.ledger_helpers import sale_body

BOB = DEMO_MEMBERS[1]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), so the disk really fills up."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_a_full_disk_refuses_new_sales_and_loses_none(tiny_disk: Path) -> None:
    outbox = Outbox(tiny_disk / "outbox.sqlite").open()
    filler = tiny_disk / "filler"
    filler.write_bytes(b"x" * 600_000)
    kept, error = [], None
    for _ in range(5000):
        try:
            kept.append(outbox.add(sale_body("m1", "1.00")).key)
        except OutboxUnavailable as exc:
            error = str(exc)
            break
    assert error is not None and "disk is full" in error
    assert len(kept) > 10
    for _ in range(20):  # every further sale is refused, none half-written
        with pytest.raises(OutboxUnavailable, match="disk is full"):
            outbox.add(sale_body("m1", "2.00"))
    assert [e.key for e in outbox.entries(limit=10_000)][::-1] == kept
    filler.unlink()  # space freed: carry on
    assert outbox.add(sale_body("m1", "3.00")).key
    assert outbox.integrity_check() == "ok"
    outbox.close()
    with Outbox(tiny_disk / "outbox.sqlite") as reopened:
        assert reopened.stats().pending == len(kept) + 1


def test_a_read_only_outbox_refuses_new_sales_with_a_clear_message(terminal: Terminal) -> None:
    assert terminal.ledger is not None
    seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    session = terminal.checkout.identify(BOB.card_number)
    kept = terminal.checkout.earn(session, Purchase.of_amount(Decimal("1.00"))).key
    path = terminal.outbox.path
    terminal.outbox.close()
    terminal.outbox._conn = sqlite3.connect(  # the file system refusing writes
        f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    with pytest.raises(OutboxUnavailable, match="read-only"):
        terminal.checkout.earn(session, Purchase.of_amount(Decimal("1.00")))
    assert [e.key for e in terminal.outbox.entries()] == [kept]
