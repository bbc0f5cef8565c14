"""NTAG 424 DNA commands for issuing secure cards (issue 12): the pure parts, bytes in and
bytes out, so every step is pinned by NXP AN12196's worked examples before a card is ever
written. A driver sends the APDUs built here and hands back the card's answers.

So far: AuthenticateEV2First (the three-pass mutual authentication that starts a secure
messaging session: session keys and transaction identifier), commands in CommMode.Full
(encrypted and MACed, as WriteData, ChangeFileSettings and ChangeKey need), ChangeKey for
the session's own key and for another (its old value and NXP's CRC32), and the check of
the card's MACed answer. Random numbers come from the caller (the
`secrets` module in use; the published ones in tests).
"""

from __future__ import annotations

import hmac
import zlib
from dataclasses import dataclass, field, replace

from pos_client.sun import (
    BLOCK,
    KEY_BYTES,
    aes_cmac,
    cbc_decrypt,
    cbc_encrypt,
    ecb_encrypt_block,
    truncate_mac,
)

OK, MORE = b"\x91\x00", b"\x91\xaf"  # native command status words (ISO-wrapped: 91 xx)


class Ntag424Error(Exception):
    """A card answer that ends the session: its status, or a check that failed (the card
    did not prove it holds the key). The text is for staff; it never holds a key."""


@dataclass(frozen=True)
class Ev2Session:
    """An authenticated secure-messaging session (AN12196 section 4.4)."""

    transaction_id: bytes
    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    pd_cap2: bytes = b""
    pcd_cap2: bytes = b""
    command_counter: int = 0


def _rotate_left(data: bytes) -> bytes:
    return data[1:] + data[:1]


def authenticate_first_command(key_number: int) -> bytes:
    """Part 1: AuthenticateEV2First with the key number and no capabilities."""
    if not 0 <= key_number <= 4:
        raise ValueError("an NTAG 424 DNA has keys 0 to 4")
    return bytes([0x90, 0x71, 0x00, 0x00, 0x02, key_number, 0x00, 0x00])


def authenticate_second_command(key: bytes, answer: bytes, rnd_a: bytes) -> tuple[bytes, bytes]:
    """Part 2 from the card's first answer (its RndB encrypted, then 91 AF): the APDU
    carrying E(RndA || RndB rotated left by one byte), and RndB."""
    if len(key) != KEY_BYTES or len(rnd_a) != BLOCK:
        raise ValueError("a 16-byte key and a 16-byte RndA are needed")
    if len(answer) != BLOCK + 2 or answer[-2:] != MORE:
        raise Ntag424Error(f"the card refused authentication (status {answer[-2:].hex()})")
    rnd_b = cbc_decrypt(key, bytes(BLOCK), answer[:BLOCK])
    token = cbc_encrypt(key, bytes(BLOCK), rnd_a + _rotate_left(rnd_b))
    return bytes([0x90, 0xAF, 0x00, 0x00, 0x20]) + token + b"\x00", rnd_b


def session_vectors(rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """SV1 (encryption) and SV2 (MAC): A55A/5AA5 0001 0080 || RndA[15..14] ||
    (RndA[13..8] xor RndB[15..10]) || RndB[9..0] || RndA[7..0], bytes numbered from the
    last (AN12196 section 4.4.1)."""
    mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True))
    tail = rnd_a[:2] + mixed + rnd_b[6:] + rnd_a[8:]
    return bytes.fromhex("A55A00010080") + tail, bytes.fromhex("5AA500010080") + tail


def authenticate_finish(key: bytes, answer: bytes, rnd_a: bytes, rnd_b: bytes) -> Ev2Session:
    """The session from the card's second answer (E(TI || RndA' || PDcap2 || PCDcap2), then
    91 00), after checking RndA' is RndA rotated: the card holds the key."""
    if len(answer) != 2 * BLOCK + 2 or answer[-2:] != OK:
        raise Ntag424Error(f"the card refused authentication (status {answer[-2:].hex()})")
    plain = cbc_decrypt(key, bytes(BLOCK), answer[: 2 * BLOCK])
    if not hmac.compare_digest(plain[4:20], _rotate_left(rnd_a)):
        raise Ntag424Error("the card did not prove it holds the key (RndA' differs)")
    sv1, sv2 = session_vectors(rnd_a, rnd_b)
    return Ev2Session(
        transaction_id=plain[:4],
        enc_key=aes_cmac(key, sv1),
        mac_key=aes_cmac(key, sv2),
        pd_cap2=plain[20:26],
        pcd_cap2=plain[26:32],
    )


def command_mac(mac_key: bytes, data: bytes) -> bytes:
    """MACt of secure messaging: the CMAC's odd-indexed bytes (AN12196 section 4.4.2)."""
    return truncate_mac(aes_cmac(mac_key, data))


def full_command(session: Ev2Session, command: int, header: bytes, data: bytes) -> bytes:
    """A command in CommMode.Full (AN12196 section 4.4.3): the data padded (80 00..) and
    encrypted under the session ENC key with IV = E(A55A || TI || CmdCtr || 0*8), then
    MACt over Cmd || CmdCtr || TI || header || the encrypted data."""
    counter = session.command_counter.to_bytes(2, "little")
    iv = ecb_encrypt_block(
        session.enc_key, b"\xa5\x5a" + session.transaction_id + counter + bytes(8)
    )
    padded = data + b"\x80" + bytes(-(len(data) + 1) % BLOCK)
    encrypted = cbc_encrypt(session.enc_key, iv, padded)
    mac = command_mac(
        session.mac_key,
        bytes([command]) + counter + session.transaction_id + header + encrypted,
    )
    body = header + encrypted + mac
    if len(body) > 0xFF:
        raise ValueError("a command's data fits one short APDU")
    return bytes([0x90, command, 0x00, 0x00, len(body)]) + body + b"\x00"


