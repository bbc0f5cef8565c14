"""Peak memory of the server under the reviewer's amplification attack (issue 10, hostile
input, item 1): N parallel batches, each one valid sale plus `"x": [{}, {}, ...]` just
inside the 2 MiB body limit, with /v1/health probed meanwhile. Prints the server process's
RSS at rest, its peak (VmHWM) and after, the answers' statuses, and health's p50/p95/max.
The server runs with its default limits (MAX_BATCH 500).

Usage: python benchmarks/batch_memory.py [--parallel 16] [--rounds 1] [--just-under]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loyalty_server.cli import migrate
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase, uuid7
from pos_client.operations import SaleOp
from tests.integration.server_helpers import ServerProcess


def rss_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def attack_body(member_id: str, values: int | None = None) -> bytes:
    sale = SaleOp(
        uuid7(), member_id, "T", datetime.now(UTC), Purchase.of_amount(Decimal("1.00"))
    ).to_body()
    head = json.dumps({"operations": [sale]})[:-3] + ', "x": ['
    room = 2 * 1024 * 1024 - len(head) - 16
    return (head + ",".join(["{}"] * (values or room // 3)) + "]}]}").encode()


def post(port: int, token: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST",
            "/v1/operations/batch",
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def probe(port: int, token: str, stop: threading.Event, samples: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("GET", "/v1/health", headers={"Authorization": f"Bearer {token}"})
        conn.getresponse().read()
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--just-under",
        action="store_true",
        help="empty objects just under the server's bound on JSON values (the worst body "
        "it parses), not as many as 2 MiB holds",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        url = f"sqlite+pysqlite:///{work}/server.sqlite"
        migrate(url)
        server = ServerProcess(url, work)
        server.seed()
        server.start()
        assert server.process is not None
        pid = server.process.pid
        try:
            token = server.pair()["token"]
            member = server.ledger().find_member_id("card_number", DEMO_MEMBERS[0].card_number)
            assert member is not None
            values = None
            if args.just_under:
                from loyalty_server.bodies import max_values
                from loyalty_server.settings import ServerSettings

                # Counted as a bracket and a comma each: half the bound, less the sale's own.
                bound = max_values(ServerSettings.max_batch, ServerSettings.max_lines_per_sale)
                values = bound // 2 - 30
            bodies = [attack_body(member, values) for _ in range(args.parallel)]
            rest = rss_mb(pid, "VmRSS")
            samples: list[float] = []
            stop = threading.Event()
            prober = threading.Thread(target=probe, args=(server.port, token, stop, samples))
            prober.start()
            statuses: Counter[int] = Counter()
            for _ in range(args.rounds):
                threads = []
                for body in bodies:

                    def send(body: bytes = body) -> None:
                        statuses[post(server.port, token, body)] += 1

                    threads.append(threading.Thread(target=send))
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            time.sleep(0.5)
            stop.set()
            prober.join()
            peak, after = rss_mb(pid, "VmHWM"), rss_mb(pid, "VmRSS")
        finally:
            server.stop()
        tracebacks = server.log_path.read_text().count("Traceback")
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(
        f"{args.parallel} parallel x {args.rounds} attack bodies of "
        f"{len(bodies[0]) / 1e6:.2f} MB: answers {dict(statuses)}"
    )
    print(f"server RSS: at rest {rest:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")
    print(
        f"/v1/health meanwhile ({len(samples)} calls): p50 {statistics.median(samples):.1f} "
        f"ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms; tracebacks in the log: {tracebacks}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
