"""A terminal process for the crash test: records sales while its sync thread drains them
(to the embedded ledger, or to a store server when POS_CLIENT__BACKEND__KIND=http).

Prints "confirmed KEY" only after Checkout.earn returned (the sale is durable); the parent
kills this process with SIGKILL at a random moment. Settings come from the environment.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal

from pos_client.bootstrap import build_terminal
from pos_client.domain import Purchase
from pos_client.settings import load_settings
from pos_client.sync import SyncPolicy


def main(card: str, seed: int) -> None:
    rng = random.Random(seed)
    terminal = build_terminal(load_settings())
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
        time.sleep(rng.uniform(0, 0.004))  # a busy till, not a tight loop


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
