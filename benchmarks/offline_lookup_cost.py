"""What one guess at an offline-cache phone key costs a thief with a stolen terminal's files.

The offline member cache keeps phones as scrypt(E.164, salt = the terminal's own key); earlier
versions kept a keyed HMAC-SHA256 under the same key. The key file comes with a stolen
terminal, so the cost of one guess is all that stands between the thief and the phones of
the cached members. Prints, per guess on one core: the old HMAC (ms), the new KDF (ms, MiB),
the ratio, and the core-time to try a region's whole phone space (10^9 numbers by default)
with each. Also: the KDF's time on a background thread beside a busy main thread (the cache
writer's case), to show the GIL is released while it runs; and an embedded terminal's online
phone identify with the KDF on the cache writer (as it runs) beside the same with the KDF
inline, and an offline phone identify (the only lookup that waits for a KDF).

Usage: python benchmarks/offline_lookup_cost.py [--guesses N] [--space 1e9]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import secrets
import statistics
import threading
import time

from pos_client.privacy import OFFLINE_LOOKUP_COST, OfflineLookupKey

SECONDS_PER_YEAR = 365.25 * 24 * 3600


def per_guess_hmac(key: bytes, count: int) -> float:
    """Seconds per HMAC guess (median of 5 runs of `count`)."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for number in range(count):
            hmac.new(key, f"+1650{number:07d}".encode(), hashlib.sha256).hexdigest()
        runs.append((time.perf_counter() - start) / count)
    return statistics.median(runs)


def per_guess_kdf(slow: OfflineLookupKey, count: int) -> list[float]:
    samples = []
    for number in range(count):
        start = time.perf_counter()
        slow.phone_key(f"+1650{number:07d}")
        samples.append(time.perf_counter() - start)
    return samples


def main_thread_progress_during_kdf(slow: OfflineLookupKey) -> tuple[int, float]:
    """Loop iterations the main thread makes while one KDF runs on another thread."""
    done = threading.Event()
    spent: list[float] = []

    def work() -> None:
        start = time.perf_counter()
        slow.phone_key("+16502530001")
        spent.append(time.perf_counter() - start)
        done.set()

    spins = 0
    threading.Thread(target=work, daemon=True).start()
    while not done.is_set():
        spins += 1
    return spins, spent[0]


def identify_by_phone(count: int) -> tuple[float, float, float]:
    """Median ms of an online phone identify on an embedded terminal with the KDF on the
    cache writer (as the terminal runs) and inline (as it would without one), and of an
    offline one (the KDF on the lookup's path: it must be)."""
    import sys
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pos_client.bootstrap import build_terminal
    from pos_client.demo import DEMO_MEMBERS, seed_demo_members
    from pos_client.settings import load_settings

    config = Path(__file__).resolve().parent.parent / "config"
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(None, env={}, config_dir=config)
        data = Path(scratch)
        settings = replace(
            settings,
            storage=replace(settings.storage, data_dir=data),
            phone_key_file=data / "phone.key",
        )
        with build_terminal(settings) as terminal:
            assert terminal.ledger is not None
            seed_demo_members(terminal.ledger, terminal.checkout.hasher)
            checkout = terminal.checkout
            phone = DEMO_MEMBERS[0].phone

            def timed() -> float:
                samples = []
                for _ in range(count):
                    start = time.perf_counter()
                    checkout.identify(phone, "phone")
                    samples.append(time.perf_counter() - start)
                    checkout.settle()  # the next one starts with the writer idle
                return statistics.median(samples) * 1000

            timed()  # warm
            deferred = timed()
            writer, checkout.cache_writer = checkout.cache_writer, None
            inline = timed()
            checkout.cache_writer = writer
            terminal.network.set_online(False)
            offline = timed()
    return deferred, inline, offline


def human(seconds: float) -> str:
    years = seconds / SECONDS_PER_YEAR
    if years >= 1:
        return f"{years:,.1f} core-years"
    if seconds >= 86400:
        return f"{seconds / 86400:,.1f} core-days"
    return f"{seconds / 3600:,.1f} core-hours"


def measure(guesses: int) -> tuple[float, list[float]]:
    """Seconds per HMAC guess, and seconds of each of `guesses` KDF guesses."""
    key = secrets.token_bytes(32)
    return per_guess_hmac(key, 20_000), per_guess_kdf(OfflineLookupKey(key), max(3, guesses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guesses", type=int, default=20, help="KDF guesses to time")
    parser.add_argument("--space", type=float, default=1e9, help="phone numbers to try")
    args = parser.parse_args()
    slow = OfflineLookupKey(secrets.token_bytes(32))
    cost = OFFLINE_LOOKUP_COST
    fast_s, samples = measure(args.guesses)
    kdf_s = statistics.median(samples)
    spins, beside = main_thread_progress_during_kdf(slow)
    print(f"machine: {platform.machine()}, {os.cpu_count()} core(s), {platform.python_version()}")
    print(f"old: HMAC-SHA256            {fast_s * 1000:10.4f} ms per guess")
    print(
        f"new: scrypt n=2^{cost.n.bit_length() - 1} r={cost.r} p={cost.p}"
        f" {kdf_s * 1000:8.1f} ms per guess (min {min(samples) * 1000:.1f},"
        f" max {max(samples) * 1000:.1f}), {cost.memory_bytes / 2**20:.0f} MiB each"
    )
    print(f"ratio: {kdf_s / fast_s:,.0f}x slower per guess")
    print(
        f"brute force of {args.space:,.0f} numbers: old {human(fast_s * args.space)},"
        f" new {human(kdf_s * args.space)}"
    )
    print(
        f"KDF on a background thread: {beside * 1000:.1f} ms, main thread looped {spins:,}"
        " times meanwhile (the GIL is released)"
    )
    deferred, inline, offline = identify_by_phone(10)
    print(
        f"online phone identify (embedded): {deferred:.1f} ms with the KDF on the cache"
        f" writer (as run), {inline:.1f} ms were it inline; offline phone identify"
        f" {offline:.1f} ms (the KDF on its path)"
    )
    print("target: 50-100 ms and >= 16 MiB per guess")


if __name__ == "__main__":
    main()
