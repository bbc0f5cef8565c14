"""Real PC/SC for tests: a private pcscd with only the vsmartcard virtual reader, and a
test-owned virtual card speaking the vpcd socket protocol (2-byte length + payload)."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.virtual_ntag424 import VirtualNtag424

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_PORT = 35963
# One pcscd at a time on a machine (/run/pcscd, the vpcd port): test files on other xdist
# workers wait on this lock for the running one to stop, instead of racing it.
PCSCD_LOCK = Path("/tmp/pos-client-tests-pcscd.lock")
NTAG_ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")
CLASSIC_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
# An ISO 14443-4 card as a PC/SC reader presents it (no storage-card RID): NTAG 424 DNA.
ISO_DEP_ATR = bytes.fromhex("3B8180018080")
READER_CONF = f"""FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      {VPCD_DRIVER}
CHANNELID    0x8C7B
"""


def pcsc_unavailable_reason() -> str | None:
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (make test installs it when run as root)"
    if not VPCD_DRIVER.exists():
        return "vsmartcard-vpcd is not installed (make test installs it when run as root)"
    if os.geteuid() != 0:
        return "a private pcscd needs root (it writes /run/pcscd)"
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return "pyscard is not installed (the 'pcsc' extra)"
    return None


def ntag_memory(ndef_message: bytes) -> bytes:
    """Pages 3.. of an NDEF-formatted NTAG216: capability container, then the NDEF TLV."""
    if len(ndef_message) < 0xFF:
        tlv = bytes([0x03, len(ndef_message)]) + ndef_message
    else:
        tlv = bytes([0x03, 0xFF]) + len(ndef_message).to_bytes(2, "big") + ndef_message
    memory = bytes([0xE1, 0x10, 0x6D, 0x00]) + tlv + b"\xfe"
    return memory + b"\x00" * (-len(memory) % 16 + 64)


@dataclass
class VirtualCard:
    uid: bytes = bytes.fromhex("04A224C25E6C80")
    atr: bytes = NTAG_ATR
    uid_status: bytes = b"\x90\x00"  # e.g. b"\x6a\x81" for a reader that cannot read UIDs
    memory: bytes = b""  # pages 3.. for NTAG reads; empty = not NDEF-formatted
    answer_delay_s: float = 0.0
    # After this many page reads, answer "90 00" with no data (a broken card); None = never.
    empty_reads_after: int | None = None
    apdus: list[bytes] = field(default_factory=list)
    # A Type 4 tag's NDEF file (NTAG 424 DNA): 2-byte length + message; None = no NDEF app.
    ndef_file: bytes | None = None
    # A whole NTAG 424 DNA (keys, SDM, EV2 secure messaging) answering ISO and native APDUs.
    ntag424: VirtualNtag424 | None = None
    _selected: str = ""
    _socket: socket.socket | None = None
    _thread: threading.Thread | None = None

    def insert(self, port: int = VPCD_PORT, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._socket = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._socket.settimeout(None)
        # One APDU is two small writes each way: without these, Nagle and delayed ACKs add
        # ~40 ms to every exchange, a cost no real reader has.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._serve, args=(self._socket,), daemon=True)
        self._thread.start()

    def remove(self, wait: bool = True) -> None:
        if self._socket is not None:
            self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
            self._socket = None
        if self._thread is not None:
            self._thread.join(2)
        if wait:  # vpcd serves one card at a time: let it see this one gone first
            wait_reader_empty()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                message = _recv(sock)
                if message is None:
                    return
                if len(message) == 1:
                    if message[0] == 0x04:
                        _send(sock, self.atr)
                    continue
                self.apdus.append(message)
                if self.answer_delay_s:
                    time.sleep(self.answer_delay_s)
                _send(sock, self.answer(message))
        except OSError:
            return

    def answer(self, apdu: bytes) -> bytes:
        if self.ntag424 is not None and apdu[:1] in (b"\x00", b"\x90"):
            return self.ntag424.answer(apdu)
        if self.ndef_file is not None and apdu[:1] == b"\x00":
            return self._type4(apdu)
        if apdu[:2] == b"\xff\xca":
            return (self.uid if self.uid_status == b"\x90\x00" else b"") + self.uid_status
        if apdu[:3] == b"\xff\xb0\x00" and len(apdu) >= 5:
            reads = sum(a.startswith(b"\xff\xb0") for a in self.apdus)
            if self.empty_reads_after is not None and reads > self.empty_reads_after:
                return b"\x90\x00"
            if not self.memory:
                return bytes(16) + b"\x90\x00"  # blank tag: no capability container
            start = (apdu[3] - 3) * 4
            if start < 0 or start + apdu[4] > len(self.memory):
                return b"\x6b\x00"
            return self.memory[start : start + apdu[4]] + b"\x90\x00"
        return b"\x6d\x00"

    def _type4(self, apdu: bytes) -> bytes:
        """ISO 7816-4 as an NTAG 424 DNA answers it: SELECT by name, SELECT file, READ BINARY."""
        assert self.ndef_file is not None
        if apdu[:4] == b"\x00\xa4\x04\x00" and apdu[5:12] == bytes.fromhex("D2760000850101"):
            self._selected = "app"
            return b"\x90\x00"
        if apdu[:4] == b"\x00\xa4\x00\x0c" and self._selected:
            self._selected = "E104" if apdu[5:7] == b"\xe1\x04" else "other"
            return b"\x90\x00" if self._selected == "E104" else b"\x6a\x82"
        if apdu[:2] == b"\x00\xb0" and self._selected == "E104" and len(apdu) >= 5:
            offset, length = int.from_bytes(apdu[2:4], "big"), apdu[4]
            if offset + length > len(self.ndef_file):
                return b"\x6b\x00"
            return self.ndef_file[offset : offset + length] + b"\x90\x00"
        return b"\x6d\x00"


def type4_ndef_file(ndef_message: bytes) -> bytes:
    """A Type 4 tag's NDEF file: NLEN (2 bytes, big-endian), then the message."""
    return len(ndef_message).to_bytes(2, "big") + ndef_message


