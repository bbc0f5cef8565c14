"""A virtual NXP NTAG 424 DNA for tests: the card side of the commands the terminal sends,
as the datasheet (NT4H2421Gx) and AN12196 describe them, with state a real card keeps —
five AES keys and their versions, the NDEF file and its settings, the SDM read counter.

It answers ISO 7816-4 SELECT / READ BINARY / UPDATE BINARY and the native commands wrapped
in ISO (CLA 90): GetVersion, AuthenticateEV2First, ChangeFileSettings and ChangeKey in
CommMode.Full, GetKeyVersion in CommMode.MAC. With SDM enabled each first read after the
file is selected raises the counter and mirrors a fresh SUN message into the URL (encrypted
PICC data under key 2, the MAC under session keys of key 1). The secure-messaging code is
written here from the documents, not imported from pos_client.ntag424, so an issuer bug is
a refusal, not a shared mistake; only the AES/CMAC primitives (pinned by the AN12196
vectors) are shared.

Used bare by unit tests (`answer(apdu)`) and behind the vpcd socket by integration tests.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pos_client.sun import aes_cmac, cbc_decrypt, cbc_encrypt, ecb_encrypt_block

OK = b"\x91\x00"
MORE = b"\x91\xaf"
AUTH_ERROR = b"\x91\xae"
PERMISSION_DENIED = b"\x91\x9d"
INTEGRITY_ERROR = b"\x91\x1e"
LENGTH_ERROR = b"\x91\x7e"
PARAMETER_ERROR = b"\x91\x9e"
ILLEGAL_COMMAND = b"\x91\x1c"
NDEF_AID = bytes.fromhex("D2760000850101")
FREE = 0xE
# GetVersion: hardware and software parts of an NTAG 424 DNA (datasheet section 10.5.2).
HW_VERSION = bytes.fromhex("04040230001105")
SW_VERSION = bytes.fromhex("04040201021105")
FILE_SIZE = 256


def _mact(key: bytes, data: bytes) -> bytes:
    return aes_cmac(key, data)[1::2]


@dataclass
class _Session:
    key_number: int
    transaction_id: bytes
    enc_key: bytes
    mac_key: bytes
    counter: int = 0


@dataclass
class VirtualNtag424:
    uid: bytes = bytes.fromhex("04C767F2066180")
    keys: list[bytes] = field(default_factory=lambda: [bytes(16)] * 5)
    key_versions: list[int] = field(default_factory=lambda: [0] * 5)
    file: bytearray = field(default_factory=lambda: bytearray(FILE_SIZE))
    # NDEF file access rights as nibbles: read, write, read-write, change (factory: E E E 0)
    read_access: int = FREE
    write_access: int = FREE
    change_access: int = 0
    # PICC data, MAC input and MAC offsets, meta-read and file-read key numbers
    sdm: tuple[int, int, int, int, int] | None = None
    read_counter: int = 0
    random: Callable[[int], bytes] = os.urandom
    commands: list[bytes] = field(default_factory=list)
    _app: bool = False
    _file: str = ""
    _image: bytes | None = None  # the file as this selection reads it (SUN mirrored)
    _session: _Session | None = None
    _pending: tuple[int, bytes] | None = None  # (key number, RndB) between auth passes
    _frames: list[bytes] = field(default_factory=list)  # GetVersion's further frames

    # ------------------------------------------------------------------ dispatch
    def answer(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        if apdu[:1] == b"\x00":
            return self._iso(apdu)
        if apdu[:1] != b"\x90" or len(apdu) < 5 or apdu[2:4] != b"\x00\x00":
            return b"\x6e\x00"
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if len(body) != (apdu[4] if len(apdu) > 5 else 0):
            return LENGTH_ERROR
        handler = self._NATIVE.get(apdu[1])
        if handler is None:
            return ILLEGAL_COMMAND
        if not self._app:
            return PERMISSION_DENIED
        return handler(self, body)

    # ------------------------------------------------------------------ ISO 7816-4
    def _iso(self, apdu: bytes) -> bytes:
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        if ins == 0xA4 and p1 == 0x04:
            self._app = apdu[5 : 5 + apdu[4]] == NDEF_AID
            self._file, self._image, self._session, self._pending = "", None, None, None
            return b"\x90\x00" if self._app else b"\x6a\x82"
        if ins == 0xA4 and p1 == 0x00 and self._app:
            self._file = "E104" if apdu[5:7] == b"\xe1\x04" else ""
            self._image = None
            return b"\x90\x00" if self._file else b"\x6a\x82"
        if ins == 0xB0 and self._file:
            return self._read_binary((p1 << 8) | p2, apdu[4] if len(apdu) > 4 else 0)
        if ins == 0xD6 and self._file:
            return self._update_binary((p1 << 8) | p2, apdu[5 : 5 + apdu[4]])
        return b"\x6d\x00"

    def _read_binary(self, offset: int, length: int) -> bytes:
        if self.read_access != FREE:
            return b"\x69\x82"
        if self._image is None:
            self._image = self._mirrored()
        length = length or FILE_SIZE - offset
        if offset + length > FILE_SIZE:
            return b"\x6b\x00"
        return self._image[offset : offset + length] + b"\x90\x00"

    def _update_binary(self, offset: int, data: bytes) -> bytes:
        if self.write_access != FREE:
            return b"\x69\x82"  # security status not satisfied: written with a key only
        if offset + len(data) > FILE_SIZE:
            return b"\x6b\x00"
        self.file[offset : offset + len(data)] = data
        self._image = None
        return b"\x90\x00"

    def _mirrored(self) -> bytes:
        """The file as read now: with SDM, a raised counter and a fresh SUN message."""
        image = bytearray(self.file)
        if self.sdm is None:
            return bytes(image)
        self.read_counter += 1
        picc_offset, mac_input_offset, mac_offset, meta_key, file_key = self.sdm
        counter = self.read_counter.to_bytes(3, "little")
        plain = bytes([0xC7]) + self.uid + counter + self.random(5)
        picc = cbc_encrypt(self.keys[meta_key], bytes(16), plain).hex().upper().encode()
        image[picc_offset : picc_offset + 32] = picc
        sv2 = bytes.fromhex("3CC300010080") + self.uid + counter
        session_mac = aes_cmac(self.keys[file_key], sv2)
        mac = _mact(session_mac, bytes(image[mac_input_offset:mac_offset]))
        image[mac_offset : mac_offset + 16] = mac.hex().upper().encode()
        return bytes(image)

    # ------------------------------------------------------------------ native commands
    def _get_version(self, body: bytes) -> bytes:
        third = self.uid + bytes.fromhex("CF39A1B240") + bytes([0x04, 0x20])  # batch, week, year
        self._frames = [SW_VERSION + MORE, third + OK]
        return HW_VERSION + MORE

    def _additional_frame(self, body: bytes) -> bytes:
        if self._frames:
            return self._frames.pop(0)
        if self._pending is None:
            return b"\x91\xca"
        key_number, rnd_b = self._pending
        self._pending = None
        key = self.keys[key_number]
        if len(body) != 32:
            return LENGTH_ERROR
        plain = cbc_decrypt(key, bytes(16), body)
        rnd_a, rnd_b_rotated = plain[:16], plain[16:]
        if rnd_b_rotated != rnd_b[1:] + rnd_b[:1]:
            return AUTH_ERROR
        transaction_id = self.random(4)
        mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True))
        tail = rnd_a[:2] + mixed + rnd_b[6:] + rnd_a[8:]
        self._session = _Session(
            key_number,
            transaction_id,
            aes_cmac(key, bytes.fromhex("A55A00010080") + tail),
            aes_cmac(key, bytes.fromhex("5AA500010080") + tail),
        )
        reply = transaction_id + rnd_a[1:] + rnd_a[:1] + bytes(12)
        return cbc_encrypt(key, bytes(16), reply) + OK

    def _authenticate_first(self, body: bytes) -> bytes:
        self._session, self._frames = None, []
        if len(body) < 2 or body[0] > 4:
            return PARAMETER_ERROR
        rnd_b = self.random(16)
        self._pending = (body[0], rnd_b)
        return cbc_encrypt(self.keys[body[0]], bytes(16), rnd_b) + MORE

    def _open_full(self, command: int, body: bytes, header_bytes: int) -> bytes | None:
        """A CommMode.Full command's plain data, or None (and the session ends) when its
        MAC does not verify: what a card does with a command it cannot trust."""
        session = self._session
        if session is None or len(body) < header_bytes + 8 or (len(body) - header_bytes) % 16 != 8:
            self._session = None
            return None
        header, encrypted, mac = body[:header_bytes], body[header_bytes:-8], body[-8:]
        counter = session.counter.to_bytes(2, "little")
        expected = _mact(
            session.mac_key,
            bytes([command]) + counter + session.transaction_id + header + encrypted,
        )
        if expected != mac:
            self._session = None
            return None
        iv = ecb_encrypt_block(
            session.enc_key, b"\xa5\x5a" + session.transaction_id + counter + bytes(8)
        )
        padded = cbc_decrypt(session.enc_key, iv, encrypted) if encrypted else b""
        end = padded.rfind(b"\x80")
        if end < 0 or any(padded[end + 1 :]):
            self._session = None
            return None
        return padded[:end]

    def _mac_answer(self, data: bytes = b"") -> bytes:
        session = self._session
        assert session is not None
        session.counter += 1
        counter = session.counter.to_bytes(2, "little")
        return data + _mact(session.mac_key, b"\x00" + counter + session.transaction_id + data) + OK

    def _change_file_settings(self, body: bytes) -> bytes:
        data = self._open_full(0x5F, body, 1)
        if data is None:
            return INTEGRITY_ERROR
        assert self._session is not None
        if body[0] != 0x02:
            return PARAMETER_ERROR  # only the NDEF file is modelled
        if self._session.key_number != self.change_access:
            return PERMISSION_DENIED
        if len(data) < 3 or data[0] & 0x3F:  # CommMode plain only here
            return PARAMETER_ERROR
        sdm = None
        if data[0] & 0x40:
            # UID and counter mirrored in ASCII, PICC data encrypted (meta-read key 0-4),
            # a MAC (file-read key 0-4) over MAC input: three offsets, little-endian.
            meta_key, file_key = data[5] >> 4, data[5] & 0x0F
            if len(data) != 15 or data[3] != 0xC1 or meta_key > 4 or file_key > 4:
                return PARAMETER_ERROR
            picc, mac_input, mac = (int.from_bytes(data[i : i + 3], "little") for i in (6, 9, 12))
            if not (picc + 32 <= mac_input <= mac and mac + 16 <= FILE_SIZE):
                return PARAMETER_ERROR
            sdm = (picc, mac_input, mac, meta_key, file_key)
        elif len(data) != 3:
            return PARAMETER_ERROR
        self.read_access, self.write_access = data[2] >> 4, data[2] & 0x0F
        self.change_access = data[1] & 0x0F
        self.sdm = sdm
        self._image = None
        return self._mac_answer()

    def _change_key(self, body: bytes) -> bytes:
        data = self._open_full(0xC4, body, 1)
        if data is None:
            return INTEGRITY_ERROR
        session = self._session
        assert session is not None
        key_number = body[0]
        if key_number > 4:
            return PARAMETER_ERROR
        if session.key_number != 0:
            return PERMISSION_DENIED  # keys are changed under the application master key
        if key_number == session.key_number:
            if len(data) != 17:
                return LENGTH_ERROR
            self.keys[key_number], self.key_versions[key_number] = data[:16], data[16]
            self._session = None  # the session's own key changed: it ends, no MAC
            return OK
        if len(data) != 21:
            return LENGTH_ERROR
        new_key = bytes(a ^ b for a, b in zip(data[:16], self.keys[key_number], strict=True))
        crc = (~zlib.crc32(new_key) & 0xFFFFFFFF).to_bytes(4, "little")
        if crc != data[17:21]:
            self._session = None
            return INTEGRITY_ERROR  # the old key given was not this key's
        self.keys[key_number], self.key_versions[key_number] = new_key, data[16]
        return self._mac_answer()

    def _get_key_version(self, body: bytes) -> bytes:
        session = self._session
        if session is None:
            return PERMISSION_DENIED
        if len(body) != 9 or body[0] > 4:
            return LENGTH_ERROR
        counter = session.counter.to_bytes(2, "little")
        expected = _mact(session.mac_key, b"\x64" + counter + session.transaction_id + body[:1])
        if expected != body[1:]:
            self._session = None
            return INTEGRITY_ERROR
        return self._mac_answer(bytes([self.key_versions[body[0]]]))

    def _get_card_uid(self, body: bytes) -> bytes:
        """GetCardUID (51): the UID, encrypted and MACed under the session (CommMode.Full)."""
        session = self._session
        if session is None:
            return PERMISSION_DENIED
        counter = session.counter.to_bytes(2, "little")
        if len(body) != 8 or body != _mact(
            session.mac_key, b"\x51" + counter + session.transaction_id
        ):
            self._session = None
            return INTEGRITY_ERROR
        after = (session.counter + 1).to_bytes(2, "little")
        iv = ecb_encrypt_block(
            session.enc_key, b"\x5a\xa5" + session.transaction_id + after + bytes(8)
        )
        encrypted = cbc_encrypt(session.enc_key, iv, self.uid + b"\x80" + bytes(8))
        return self._mac_answer(encrypted)

    _NATIVE: ClassVar[dict[int, Callable[[VirtualNtag424, bytes], bytes]]] = {
        0x60: _get_version,
        0xAF: _additional_frame,
        0x71: _authenticate_first,
        0x5F: _change_file_settings,
        0xC4: _change_key,
        0x64: _get_key_version,
        0x51: _get_card_uid,
    }
