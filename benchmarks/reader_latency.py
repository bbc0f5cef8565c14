"""Reader latency through the real stacks, each beside its bare limit in the same run.

  tap-to-event: a virtual card connects to vpcd inside a real pcscd -> the PC/SC driver's
                ScanEvent (100 taps), beside (a) a bare SCardGetStatusChange loop that
                waits for the same insertion and reads the UID, and (b) a bare pyscard
                transmit of FF CA 00 00 00 on a connected card.
  scan-to-event: a line written to a pty -> the serial driver's ScanEvent (1,000 lines),
                beside a bare os.read() of the same line from the pty.

Needs root, pcscd and vsmartcard-vpcd for the PC/SC part (skipped with a reason if not).
Usage: python benchmarks/reader_latency.py [--taps 100] [--lines 1000]
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pos_client.events import ReaderStatus, ScanEvent


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(name: str, samples: list[float]) -> str:
    return (
        f"{name:<44} {pct(samples, 0.5) * 1e3:>9.3f} {pct(samples, 0.95) * 1e3:>9.3f}"
        f" {len(samples):>6}"
    )


class Timed:
    def __init__(self) -> None:
        self.items: queue.Queue[tuple[float, Any]] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.items.put((time.perf_counter(), event))

    def scan(self, timeout: float = 10.0) -> tuple[float, ScanEvent]:
        deadline = time.monotonic() + timeout
        while True:
            at, event = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(event, ScanEvent) and event.kind not in ("removed",):
                return at, event

    def status(self, state: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            _at, event = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(event, ReaderStatus) and event.state == state:
                return


def bench_pcsc(taps: int) -> list[str]:
    samples = pcsc_samples(taps)
    if isinstance(samples, str):
        return [f"PC/SC skipped: {samples}"]
    driver_samples, bare_samples, transmit_samples = samples
    ratio = pct(driver_samples, 0.5) / pct(bare_samples, 0.5)
    return [
        row("tap-to-event, PC/SC driver (real pcscd)", driver_samples),
        row("  limit: bare GetStatusChange + UID read", bare_samples),
        row("  limit: bare pyscard transmit FF CA", transmit_samples),
        f"  ratio driver / bare detection+read (p50): {ratio:.2f}x",
    ]


def pcsc_samples(taps: int) -> tuple[list[float], list[float], list[float]] | str:
    """(driver tap-to-event, bare detection + UID read, bare transmit), or why skipped."""
    from tests.integration.vpcd import (
        PcscDaemon,
        VirtualCard,
        pcsc_unavailable_reason,
        wait_reader_empty,
    )

    reason = pcsc_unavailable_reason()
    if reason:
        return reason
    from smartcard import scard

    from drivers.pcsc import GET_UID, PcscReader

    reader_name = "Virtual PCD 00 00"
    with tempfile.TemporaryDirectory() as work:
        daemon = PcscDaemon(Path(work))
        daemon.start()
        try:
            sink = Timed()
            driver = PcscReader("bench", {"reader": reader_name, "debounce_s": 0}, sink)
            driver_samples = []
            with driver:
                sink.status("connected")
                for index in range(taps):
                    card = VirtualCard(uid=index.to_bytes(4, "big") + b"\x04\x05\x06")
                    start = time.perf_counter()
                    card.insert()
                    at, event = sink.scan()
                    assert event.kind == "nfc", event
                    driver_samples.append(at - start)
                    card.remove()

            bare_samples, transmit_samples = [], []
            _hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            for index in range(taps):
                card = VirtualCard(uid=index.to_bytes(4, "big") + b"\x07\x08\x09")
                state = scard.SCARD_STATE_UNAWARE
                _hr, states = scard.SCardGetStatusChange(context, 0, [(reader_name, state)])
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                start = time.perf_counter()
                card.insert()
                while not state & scard.SCARD_STATE_PRESENT:
                    _hr, states = scard.SCardGetStatusChange(context, 1000, [(reader_name, state)])
                    state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                _hr, handle, protocol = scard.SCardConnect(
                    context,
                    reader_name,
                    scard.SCARD_SHARE_SHARED,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                )
                scard.SCardTransmit(handle, protocol, GET_UID)
                bare_samples.append(time.perf_counter() - start)
                if index == 0:
                    for _ in range(taps):
                        t0 = time.perf_counter()
                        scard.SCardTransmit(handle, protocol, GET_UID)
                        transmit_samples.append(time.perf_counter() - t0)
                scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
                card.remove(wait=False)
                wait_reader_empty()
            scard.SCardReleaseContext(context)
        finally:
            daemon.stop()
    return driver_samples, bare_samples, transmit_samples


def bench_serial(lines: int) -> list[str]:
    driver_samples, bare_samples = serial_samples(lines)
    ratio = pct(driver_samples, 0.5) / pct(bare_samples, 0.5)
    return [
        row("scan-to-event, serial driver (pty)", driver_samples),
        row("  limit: bare pty write + os.read", bare_samples),
        f"  ratio driver / bare read (p50): {ratio:.2f}x",
    ]


def serial_samples(lines: int) -> tuple[list[float], list[float]]:
    from drivers.serial_scanner import SerialScanner

    master, slave = os.openpty()
    sink = Timed()
    driver_samples = []
    with SerialScanner("bench", {"port": os.ttyname(slave), "suffix": "CR"}, sink):
        sink.status("connected")
        for index in range(lines):
            payload = f"]E0{4006381333931 + index}\r".encode()
            start = time.perf_counter()
            os.write(master, payload)
            at, _event = sink.scan()
            driver_samples.append(at - start)
    os.close(master)
    os.close(slave)

    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    bare_samples = []
    for index in range(lines):
        payload = f"]E0{4006381333931 + index}\r".encode()
        start = time.perf_counter()
        os.write(master, payload)
        received = b""
        while not received.endswith(b"\r"):
            received += os.read(slave, 64)
        bare_samples.append(time.perf_counter() - start)
    os.close(master)
    os.close(slave)
    return driver_samples, bare_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", type=int, default=100)
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    print(f"{'':<44} {'p50 ms':>9} {'p95 ms':>9} {'n':>6}")
    for line in bench_serial(args.lines) + bench_pcsc(args.taps):
        print(line, flush=True)


if __name__ == "__main__":
    main()
