"""A network receipt printer on loopback for tests, and a test-side ESC/POS reader.

`LoopbackPrinter` listens on 127.0.0.1 (a random port) like a printer's port 9100: it keeps
every byte each connection sent and answers the real-time status queries (DLE EOT n) with
the status bytes the test sets (`paper_out()`, `cover_open()`, `offline()`), as an Epson
printer does. `read_escpos` walks the bytes back into what a printer would do with them:
the text (decoded in the code page selected), the rasters, the barcodes, the cuts and the
status queries.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until `condition` holds (True) or `timeout` passes (its last answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


READY = {1: 0x12, 2: 0x12, 4: 0x12}  # fixed bits only: online, cover shut, paper present

# ESC t n -> Python codec, for the code pages python-escpos's default profile selects.
CODE_PAGES = {
    0: "cp437",
    2: "cp850",
    14: "cp737",
    15: "iso8859_7",
    16: "cp1252",
    17: "cp866",
    19: "cp858",
    34: "cp855",
    38: "cp869",
    44: "cp1125",
    46: "cp1251",
    47: "cp1253",
}


class LoopbackPrinter:
    """A TCP 'printer' on 127.0.0.1:port; a context manager, stopped by itself."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.jobs: list[bytes] = []  # what each connection sent, in order
        self.status = dict(READY)
        self.silent = False  # True: never answer status queries (a printer that cannot)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> LoopbackPrinter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def paper_out(self) -> None:
        self.status = {1: 0x1A, 2: 0x32, 4: 0x72}  # offline, stopped by paper end, no paper

    def cover_open(self) -> None:
        self.status = {1: 0x1A, 2: 0x16, 4: 0x12}

    def paper_low(self) -> None:
        self.status = {1: 0x12, 2: 0x12, 4: 0x1E}

    def ready(self) -> None:
        self.status = dict(READY)

    def printed(self) -> list[bytes]:
        """The connections that carried more than status queries."""
        with self._lock:
            return [job for job in self.jobs if read_escpos(job).printed]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        received = bytearray()
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                start = len(received)
                received += chunk
                if not self.silent:
                    for n in queries_in(bytes(received), max(0, start - 2)):
                        conn.sendall(bytes([self.status.get(n, 0x12)]))
        with self._lock:
            self.jobs.append(bytes(received))


def queries_in(data: bytes, start: int) -> list[int]:
    """The DLE EOT n queries that begin at or after `start`."""
    found = []
    index = data.find(b"\x10\x04", start)
    while index != -1 and index + 2 < len(data) + 0:
        if index + 2 < len(data):
            found.append(data[index + 2])
        index = data.find(b"\x10\x04", index + 3)
    return found


@dataclass
class Raster:
    width_bytes: int
    height: int
    bits: bytes

    def image(self) -> Any:
        """As a PIL image (black = 0), with a white margin for a barcode decoder."""
        from PIL import Image, ImageOps

        picture = Image.frombytes("1", (self.width_bytes * 8, self.height), self.bits)
        return ImageOps.expand(ImageOps.invert(picture.convert("L")), 40, fill=255)


@dataclass
class Printed:
    lines: list[str] = field(default_factory=list)
    code_pages: list[int] = field(default_factory=list)
    rasters: list[Raster] = field(default_factory=list)
    barcodes: list[tuple[int, bytes]] = field(default_factory=list)
    cuts: int = 0
    queries: list[int] = field(default_factory=list)
    inits: int = 0
    unknown: list[bytes] = field(default_factory=list)

    @property
    def printed(self) -> bool:
        return bool(self.lines or self.rasters or self.barcodes or self.cuts)


# Fixed-length commands: prefix -> bytes after the prefix (ignored for what is printed).
_SKIP = {
    b"\x1b!": 1,  # ESC ! n: print mode
    b"\x1bE": 1,  # ESC E n: bold
    b"\x1ba": 1,  # ESC a n: align
    b"\x1b-": 1,  # ESC - n: underline
    b"\x1bM": 1,  # ESC M n: font
    b"\x1bG": 1,  # ESC G n: double strike
    b"\x1b{": 1,  # ESC { n: upside down
    b"\x1d!": 1,  # GS ! n: size
    b"\x1dB": 1,  # GS B n: reverse
    b"\x1db": 1,  # GS b n: smoothing
    b"\x1dh": 1,  # GS h n: barcode height
    b"\x1dw": 1,  # GS w n: barcode width
    b"\x1dH": 1,  # GS H n: human readable position
    b"\x1df": 1,  # GS f n: HRI font
    b"\x1b3": 1,  # ESC 3 n: line spacing
    b"\x1b2": 0,  # ESC 2: default line spacing
    b"\x1bd": 1,  # ESC d n: feed lines
    b"\x1dL": 2,  # GS L nL nH: left margin
    b"\x1bV": 1,
}


def read_escpos(data: bytes) -> Printed:
    """What a printer does with `data`: text by code page, rasters, barcodes, cuts."""
    out = Printed()
    codec = "cp437"
    text = bytearray()
    i = 0

    def flush_text() -> None:
        if text:
            out.lines.append(text.decode(codec, errors="replace"))
            text.clear()

    while i < len(data):
        byte = data[i]
        two = data[i : i + 2]
        if byte == 0x0A:
            flush_text() if text else out.lines.append("")
            i += 1
        elif two == b"\x10\x04":
            out.queries.append(data[i + 2])
            i += 3
        elif two == b"\x1b@":
            out.inits += 1
            i += 2
        elif two == b"\x1bt":
            if text:  # a code page switch inside a line: decode what came before
                out.lines.append(text.decode(codec, errors="replace") + "\x00")
                text.clear()
            out.code_pages.append(data[i + 2])
            codec = CODE_PAGES.get(data[i + 2], "cp437")
            i += 3
        elif data[i : i + 3] == b"\x1dv0":
            width = data[i + 4] | data[i + 5] << 8
            height = data[i + 6] | data[i + 7] << 8
            start = i + 8
            out.rasters.append(Raster(width, height, data[start : start + width * height]))
            i = start + width * height
        elif two == b"\x1dk":
            kind = data[i + 2]
            length = data[i + 3]
            out.barcodes.append((kind, data[i + 4 : i + 4 + length]))
            i += 4 + length
        elif two == b"\x1dV":
            out.cuts += 1
            i += 3 if data[i + 2] in (0, 1, 48, 49) else 4
        elif two in _SKIP:
            i += 2 + _SKIP[two]
        elif byte in (0x1B, 0x1D, 0x10):
            out.unknown.append(data[i : i + 3])
            i += 2
        else:
            text.append(byte)
            i += 1
    flush_text()
    out.lines = _joined(out.lines)
    return out


def _joined(lines: list[str]) -> list[str]:
    """Lines split by a code page switch ("\\x00" marks the split) made whole again."""
    whole: list[str] = []
    carry = ""
    for line in lines:
        if line.endswith("\x00"):
            carry += line[:-1]
            continue
        whole.append(carry + line)
        carry = ""
    if carry:
        whole.append(carry)
    return whole