def check_answer(session: Ev2Session, answer: bytes) -> tuple[bytes, Ev2Session]:
    """The card's answer to a secured command: its status must be 91 00 and its MACt over
    RC || CmdCtr+1 || TI || data must verify. Returns the data (still encrypted for Full
    answers) and the session with the command counter moved on."""
    if len(answer) < 2 + 8 or answer[-2:] != OK:
        raise Ntag424Error(f"the card refused the command (status {answer[-2:].hex()})")
    data, mac = answer[:-10], answer[-10:-2]
    counter = (session.command_counter + 1).to_bytes(2, "little")
    expected = command_mac(session.mac_key, b"\x00" + counter + session.transaction_id + data)
    if not hmac.compare_digest(expected, mac):
        raise Ntag424Error("the card's answer does not verify (a reader or card fault)")
    return data, replace(session, command_counter=session.command_counter + 1)


def change_key_command(
    session: Ev2Session,
    key_number: int,
    new_key: bytes,
    version: int,
    old_key: bytes | None = None,
    authenticated_key: int = 0,
) -> bytes:
    """ChangeKey (C4) in CommMode.Full (AN12196 section 6.16). The key the session was
    authenticated with is sent as NewKey || KeyVer; any other key as (NewKey xor OldKey) ||
    KeyVer || CRC32(NewKey), so the old key must be given (the card checks it)."""
    if len(new_key) != KEY_BYTES or not 0 <= version <= 0xFF:
        raise ValueError("a new key is 16 bytes and its version 0 to 255")
    if key_number == authenticated_key:
        data = new_key + bytes([version])
    else:
        if old_key is None or len(old_key) != KEY_BYTES:
            raise ValueError("changing another key than the session's needs its old value")
        crc = (~zlib.crc32(new_key) & 0xFFFFFFFF).to_bytes(4, "little")  # NXP's CRC32
        data = bytes(a ^ b for a, b in zip(new_key, old_key, strict=True)) + bytes([version]) + crc
    return full_command(session, 0xC4, bytes([key_number]), data)


# ---------------------------------------------------------------- the NDEF file and SDM

NDEF_FILE = 0x02  # the NTAG 424 DNA's NDEF file (E104), the only one SDM may be enabled on
_URI_PREFIXES = {"https://": 0x04, "http://": 0x03}


@dataclass(frozen=True)
class UrlTemplate:
    """The NDEF file a card is written with: its URL with zeroed SUN fields, and where in
    the file the card mirrors them (offsets from the file's first byte)."""

    file: bytes
    picc_offset: int
    mac_input_offset: int
    mac_offset: int


def url_template(base: str) -> UrlTemplate:
    """The file for `base` + "?picc_data=<32>&cmac=<16>": one NDEF URI record (NLEN, a
    short record, the URI prefix code), the MAC over no input (its input offset is the
    MAC's own), the layout pos_client.sun.parse_url reads."""
    prefix = next((p for p in _URI_PREFIXES if base.startswith(p)), None)
    if prefix is None or not base[len(prefix) :] or not base.isascii() or "?" in base:
        raise ValueError("a card's base URL is https:// or http:// with no query, in ASCII")
    url = f"{base}?picc_data={'0' * 32}&cmac={'0' * 16}"
    payload = bytes([_URI_PREFIXES[prefix]]) + url[len(prefix) :].encode("ascii")
    if len(payload) > 0xFF:
        raise ValueError("a card's URL fits one short NDEF record (255 bytes)")
    record = bytes([0xD1, 0x01, len(payload)]) + b"U" + payload
    file = len(record).to_bytes(2, "big") + record
    if len(file) > 256:
        raise ValueError("a card's NDEF file holds 256 bytes")
    picc = file.index(b"picc_data=") + len(b"picc_data=")
    mac = file.index(b"&cmac=") + len(b"&cmac=")
    return UrlTemplate(file, picc, mac, mac)


def sdm_file_settings(template: UrlTemplate) -> bytes:
    """ChangeFileSettings data enabling SDM on the NDEF file for the template: plain
    communication, read free, everything else with key 0; the UID and read counter
    mirrored in the PICC data (ASCII), decrypted with key 2 (meta read), the MAC with key 1
    (file read), the counter readable with key 1 (AN12196 section 6.9)."""

    def offset(value: int) -> bytes:
        return value.to_bytes(3, "little")

    return (
        bytes([0x40])  # FileOption: SDM enabled, CommMode plain
        + bytes([0x00, 0xE0])  # AccessRights: RW 0, Change 0, Read free (E), Write 0
        + bytes([0xC1])  # SDMOptions: UID mirror, read counter mirror, ASCII encoding
        + bytes([0xF1, 0x21])  # SDMAccessRights: RFU F, CtrRet 1, MetaRead 2, FileRead 1
        + offset(template.picc_offset)
        + offset(template.mac_input_offset)
        + offset(template.mac_offset)
    )


def change_file_settings_command(session: Ev2Session, file_number: int, settings: bytes) -> bytes:
    """ChangeFileSettings (5F) in CommMode.Full."""
    return full_command(session, 0x5F, bytes([file_number]), settings)
