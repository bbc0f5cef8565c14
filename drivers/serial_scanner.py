"""Serial and USB-CDC barcode scanners through pyserial.

A reader thread opens the port (a path such as /dev/ttyACM0 or a pyserial URL such as
socket://127.0.0.1:9000), frames bytes on the configured suffix (never on read timeouts:
readline() with a timeout can return half a code), strips an optional prefix, and turns
each frame into ScanEvent(kind="barcode"), AIM identifiers left for identification. When
the port vanishes (USB unplugged) it reports the reader disconnected and reopens it with
backoff until it comes back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.base import Sink, require_module
from pos_client.configfile import Section
from pos_client.events import ReaderStatus, ScanEvent

log = logging.getLogger(__name__)

SUFFIXES = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "TAB": b"\t"}
INSTALL_HINT = "install the 'serial' extra (pip install 'pos-client[serial]')"


@dataclass(frozen=True)
class Frame:
    data: bytes
    error: str | None = None


class LineFramer:
    """Bytes in, whole frames out. Over-long lines are dropped up to the next suffix."""

    def __init__(self, suffix: bytes, prefix: bytes = b"", max_length: int = 128) -> None:
        if not suffix:
            raise ValueError("a scanner needs a frame suffix")
        self.suffix = suffix
        self.prefix = prefix
        self.max_length = max_length
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buffer.extend(data)
        while True:
            index = self._buffer.find(self.suffix)
            if index < 0:
                if len(self._buffer) > self.max_length + len(self.suffix):
                    if not self._overflow:
                        frames.append(Frame(b"", f"line longer than {self.max_length} bytes"))
                    self._overflow = True
                    del self._buffer[: -len(self.suffix)]  # keep a possible partial suffix
                return frames
            line = bytes(self._buffer[:index])
            del self._buffer[: index + len(self.suffix)]
            if self._overflow:
                self._overflow = False
                continue
            frames.extend(self._frame(line))

    def _frame(self, line: bytes) -> list[Frame]:
        line = line.strip(b"\r\n")  # CRLF scanners on a CR or LF suffix
        if not line:
            return []
        if len(line) > self.max_length:
            return [Frame(b"", f"line longer than {self.max_length} bytes")]
        if self.prefix:
            if not line.startswith(self.prefix):
                return [Frame(line, "the scanner's configured prefix is missing")]
            line = line[len(self.prefix) :]
        return [Frame(line)]


def decode_frame(frame: Frame, encoding: str) -> tuple[str | None, str | None]:
    """(text, error): undecodable bytes are an error, never a guess."""
    if frame.error:
        return None, frame.error
    try:
        return frame.data.decode(encoding), None
    except UnicodeDecodeError:
        return (
            None,
            f"undecodable bytes from the scanner ({len(frame.data)} bytes;"
            f" check its {encoding} setting)",
        )


class SerialScanner:
    kind = "serial"

    def __init__(self, name: str, options: Mapping[str, Any], sink: Sink) -> None:
        section = Section(options, f"reader {name}", f"readers.{name}.")
        self.name = name
        self.sink = sink
        self.port = section.text("port")
        self.baudrate = section.integer("baudrate", 9600, minimum=50)
        suffix_name = section.text("suffix", "CR").upper()
        if suffix_name not in SUFFIXES:
            raise section.fail("suffix", f"expected one of {', '.join(SUFFIXES)}")
        self.framer_args = (
            SUFFIXES[suffix_name],
            section.text("prefix", "").encode(),
            section.integer("max_length", 128, minimum=4),
        )
        self.encoding = section.text("encoding", "ascii")
        self.reconnect_max_s = float(section.decimal("reconnect_max_s", "1.0"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: Any = None
        self.connected = False
        self.last_error: str | None = None

    def open(self) -> None:
        self.serial_module = require_module("serial", INSTALL_HINT)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        port = self._serial
        if port is not None:
            # Not every port type can cancel; the 0.1 s read timeout ends the read anyway.
            with contextlib.suppress(Exception):
                port.cancel_read()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> SerialScanner:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self) -> str:
        state = "connected" if self.connected else f"not connected ({self.last_error})"
        return f"serial {self.name} on {self.port}: {state}"

    def problem(self) -> str | None:
        return None if self.connected else (self.last_error or f"{self.port} not opened yet")

    def _status(self, state: str, detail: str) -> None:
        self.connected = state == "connected"
        self.last_error = None if self.connected else detail
        self.sink(ReaderStatus(f"serial:{self.name}", state, detail))

    def _run(self) -> None:
        delay = 0.05
        announced_down = False
        while not self._stop.is_set():
            try:
                self._serial = self.serial_module.serial_for_url(
                    self.port, baudrate=self.baudrate, timeout=0.1
                )
            except (self.serial_module.SerialException, OSError, ValueError) as exc:
                if not announced_down:
                    self._status("disconnected", f"cannot open {self.port}: {exc}")
                    announced_down = True
                self._stop.wait(delay)
                delay = min(self.reconnect_max_s, delay * 2)
                continue
            delay, announced_down = 0.05, False
            self._status("connected", self.port)
            try:
                self._read_until_gone()
            except (self.serial_module.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    self._status("disconnected", f"{self.port} went away: {exc}")
                    announced_down = True
            finally:
                with contextlib.suppress(Exception):  # already gone with the device
                    self._serial.close()
                self._serial = None

    def _read_until_gone(self) -> None:
        framer = LineFramer(*self.framer_args)
        source = f"serial:{self.name}"
        port = self._serial
        while not self._stop.is_set():
            data = port.read(port.in_waiting or 1)
            if not data:
                continue
            for frame in framer.feed(data):
                text, error = decode_frame(frame, self.encoding)
                if error is not None:
                    log.warning("%s: %s", source, error)
                    self.sink(ScanEvent(source, "error", error, frame.data))
                else:
                    self.sink(ScanEvent(source, "barcode", text or "", frame.data))
