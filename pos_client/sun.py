"""Secure unique NFC (SUN) messages of NXP NTAG 424 DNA cards (issue 12): what a tap proves.

A card UID is an identifier, not a secret. An NTAG 424 DNA with secure dynamic messaging
(SDM) answers each read with a URL whose parameters it fills in anew: the PICC data (its
UID and read counter, AES-128-CBC encrypted under the SDM meta-read key with a zero IV), an
optional encrypted file-data field, and a MAC over part of the URL under a session key that
the card derives from the SDM file-read key, its UID and the counter. A copied UID, or a URL
replayed, photographed or edited, fails here or at the replay check (a counter must rise).

Everything here is pure: bytes in, a `VerifiedTap` or a `SunRefused` out. The keys are the
caller's (the store server's, or the embedded backend's) and never appear in a message,
a repr or a log. The layout is NXP AN12196's (section 3.4): PICCDataTag bit 7 = UID
mirrored, bit 6 = counter mirrored, bits 3-0 = UID length (7); SV1/SV2 = C33C/3CC3 0001
0080 || UID || counter (3 bytes, little-endian); the SDM MAC is the session CMAC's odd
bytes. Key diversification per card is NXP AN10922's AES-128 (CMAC of 01 || UID || AID ||
system identifier).
"""

from __future__ import annotations

import errno
import hmac
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

KEY_BYTES = 16
UID_BYTES = 7
BLOCK = 16
MAC_BYTES = 8
MAX_FILE_DATA = 8 * BLOCK  # what a URL mirrors in practice; more is refused unread
NDEF_AID = bytes.fromhex("D2760000850101")  # the NDEF application (issuing, reading)
# AN10922's diversification input: the NDEF application's DESFire AID (3 bytes, as in
# AN10922's example) and the system identifier, one per programme.
DIVERSIFICATION_AID = bytes.fromhex("3042F5")

_SV_MAC = bytes.fromhex("3CC300010080")
_SV_ENC = bytes.fromhex("C33C00010080")
_UID_MIRRORED = 0x80
_COUNTER_MIRRORED = 0x40
_RFU_BITS = 0x30


