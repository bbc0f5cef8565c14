"""A terminal process for the crash test: records sales while its sync thread drains them.

Prints "confirmed KEY" only after Checkout.earn returned (the sale is durable); the parent
kills this process with SIGKILL at a random moment.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from pos_client.bootstrap import build_terminal
from pos_client.domain import Purchase
from pos_client.sync import SyncPolicy
from tests.conftest import make_settings


def main(data_dir: str, card: str, seed: int) -> None:
    rng = random.Random(seed)
    settings = make_settings(Path(data_dir))
    settings = replace(settings, sync=replace(settings.sync, interval_s=0.01, batch_size=7))
    terminal = build_terminal(settings)
    terminal.sync.policy = SyncPolicy(
        batch_size=7, interval_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.05
    )
    terminal.sync.start()
    session = terminal.checkout.identify(card, hint="barcode")
    print("ready", flush=True)
    while True:
        amount = Decimal(rng.randint(100, 50_000)) / 100
        receipt = terminal.checkout.earn(session, Purchase.of_amount(amount))
        sys.stdout.write(f"confirmed {receipt.key}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
