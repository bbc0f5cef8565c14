"""Write a data folder as this release leaves it, for the upgrade tests of later releases:
an embedded ledger with the demo members and their history, and an outbox with entries in
every state (pending, acked, dead) and cached members. Run it once per release that changes
a local schema, on that release, and commit the folder:

    .venv/bin/python scripts/release_fixtures.py tests/fixtures/release-2026-11-25

The files are checkpointed (no write-ahead log beside them). Demo data only.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pos_client.bootstrap import build_terminal
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase
from pos_client.settings import load_settings

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    folder: Path = args.folder
    if folder.exists():
        shutil.rmtree(folder)
    data = folder / "data"
    settings = load_settings(None, env={}, config_dir=CONFIG_DIR)
    settings = replace(
        settings,
        program="category_tiers",
        storage=replace(settings.storage, data_dir=data),
        phone_key_file=data / "phone.key",
    )
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher, datetime.now(UTC).date())
        checkout = terminal.checkout
        anna = checkout.identify(DEMO_MEMBERS[0].card_number)
        bob = checkout.identify(DEMO_MEMBERS[1].card_number)
        for amount in ("12.50", "80.00", "7.25"):
            checkout.earn(bob, Purchase.of_amount(Decimal(amount)))
        terminal.sync.drain()  # acked, with results
        checkout.earn(anna, Purchase.of_amount(Decimal("99.99")))
        terminal.network.set_online(False)
        offline = checkout.identify(DEMO_MEMBERS[1].card_number)  # from the member cache
        checkout.earn(offline, Purchase.of_amount(Decimal("5.00")))  # pending
        terminal.network.set_online(True)
        pending = terminal.outbox.entries()[-1]
        terminal.outbox.mark_dead(pending.key, "bad_request", "made dead for the fixture")
        checkout.earn(offline, Purchase.of_amount(Decimal("3.00")))  # stays pending
    for name in ("outbox.sqlite", "ledger.sqlite"):
        with sqlite3.connect(data / name) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
    # No keys in the repository (a test makes its own) and no lock or log files.
    for pattern in ("*-wal", "*-shm", "*.lock", "*.key"):
        for leftover in data.glob(pattern):
            leftover.unlink()
    print(f"wrote {sorted(p.name for p in data.iterdir())} to {data}")


if __name__ == "__main__":
    main()