def _recv(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 2)
    if header is None:
        return None
    return _read_exact(sock, struct.unpack(">H", header)[0])


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        # ACK at once: vpcd writes an APDU's length and its bytes apart, and its second
        # write waits for this ACK (Nagle) while a delayed ACK would hold it ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


class ForeignPcscd(RuntimeError):
    """Another pcscd owns the PC/SC socket: the tests would talk to it, not to ours."""


def foreign_pcscd_pids() -> list[str]:
    """Running pcscd processes (ours are always stopped and reaped before a start)."""
    found = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True, text=True)
    return found.stdout.split()


class PcscDaemon:
    """A private pcscd in the foreground with only the virtual reader configured."""

    def __init__(self, workdir: Path) -> None:
        self.conf_dir = workdir / "reader.conf.d"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "vpcd").write_text(READER_CONF)
        self.log_path = workdir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_file: int | None = None

    def start(self) -> None:
        self._take_lock()
        # A pcscd we did not start (the system's) holds /run/pcscd: never stop it, say so.
        others = foreign_pcscd_pids()
        if others:
            self._release_lock()
            raise ForeignPcscd(
                f"a pcscd this test did not start is running (pid {', '.join(others)}); "
                "stop it (e.g. `systemctl stop pcscd.socket pcscd`) to run the PC/SC tests"
            )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["pcscd", "--foreground", "--config", str(self.conf_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_for_vpcd()
        except BaseException:
            self.stop()  # never leave our daemon (or the lock) behind a failed start
            raise

    def _wait_for_vpcd(self, timeout_s: float = 10.0) -> None:
        from smartcard import scard

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == 0:
                hresult, readers = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                if hresult == 0 and any("Virtual PCD" in r for r in readers):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pcscd did not start the virtual reader; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self._release_lock()

    def _take_lock(self, timeout_s: float = 900.0) -> None:
        if self._lock_file is not None:
            return
        handle = os.open(PCSCD_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(handle)
                    raise RuntimeError(f"another test's pcscd held {PCSCD_LOCK} too long") from None
                time.sleep(0.1)
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing drops the flock
            self._lock_file = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def wait_reader_empty(reader: str = "Virtual PCD 00 00", timeout_s: float = 5.0) -> None:
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        return
    try:
        deadline = time.monotonic() + timeout_s
        state = scard.SCARD_STATE_UNAWARE
        while time.monotonic() < deadline:
            hresult, results = scard.SCardGetStatusChange(context, 100, [(reader, state)])
            if hresult == 0:
                state = results[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & scard.SCARD_STATE_EMPTY:
                    return
            elif (hresult & 0xFFFFFFFF) != (scard.SCARD_E_TIMEOUT & 0xFFFFFFFF):
                return
    finally:
        scard.SCardReleaseContext(context)
