"""The serial scanner driver on real ptys: a test writes bytes like a scanner would."""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("serial", reason="pyserial (the 'serial' extra) is not installed")

from drivers.serial_scanner import SerialScanner
from pos_client.events import ReaderStatus, ScanEvent


class Pty:
    """A pty pair behind a stable symlink, like /dev/serial/by-id/... for a USB scanner."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)
        self.link.unlink(missing_ok=True)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)


class Sink:
    def __init__(self) -> None:
        self.events: queue.Queue[Any] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.events.put(event)

    def next(self, kind: type, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(event, kind):
                return event

    def scans(self, count: int, timeout: float = 5.0) -> list[ScanEvent]:
        return [self.next(ScanEvent, timeout) for _ in range(count)]


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[tuple[Pty, Sink, SerialScanner]]:
    pty = Pty(tmp_path / "scanner")
    sink = Sink()
    driver = SerialScanner("desk", {"port": str(pty.link), "suffix": "CR", "max_length": 32}, sink)
    with driver:
        assert sink.next(ReaderStatus).state == "connected"
        yield pty, sink, driver
    if pty.master >= 0:
        with contextlib.suppress(OSError):
            pty.unplug()


def test_slow_byte_by_byte_writes_make_one_code(scanner: tuple[Pty, Sink, SerialScanner]) -> None:
    pty, sink, _ = scanner
    for byte in b"4006381333931\r":
        pty.write(bytes([byte]))
        time.sleep(0.005)
    event = sink.next(ScanEvent)
    assert (event.kind, event.value, event.source) == ("barcode", "4006381333931", "serial:desk")


def test_several_codes_in_one_write_come_out_in_order(
    scanner: tuple[Pty, Sink, SerialScanner],
) -> None:
    pty, sink, _ = scanner
    pty.write(b"]E04006381333931\r2900000000018\rABC-123\r")
    assert [e.value for e in sink.scans(3)] == ["]E04006381333931", "2900000000018", "ABC-123"]


def test_garbage_bytes_are_an_error_event_and_the_next_code_reads(
    scanner: tuple[Pty, Sink, SerialScanner],
) -> None:
    pty, sink, _ = scanner
    pty.write(b"\xff\xfe\x8012\r4006381333931\r")
    error, good = sink.scans(2)
    assert error.kind == "error" and "undecodable" in error.value
    assert (good.kind, good.value) == ("barcode", "4006381333931")


def test_an_over_long_line_is_dropped_with_one_error(
    scanner: tuple[Pty, Sink, SerialScanner],
) -> None:
    pty, sink, _ = scanner
    pty.write(b"9" * 100)
    pty.write(b"9" * 100 + b"\r96385074\r")
    error, good = sink.scans(2)
    assert error.kind == "error" and "longer than 32" in error.value
    assert good.value == "96385074"


def test_port_unplugged_and_plugged_back(scanner: tuple[Pty, Sink, SerialScanner]) -> None:
    pty, sink, driver = scanner
    pty.write(b"111111\r")
    assert sink.next(ScanEvent).value == "111111"
    pty.unplug()
    assert sink.next(ReaderStatus).state == "disconnected"
    assert not driver.connected
    time.sleep(0.3)
    pty.plug()
    plugged = time.monotonic()
    assert sink.next(ReaderStatus).state == "connected"
    assert time.monotonic() - plugged < 2.0
    pty.write(b"222222\r")
    assert sink.next(ScanEvent).value == "222222"


def test_crlf_suffix_and_prefix(tmp_path: Path) -> None:
    pty = Pty(tmp_path / "scanner")
    sink = Sink()
    options = {"port": str(pty.link), "suffix": "CRLF", "prefix": "@"}
    with SerialScanner("desk", options, sink):
        sink.next(ReaderStatus)
        pty.write(b"@4006381333931\r\n@ABC\r\nnoprefix\r\n")
        first, second, third = sink.scans(3)
    pty.unplug()
    assert (first.value, second.value) == ("4006381333931", "ABC")
    assert third.kind == "error" and "prefix" in third.value


def test_a_missing_port_is_reported_not_raised(tmp_path: Path) -> None:
    sink = Sink()
    driver = SerialScanner("desk", {"port": str(tmp_path / "absent")}, sink)
    with driver:
        status = sink.next(ReaderStatus)
    assert status.state == "disconnected" and "cannot open" in status.detail
    assert "not connected" in driver.describe()


def test_a_port_vanishing_mid_line_never_joins_two_codes(
    scanner: tuple[Pty, Sink, SerialScanner],
) -> None:
    pty, sink, _ = scanner
    pty.write(b"400638")  # half a code, then the cable is pulled
    time.sleep(0.1)
    pty.unplug()
    assert sink.next(ReaderStatus).state == "disconnected"
    pty.plug()
    back = time.monotonic()
    assert sink.next(ReaderStatus).state == "connected"
    assert time.monotonic() - back < 2.0  # recovers within 2 s of the device returning
    pty.write(b"96385074\r")
    assert sink.next(ScanEvent).value == "96385074"