class SunRefused(ValueError):
    """A tap's message that proves nothing: `reason` is a code for the screen and the
    security log (malformed, unreadable, forged, replayed); the text never holds a key or a
    UID. `uid`: the card's, when the message decrypted (a replay), for the store's review."""

    def __init__(self, reason: str, message: str, uid: bytes | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.uid = uid


@dataclass(frozen=True)
class SunMessage:
    """What a tap's URL carried, as bytes: the encrypted PICC data, the MAC, the encrypted
    file data if mirrored, and the part of the URL the MAC covers."""

    picc_data: bytes
    mac: bytes
    file_data: bytes | None = None
    mac_input: bytes = b""


@dataclass(frozen=True)
class VerifiedTap:
    """A message that verified: the card's UID, its read counter (the replay check's to
    compare), and the decrypted file data if the card mirrors any."""

    uid: bytes = field(repr=False)  # an identifier: kept out of reprs that reach logs
    counter: int
    file_data: bytes | None = field(default=None, repr=False)


# ---------------------------------------------------------------- primitives


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), 16 bytes."""
    mac = CMAC(algorithms.AES(_key(key)))
    mac.update(data)
    return mac.finalize()


def _key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError("an AES-128 key is 16 bytes")  # the key itself is never shown
    return key


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC without padding (the data is whole blocks): SUN and NTAG 424 commands."""
    decryptor = Cipher(algorithms.AES(_key(key)), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(_key(key)), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(_key(key)), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _file_data_iv(enc_key: bytes, counter: int) -> bytes:
    """The file data's IV: the counter block (little-endian, zero-padded) encrypted."""
    return ecb_encrypt_block(enc_key, counter.to_bytes(3, "little") + bytes(BLOCK - 3))


def truncate_mac(full: bytes) -> bytes:
    """The SDM MAC: the odd-indexed bytes of the 16-byte CMAC (AN12196 section 3.4.4)."""
    return full[1::2]


# ---------------------------------------------------------------- the steps


@dataclass(frozen=True)
class PiccData:
    uid: bytes | None = field(repr=False)
    counter: int | None


def decrypt_picc_data(meta_read_key: bytes, picc_data: bytes) -> PiccData:
    """The UID and counter from the encrypted PICC data, or SunRefused("unreadable") when the
    plaintext is not PICC data (another key, or not a card's)."""
    if len(picc_data) != BLOCK:
        raise SunRefused("malformed", "the PICC data is not 16 bytes")
    plain = cbc_decrypt(meta_read_key, bytes(BLOCK), picc_data)
    tag = plain[0]
    uid_length = tag & 0x0F
    if tag & _RFU_BITS or not tag & (_UID_MIRRORED | _COUNTER_MIRRORED):
        raise SunRefused("unreadable", "the PICC data does not decrypt under this card key")
    if bool(tag & _UID_MIRRORED) != (uid_length == UID_BYTES):
        raise SunRefused("unreadable", "the PICC data does not decrypt under this card key")
    at = 1
    uid = None
    if tag & _UID_MIRRORED:
        uid, at = plain[at : at + UID_BYTES], at + UID_BYTES
    counter = None
    if tag & _COUNTER_MIRRORED:
        counter = int.from_bytes(plain[at : at + 3], "little")
    return PiccData(uid, counter)


def session_vector(prefix: bytes, uid: bytes | None, counter: int | None) -> bytes:
    """SV1 or SV2: prefix || UID || counter (little-endian), zero-padded to whole blocks."""
    vector = prefix + (uid or b"") + (counter.to_bytes(3, "little") if counter is not None else b"")
    return vector + bytes(-len(vector) % BLOCK)


def session_mac_key(file_read_key: bytes, uid: bytes | None, counter: int | None) -> bytes:
    return aes_cmac(file_read_key, session_vector(_SV_MAC, uid, counter))


def session_enc_key(file_read_key: bytes, uid: bytes | None, counter: int | None) -> bytes:
    return aes_cmac(file_read_key, session_vector(_SV_ENC, uid, counter))


def sdm_mac(mac_key: bytes, mac_input: bytes) -> bytes:
    """The 8-byte SDM MAC of `mac_input` (the URL's bytes the card covers) under a session
    MAC key."""
    return truncate_mac(aes_cmac(mac_key, mac_input))


def decrypt_file_data(enc_key: bytes, counter: int, data: bytes) -> bytes:
    """The mirrored file data: AES-CBC under the session ENC key, the IV being the counter
    block (counter little-endian, zero-padded) encrypted under that key."""
    if not data or len(data) % BLOCK or len(data) > MAX_FILE_DATA:
        raise SunRefused("malformed", "the encrypted file data is not whole 16-byte blocks")
    return cbc_decrypt(enc_key, _file_data_iv(enc_key, counter), data)


def diversify_key(
    master_key: bytes,
    uid: bytes,
    system_identifier: bytes,
    aid: bytes = DIVERSIFICATION_AID,
) -> bytes:
    """A card's own AES-128 key from the programme's master key (NXP AN10922 section 2.2:
    CMAC of 01 || UID || AID || system identifier, at most 31 bytes after the 01)."""
    data = uid + aid + system_identifier
    if not uid or len(data) > 31:
        raise ValueError("diversification input is 1 to 31 bytes with a UID")
    return aes_cmac(master_key, b"\x01" + data)


# ---------------------------------------------------------------- the whole check


def verify(
    message: SunMessage,
    meta_read_key: bytes,
    file_read_key_for: Callable[[bytes], bytes],
) -> VerifiedTap:
    """Decrypt the PICC data, derive the session keys from the card's file-read key (the
    callable's, given the UID: diversified per card), check the MAC in constant time and
    decrypt the file data. Raises SunRefused: malformed, unreadable or forged."""
    if len(message.mac) != MAC_BYTES:
        raise SunRefused("malformed", "the MAC is not 8 bytes")
    picc = decrypt_picc_data(meta_read_key, message.picc_data)
    if picc.uid is None or picc.counter is None:
        # A loyalty card must mirror both: the UID names the member, the counter stops
        # replays. A card personalised otherwise is refused, not half trusted.
        raise SunRefused("unreadable", "the card does not mirror both its UID and read counter")
    file_key = file_read_key_for(picc.uid)
    expected = sdm_mac(session_mac_key(file_key, picc.uid, picc.counter), message.mac_input)
    if not hmac.compare_digest(expected, message.mac):
        raise SunRefused("forged", "the card's message does not verify (copied or altered)")
    file_data = None
    if message.file_data is not None:
        enc_key = session_enc_key(file_key, picc.uid, picc.counter)
        file_data = decrypt_file_data(enc_key, picc.counter, message.file_data)
    return VerifiedTap(picc.uid, picc.counter, file_data)


# ---------------------------------------------------------------- the URL


@dataclass(frozen=True)
class UrlLayout:
    """Where a card's URL carries each field (query parameter names). The MAC covers the
    URL from the start of the file data's value to the start of the MAC's value (the file
    data and "&cmac="), or nothing when no file data is mirrored: the layout
    `pos-client card issue` writes (AN12196's examples)."""

    picc_data: str = "picc_data"
    file_data: str = "enc"
    mac: str = "cmac"


MAX_URL = 512  # an NDEF URL on an NTAG 424 DNA's 256-byte file, with room


def parse_url(url: str, layout: UrlLayout = UrlLayout()) -> SunMessage:
    """The SUN fields of a tap's URL as the card wrote it (its own bytes: the MAC covers
    them as they are). SunRefused("malformed") names what is wrong, never echoing it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isascii():
        raise SunRefused("malformed", f"not a card URL (ASCII, 1 to {MAX_URL} characters)")
    mark = url.find("?")
    if mark < 0:
        raise SunRefused("malformed", "the URL carries no query")
    query = url[mark + 1 :].split("#", 1)[0]
    values: dict[str, tuple[int, str]] = {}  # name: (where its value starts, the value)
    at = mark + 1
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if equals and name in (layout.picc_data, layout.file_data, layout.mac):
            if name in values:
                raise SunRefused("malformed", f"the URL carries {name} twice")
            values[name] = (at + len(name) + 1, value)
        at += len(part) + 1
    for required in (layout.picc_data, layout.mac):
        if required not in values:
            raise SunRefused("malformed", f"the URL carries no {required}")
    picc = _hex(values[layout.picc_data][1], BLOCK, layout.picc_data)
    mac_at, mac_text = values[layout.mac]
    mac = _hex(mac_text, MAC_BYTES, layout.mac)
    file_data = None
    mac_input = b""
    if layout.file_data in values:
        data_at, data_text = values[layout.file_data]
        if not data_text or len(data_text) % (2 * BLOCK) or len(data_text) > 2 * MAX_FILE_DATA:
            raise SunRefused("malformed", f"{layout.file_data} is not whole 16-byte blocks")
        file_data = _hex(data_text, len(data_text) // 2, layout.file_data)
        if data_at > mac_at:
            raise SunRefused("malformed", f"{layout.file_data} comes after {layout.mac}")
        mac_input = url[data_at:mac_at].encode("ascii")
    return SunMessage(picc, mac, file_data, mac_input)


_HEX = re.compile(r"[0-9A-Fa-f]*")


def _hex(text: str, length: int, name: str) -> bytes:
    # bytes.fromhex alone would take spaces between the digits.
    if len(text) != 2 * length or not _HEX.fullmatch(text):
        raise SunRefused("malformed", f"{name} is not {length} bytes in hex")
    return bytes.fromhex(text)


# ---------------------------------------------------------------- the card's side


def card_url(
    base: str,
    meta_read_key: bytes,
    file_read_key: bytes,
    uid: bytes,
    counter: int,
    file_data: bytes | None = None,
    padding: bytes = bytes(5),
) -> str:
    """The URL a card personalised by `pos-client card issue` answers a read with (what
    its SDM computes): for the simulated reader, field tests and the demo's cards.
    `padding` is the PICC data's random tail (the card's own; any 5 bytes)."""
    if len(uid) != UID_BYTES or not 0 <= counter <= 0xFFFFFF or len(padding) != 5:
        raise ValueError("a card has a 7-byte UID, a 3-byte counter and 5 bytes of padding")
    plain = bytes([_UID_MIRRORED | _COUNTER_MIRRORED | UID_BYTES]) + uid
    plain += counter.to_bytes(3, "little") + padding
    picc = cbc_encrypt(meta_read_key, bytes(BLOCK), plain).hex().upper()
    url = f"{base}?picc_data={picc}&"
    mac_input = b""
    if file_data is not None:
        if not file_data or len(file_data) % BLOCK:
            raise ValueError("file data is whole 16-byte blocks")
        enc_key = session_enc_key(file_read_key, uid, counter)
        data = cbc_encrypt(enc_key, _file_data_iv(enc_key, counter), file_data).hex().upper()
        mac_input = f"{data}&cmac=".encode("ascii")
        url += f"enc={data}&"
    mac = sdm_mac(session_mac_key(file_read_key, uid, counter), mac_input)
    return url + f"cmac={mac.hex().upper()}"


# ---------------------------------------------------------------- a programme's keys


@dataclass(frozen=True)
class SunKeys:
    """A programme's SDM keys (held by the store server, or the embedded backend): the
    meta-read key that decrypts the PICC data, and the file-read key whose session keys MAC
    each tap, diversified per card (AN10922, with the programme's system identifier) unless
    `diversify` is off (all cards one key: test cards only)."""

    meta_read_key: bytes = field(repr=False)
    file_read_key: bytes = field(repr=False)
    diversify: bool = True
    system_identifier: bytes = b""
    # Only where cards are issued (`pos-client card issue`): keys 0, 3 and 4 of each card
    # are diversified from it. A store server that only verifies taps does without.
    card_master_key: bytes | None = field(default=None, repr=False)

    def file_read_key_for(self, uid: bytes) -> bytes:
        if not self.diversify:
            return self.file_read_key
        return diversify_key(self.file_read_key, uid, self.system_identifier)

    def weaknesses(self, issuing: bool = False) -> list[str]:
        """What makes these keys weak, in words for staff (never a key): published test
        keys, one key for two purposes, every card one key; a verifying server that holds
        the issuing master key it does not need."""
        said = []
        if any(key == bytes(KEY_BYTES) for key in (self.meta_read_key, self.file_read_key)):
            said.append("an all-zero key (NXP's published test key: anyone can make cards)")
        if self.meta_read_key == self.file_read_key:
            said.append("meta_read_key and file_read_key are the same key")
        if not self.diversify:
            said.append("diversify = false: every card has the same key (test cards only)")
        if self.card_master_key is not None and not issuing:
            said.append("card_master_key is here but only issuing needs it: keep it there")
        return said

    def verify_url(self, url: str, layout: UrlLayout = UrlLayout()) -> VerifiedTap:
        """A tap's URL checked whole: SunRefused (malformed, unreadable, forged) if it
        proves nothing. The replay check (a rising counter) is the ledger's."""
        return verify(parse_url(url, layout), self.meta_read_key, self.file_read_key_for)


MAX_KEY_FILE_BYTES = 4096  # five keys and two settings need a few hundred


def _read_key_file(path: Path) -> bytes:
    """The file's bytes: a regular file owned-readable only, never followed through a
    symbolic link, never blocking (a FIFO), read bounded."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{path}: a symbolic link; name the card keys file itself") from None
        raise ValueError(f"{path}: cannot read the card keys ({exc.strerror})") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{path}: not a regular file of card keys")
        if status.st_mode & 0o077:
            raise ValueError(f"{path}: card keys readable by others; chmod 600 {path}")
        if status.st_uid != os.geteuid():  # whoever owns it can make forged cards pass
            raise ValueError(f"{path}: card keys owned by another user; chown it to this one")
        if status.st_size > MAX_KEY_FILE_BYTES:
            raise ValueError(f"{path}: too large to be a card keys file")
        raw = os.read(descriptor, MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the card keys ({exc.strerror})") from None
    finally:
        os.close(descriptor)
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path}: too large to be a card keys file")
    return raw


KEY_FIELDS = ("meta_read_key", "file_read_key")
MASTER_FIELD = "card_master_key"


def load_sun_keys(path: Path) -> SunKeys:
    """A programme's SDM keys from a TOML file readable by its owner only:

        meta_read_key = "<32 hex digits>"
        file_read_key = "<32 hex digits>"   # the master key when diversify = true
        diversify = true
        system_identifier = "<hex, 1 to 21 bytes>"   # needed when diversify = true
        card_master_key = "<32 hex digits>"   # issuing cards only (identifier: 20 bytes)

    ValueError names the file and the field, never a key's value."""
    import tomllib

    raw = _read_key_file(path)
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise ValueError(f"{path}: not a TOML file of card keys") from None
    unknown = sorted(set(table) - {*KEY_FIELDS, MASTER_FIELD, "diversify", "system_identifier"})
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    keys = {}
    for name in (*KEY_FIELDS, MASTER_FIELD):
        if name == MASTER_FIELD and name not in table:
            continue
        text = table.get(name)
        if not isinstance(text, str) or len(text) != 2 * KEY_BYTES or not _HEX.fullmatch(text):
            raise ValueError(f"{path}: {name} must be 32 hex digits (an AES-128 key)")
        keys[name] = bytes.fromhex(text)
    diversify = table.get("diversify", True)
    if not isinstance(diversify, bool):
        raise ValueError(f"{path}: diversify must be true or false")
    identifier_text = table.get("system_identifier", "")
    if not isinstance(identifier_text, str) or not _HEX.fullmatch(identifier_text):
        raise ValueError(f"{path}: system_identifier must be hex")
    identifier = bytes.fromhex(identifier_text) if len(identifier_text) % 2 == 0 else None
    room = 31 - UID_BYTES - len(DIVERSIFICATION_AID)
    if identifier is None or (diversify and not 1 <= len(identifier) <= room):
        raise ValueError(f"{path}: system_identifier must be 1 to {room} bytes of hex")
    return SunKeys(
        keys["meta_read_key"],
        keys["file_read_key"],
        diversify,
        identifier,
        keys.get(MASTER_FIELD),
    )
