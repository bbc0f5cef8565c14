"""/v1/health latency while the server is being abused on loopback: 1,000 bad pairing
guesses and 20 oversized (27 MB declared) bodies per second, side by side with health at
rest, and the ratio (issue 10's goal: p95 under 100 ms). Run twice: with the pairing lockout
as configured by default, and with the lockout off (every guess reaches the database).

Usage: python benchmarks/health_under_abuse.py [--seconds 10] [--rate 1000] [--oversized 20]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loyalty_server.cli import migrate
from tests.integration.server_helpers import ServerProcess

GUESS_THREADS = 4


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def probe_health(server: ServerProcess, token: str, seconds: float) -> list[float]:
    """One health call every 10 ms on a kept-alive connection; latencies in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        conn.request("GET", "/v1/health", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.status
        time.sleep(max(0.0, 0.010 - (time.perf_counter() - started)))
    conn.close()
    return samples


def guesser(port: int, per_second: float, stop: threading.Event, seen: Counter[int]) -> None:
    """Bad pairing codes at a steady pace on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval, n = 1.0 / per_second, 0
    next_at = time.perf_counter()
    while not stop.is_set():
        body = json.dumps({"code": f"BAD{threading.get_ident() % 997:03d}{n:07d}"})
        n += 1
        try:
            conn.request("POST", "/v1/terminals/pair", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            seen[response.status] += 1
        except (OSError, http.client.HTTPException):
            seen[0] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1:
            next_at = time.perf_counter()  # fell behind: do not burst to catch up


def oversized(port: int, per_second: float, stop: threading.Event, seen: Counter[int]) -> None:
    """Bodies declaring 27 MB (the issue's attack), 64 KiB of them actually sent."""
    head = (
        "POST /v1/terminals/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {27 * 1024 * 1024}\r\n\r\n"
    ).encode()
    chunk = b'{"code": "' + b"A" * 65536
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(head)
                with contextlib.suppress(OSError):
                    conn.sendall(chunk)
                answer = conn.recv(256)
            seen[int(answer.split()[1]) if answer else 0] += 1
        except OSError:
            seen[0] += 1
        time.sleep(max(0.0, 1.0 / per_second - (time.perf_counter() - started)))


@dataclass(frozen=True)
class Outcome:
    rest: list[float]  # health latencies, ms
    abused: list[float]
    guesses: Counter[int]  # answers by status (0: connection error)
    bodies: Counter[int]
    elapsed: float  # seconds the attack ran
    tracebacks: int  # in the server's log


def run(work: Path, seconds: float, rate: float, big: float, **env: str) -> Outcome:
    url = f"sqlite+pysqlite:///{work}/server.sqlite"
    migrate(url)
    server = ServerProcess(url, work, **env)
    server.seed()
    server.start()
    try:
        token = server.pair()["token"]
        probe_health(server, token, 1.0)  # warm up
        rest = probe_health(server, token, seconds)
        stop = threading.Event()
        guesses: Counter[int] = Counter()
        bodies: Counter[int] = Counter()
        threads = [
            threading.Thread(
                target=guesser, args=(server.port, rate / GUESS_THREADS, stop, guesses)
            )
            for _ in range(GUESS_THREADS)
        ] + [threading.Thread(target=oversized, args=(server.port, big, stop, bodies))]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        abused = probe_health(server, token, seconds)
        elapsed = time.monotonic() - started + 0.5
        stop.set()
        for thread in threads:
            thread.join()
        log = server.log_path.read_text()
    finally:
        server.stop()
    return Outcome(rest, abused, guesses, bodies, elapsed, log.count("Traceback"))


def line(name: str, samples: list[float]) -> str:
    return (
        f"{name:<34} p50 {statistics.median(samples):6.1f} ms   p95 {pct(samples, 0.95):6.1f} ms"
        f"   ({len(samples)} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="bad pairing guesses/s")
    parser.add_argument("--oversized", type=float, default=20.0, help="oversized bodies/s")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; SQLite; loopback; {args.seconds:.0f} s per phase; "
        f"attack: {args.rate:.0f} bad pairing guesses/s + {args.oversized:.0f} oversized bodies/s"
    )
    modes = {
        "lockout on (default: 10 failures/min)": {},
        "lockout off (every guess read)": {
            "LOYALTY_SERVER_PAIRING_FAILURES_PER_MINUTE": "1000000000"
        },
    }
    for mode, env in modes.items():
        with tempfile.TemporaryDirectory() as scratch:
            result = run(Path(scratch), args.seconds, args.rate, args.oversized, **env)
        rest, abused, guesses, bodies = result.rest, result.abused, result.guesses, result.bodies
        elapsed = result.elapsed
        print(f"\n{mode}")
        print(line("  health at rest", rest))
        print(line("  health under abuse", abused))
        ratio = pct(abused, 0.95) / pct(rest, 0.95)
        verdict = "met" if pct(abused, 0.95) < 100 else "NOT met"
        print(f"  p95 ratio abuse/rest: {ratio:.2f}x; goal p95 < 100 ms: {verdict}")
        print(
            f"  guesses answered: {sum(guesses.values()) / elapsed:6.0f}/s of {args.rate:.0f}/s "
            "offered "
            f"(answers {dict(sorted(guesses.items()))}); oversized: "
            f"{sum(bodies.values()) / elapsed:4.1f}/s (answers {dict(sorted(bodies.items()))}); "
            f"tracebacks in the server log: {result.tracebacks}"
        )


if __name__ == "__main__":
    main()
