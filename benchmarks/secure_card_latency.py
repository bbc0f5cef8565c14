"""Secure card (NTAG 424 DNA) latency: from a card presented to the member verified, beside a
plain UID read in the same run, through the real stacks.

A virtual card connects to vpcd inside a real pcscd; the terminal's PC/SC driver reads it
and the member is found:
  uid, embedded       a plain NTAG's UID (FF CA) -> ScanEvent -> the terminal's ledger
  secure, embedded    an issued NTAG 424 DNA's SUN URL (SELECT, SELECT, READ BINARY x2)
                      -> ScanEvent -> verified with the card keys and the read counter
                      accepted in the terminal's own ledger (SQLite, fsync)
  uid, server         the same UID -> POST /v1/members/lookup to a real server on loopback
  secure, server      the same SUN URL -> POST /v1/cards/tap (the server verifies, records
                      the counter) on that server
Each is timed from the card's insertion to the member's view in hand; the read alone
(insertion to the driver's event) is printed beside it.

Needs root, pcscd and vsmartcard-vpcd (make test installs them).
Usage: python benchmarks/secure_card_latency.py [--taps 50]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reader_latency import Timed, pct, row

BASE = "https://loyalty.example/c"
READER = "Virtual PCD 00 00"
KEYS_TOML = (
    f'meta_read_key = "{secrets.token_hex(16)}"\nfile_read_key = "{secrets.token_hex(16)}"\n'
    f'diversify = true\nsystem_identifier = "4C4F59414C"\n'
    f'card_master_key = "{secrets.token_hex(16)}"\n'
)


def measure(
    taps: int, card_for: Callable[[int], Any], secure: bool, find: Callable[[Any], Any]
) -> tuple[list[float], list[float]]:
    """(presented -> member, presented -> driver event) for `taps` presentations."""
    from drivers.pcsc import PcscReader

    sink = Timed()
    options = {"reader": READER, "debounce_s": 0, "secure_cards": secure}
    whole, read = [], []
    with PcscReader("bench", options, sink):
        sink.status("connected")
        for index in range(taps):
            card = card_for(index)
            start = time.perf_counter()
            card.insert()
            at, event = sink.scan()
            view = find(event)
            done = time.perf_counter()
            assert view is not None, event
            whole.append(done - start)
            read.append(at - start)
            card.remove()
    return whole, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", type=int, default=50)
    args = parser.parse_args()

    from tests.integration.vpcd import (
        ISO_DEP_ATR,
        ForeignPcscd,
        PcscDaemon,
        VirtualCard,
        pcsc_unavailable_reason,
    )

    reason = pcsc_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    from loyalty_server.cli import migrate
    from pos_client.backends.embedded import EmbeddedBackend
    from pos_client.backends.http import HttpBackend
    from pos_client.demo import DEMO_MEMBERS
    from pos_client.ntag424 import issue_card
    from pos_client.sun import load_sun_keys
    from tests.integration.server_helpers import ServerProcess
    from tests.virtual_ntag424 import VirtualNtag424

    anna = DEMO_MEMBERS[0]
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        keys_path = work / "card-keys.toml"
        keys_path.write_text(KEYS_TOML)
        keys_path.chmod(0o600)
        keys = load_sun_keys(keys_path)
        ntag = VirtualNtag424(uid=bytes.fromhex("04B3E5C7D9EB80"))
        issue_card(ntag.answer, keys, BASE, secrets.token_bytes)
        secure_uid = ntag.uid.hex().upper()

        daemon = PcscDaemon(work / "pcscd")
        try:
            daemon.start()
        except ForeignPcscd as exc:
            print(f"skipped: {exc}")
            return
        server: ServerProcess | None = None
        try:
            server_url = "sqlite+pysqlite:///" + str(work / "server.sqlite")
            migrate(server_url)
            server = ServerProcess(
                server_url,
                work,
                LOYALTY_SERVER_SUN_KEYS_FILE=str(keys_path),
                LOYALTY_SERVER_LOOKUPS_PER_MINUTE="100000",
            )
            server.seed()
            ledger = server.ledger()
            anna_id = ledger.find_member_id("card_number", anna.card_number)
            assert anna_id is not None
            ledger.link_identifier(anna_id, "secure_card_uid", secure_uid)
            ledger.engine.dispose()
            server.start()
            http = HttpBackend(server.url, server.pair()["token"])

            # The terminal's own ledger: a copy of the server's members, its own counters.
            terminal = ServerProcess(
                "sqlite+pysqlite:///" + str(work / "terminal.sqlite"), work / "t"
            )
            (work / "t").mkdir()
            own = terminal.ledger()
            own.create_schema()
            terminal.seed()
            own_anna = own.find_member_id("card_number", anna.card_number) or ""
            own.link_identifier(own_anna, "secure_card_uid", secure_uid)
            embedded = EmbeddedBackend(own, keys)

            def plain(_index: int) -> Any:
                return VirtualCard(uid=bytes.fromhex(anna.card_uid or ""))

            def issued(_index: int) -> Any:
                return VirtualCard(uid=ntag.uid, atr=ISO_DEP_ATR, ntag424=ntag)

            # As the terminal asks: the message with the UID the reader saw beside it.
            results = {
                "uid, embedded ledger": measure(
                    args.taps, plain, False, lambda e: embedded.lookup("card_uid", e.value)
                ),
                "secure card, embedded ledger": measure(
                    args.taps, issued, True, lambda e: embedded.tap(e.value, e.raw or None)
                ),
                "uid, store server (loopback)": measure(
                    args.taps, plain, False, lambda e: http.lookup("card_uid", e.value)
                ),
                "secure card, store server (loopback)": measure(
                    args.taps, issued, True, lambda e: http.tap(e.value, e.raw or None)
                ),
            }
            http.close()
            own.engine.dispose()
        finally:
            daemon.stop()
            if server is not None:
                server.stop()

    print(f"machine: {os.cpu_count()} cores; {args.taps} taps each; presented -> member verified")
    print(f"{'':<44} {'p50 ms':>9} {'p95 ms':>9} {'n':>6}")
    for name, (whole, read) in results.items():
        print(row(name, whole))
        print(row("  detection and card read (driver event)", read))
        print(row("  event -> member verified", [w - r for w, r in zip(whole, read, strict=True)]))
    for where in ("embedded ledger", "store server (loopback)"):
        secure_whole, secure_read = results[f"secure card, {where}"]
        uid_whole, uid_read = results[f"uid, {where}"]
        check = pct([w - r for w, r in zip(secure_whole, secure_read, strict=True)], 0.5)
        lookup = pct([w - r for w, r in zip(uid_whole, uid_read, strict=True)], 0.5)
        whole_ratio = pct(secure_whole, 0.5) / pct(uid_whole, 0.5)
        read_ratio = pct(secure_read, 0.5) / pct(uid_read, 0.5)
        print(
            f"ratio secure card / uid, {where} (p50): whole {whole_ratio:.2f}x, "
            f"read {read_ratio:.2f}x, "
            f"event -> member {check / lookup:.2f}x"
        )
    print(
        "(detection is vpcd's: pcscd polls the virtual reader; the secure read adds its APDUs: "
        "SELECT, SELECT, READ BINARY x2)"
    )


if __name__ == "__main__":
    main()
