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
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from pos_client.sun import (
    BLOCK,
    KEY_BYTES,
    SunKeys,
    SunRefused,
    aes_cmac,
    cbc_decrypt,
    cbc_encrypt,
    diversify_key,
    ecb_encrypt_block,
    truncate_mac,
)

OK, MORE = b"\x91\x00", b"\x91\xaf"  # native command status words (ISO-wrapped: 91 xx)
AUTHENTICATION_ERROR = b"\x91\xae"
INTEGRITY_ERROR = b"\x91\x1e"  # ChangeKey: the old key given is not the card's


class Ntag424Error(Exception):
    """A card answer that ends the session: its status, or a check that failed (the card
    did not prove it holds the key). The text is for staff; it never holds a key.
    `final`: presenting the card again will not help (another programme's card, not an
    NTAG 424 DNA); otherwise issuing resumes where it stopped."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class NoUrl(Ntag424Error):
    """The card's NDEF file holds no message: a blank card."""


class WrongKey(Ntag424Error):
    """The card answered authentication properly and refused the key (91 AE), or could
    not prove it holds it: a different key, not a fault of the answer."""


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
    if answer == AUTHENTICATION_ERROR:
        raise WrongKey("the card refused the key (91 ae)")
    if len(answer) != 2 * BLOCK + 2 or answer[-2:] != OK:
        raise Ntag424Error(f"the card refused authentication (status {answer[-2:].hex()})")
    plain = cbc_decrypt(key, bytes(BLOCK), answer[: 2 * BLOCK])
    if not hmac.compare_digest(plain[4:20], _rotate_left(rnd_a)):
        # As likely a misread answer as a wrong key (91 AE says that): not WrongKey.
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

_SAFE_URL = re.compile(r"[A-Za-z0-9._~:/%+-]+")  # no query, fragment, user info, quotes
_SAFE_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
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
    MAC's own), the layout pos_client.sun.parse_url reads. The base is refused unless it
    is a plain https:// or http:// address with a host and no query, fragment or SUN
    parameter name of its own (the offsets are counted from the end: the base's text
    cannot move them)."""
    prefix = next((p for p in _URI_PREFIXES if base.startswith(p)), None)
    rest = base[len(prefix) :] if prefix else ""
    host = rest.split("/", 1)[0]
    try:
        port = urlsplit(base).port  # ValueError: a port out of range
    except ValueError:
        port = -1
    if (
        prefix is None
        or not _SAFE_HOST.fullmatch(host)
        or not _SAFE_URL.fullmatch(base)
        or port == -1
    ):
        raise ValueError(
            "a card's base URL is https://host/path in plain ASCII, with no space, query "
            "(?, &, =) or fragment (#): the card adds ?picc_data=...&cmac=..."
        )
    url = f"{base}?picc_data={'0' * 32}&cmac={'0' * 16}"
    payload = bytes([_URI_PREFIXES[prefix]]) + url[len(prefix) :].encode("ascii")
    if len(payload) > 0xFF:
        raise ValueError("a card's URL fits one short NDEF record (255 bytes)")
    record = bytes([0xD1, 0x01, len(payload)]) + b"U" + payload
    file = len(record).to_bytes(2, "big") + record
    if len(file) > 255:  # read back in one short APDU (Le <= 255)
        raise ValueError("a card's base URL is too long for its NDEF file")
    mac = len(file) - 16
    picc = mac - len("&cmac=") - 32
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


# ---------------------------------------------------------------- GetVersion

GET_VERSION = bytes.fromhex("9060000000")
ADDITIONAL_FRAME = bytes.fromhex("90AF000000")
# GetVersion's hardware type and subtypes of the NTAG 424 DNA family (datasheet 10.5.2).
NTAG424_SUBTYPES = {0x02: "NTAG 424 DNA", 0x08: "NTAG 424 DNA TagTamper"}

CardTransmit = Callable[[bytes], bytes]  # an APDU to the card's answer (data, SW1, SW2)


@dataclass(frozen=True)
class CardVersion:
    """What GetVersion tells of a card: vendor, hardware and software, and its UID."""

    vendor: int
    hw_type: int
    hw_subtype: int
    hw_version: tuple[int, int]
    sw_version: tuple[int, int]
    uid: bytes = field(repr=False)

    @property
    def name(self) -> str | None:
        """The NXP product name, or None for any other card."""
        if self.vendor != 0x04 or self.hw_type != 0x04:
            return None
        return NTAG424_SUBTYPES.get(self.hw_subtype)


def read_version(transmit: CardTransmit) -> CardVersion:
    """GetVersion (60, then AF twice): Ntag424Error if the card does not answer it."""
    parts = []
    for apdu, status in ((GET_VERSION, MORE), (ADDITIONAL_FRAME, MORE), (ADDITIONAL_FRAME, OK)):
        answer = transmit(apdu)
        if answer[-2:] != status or len(answer) < 9:
            raise Ntag424Error(f"the card does not answer GetVersion (status {answer[-2:].hex()})")
        parts.append(answer[:-2])
    hardware, software, production = parts
    # Production: UID 7, batch 4, batch/fab key, fab key/week, year (and a fab key id).
    if len(hardware) != 7 or len(software) != 7 or len(production) not in (14, 15):
        raise Ntag424Error("the card's GetVersion answer has an unknown layout")
    return CardVersion(
        vendor=hardware[0],
        hw_type=hardware[1],
        hw_subtype=hardware[2],
        hw_version=(hardware[3], hardware[4]),
        sw_version=(software[3], software[4]),
        uid=production[:7],
    )


# ---------------------------------------------------------------- issuing a card

FACTORY_KEY = bytes(KEY_BYTES)
ISSUED_KEY_VERSION = 0x01
SELECT_NDEF_APPLICATION = bytes.fromhex("00A4040007D276000085010100")
SELECT_NDEF_FILE = bytes.fromhex("00A4000C02E104")
WRITE_CHUNK = 0x80
ISO_OK = b"\x90\x00"
ISO_SECURITY_NOT_SATISFIED = b"\x69\x82"


@dataclass(frozen=True)
class IssuedCard:
    """A card personalised (or found issued) and read back: its UID and the message it
    answered with (verified with the programme's keys), which links it to a member."""

    uid: bytes = field(repr=False)
    url: str = field(repr=False)
    counter: int
    personalised: bool  # this run changed the card (else it was issued here before)
    resumed: bool  # it had been partly issued before (a card taken away mid-way)


def card_keys(keys: SunKeys, uid: bytes) -> list[bytes]:
    """The five keys a card is issued with: 0 (the application master key), 3 and 4
    diversified from the programme's card master key (AN10922, the key number appended to
    the system identifier); 1 the SDM file-read key for this card; 2 the SDM meta-read key
    (one per programme: it is needed before the UID is known)."""
    if keys.card_master_key is None:
        raise ValueError("the card keys file has no card_master_key: it cannot issue cards")
    if len(keys.system_identifier) > 20:
        raise ValueError("issuing cards needs a system_identifier of at most 20 bytes")
    own = {
        n: diversify_key(keys.card_master_key, uid, keys.system_identifier + bytes([n]))
        for n in (0, 3, 4)
    }
    return [own[0], keys.file_read_key_for(uid), keys.meta_read_key, own[3], own[4]]


def mac_command(session: Ev2Session, command: int, header: bytes) -> bytes:
    """A command in CommMode.MAC with header data only (GetKeyVersion)."""
    counter = session.command_counter.to_bytes(2, "little")
    mac = command_mac(session.mac_key, bytes([command]) + counter + session.transaction_id + header)
    body = header + mac
    return bytes([0x90, command, 0x00, 0x00, len(body)]) + body + b"\x00"


def _authenticate(transmit: CardTransmit, key: bytes, random: Callable[[int], bytes]) -> Ev2Session:
    rnd_a = random(BLOCK)
    first = transmit(authenticate_first_command(0))
    if first == AUTHENTICATION_ERROR:
        raise WrongKey("the card refused the key (91 ae)")
    second, rnd_b = authenticate_second_command(key, first, rnd_a)
    return authenticate_finish(key, transmit(second), rnd_a, rnd_b)


def read_card_uid(transmit: CardTransmit, session: Ev2Session) -> tuple[bytes, Ev2Session]:
    """GetCardUID (51) in an authenticated session: the UID as the card proves it (its
    answer encrypted and MACed under the session), not as any reader or GetVersion says."""
    data, session = check_answer(session, transmit(mac_command(session, 0x51, b"")))
    counter = session.command_counter.to_bytes(2, "little")
    iv = ecb_encrypt_block(
        session.enc_key, b"\x5a\xa5" + session.transaction_id + counter + bytes(8)
    )
    if len(data) != BLOCK:
        raise Ntag424Error("the card's GetCardUID answer has an unknown length")
    plain = cbc_decrypt(session.enc_key, iv, data)
    if plain[7:] != b"\x80" + bytes(8):
        raise Ntag424Error("the card's GetCardUID answer does not decrypt to a UID")
    return plain[:7], session


def _write_file(transmit: CardTransmit, file: bytes) -> bool:
    """The URL template into the NDEF file (ISO UPDATE BINARY, free on a blank card):
    False when the file is write-protected already (this programme's SDM settings, from a
    run that stopped: a blank card's file is free)."""
    for offset in range(0, len(file), WRITE_CHUNK):
        chunk = file[offset : offset + WRITE_CHUNK]
        answer = transmit(bytes([0x00, 0xD6, offset >> 8, offset & 0xFF, len(chunk)]) + chunk)
        if answer == ISO_SECURITY_NOT_SATISFIED and offset == 0:
            return False
        if answer != ISO_OK:
            raise Ntag424Error(f"the card refused the URL (status {answer[-2:].hex()})")
    return True


def _read_file(transmit: CardTransmit, length: int) -> bytes:
    answer = transmit(bytes([0x00, 0xB0, 0x00, 0x00, length]))
    if answer[-2:] != ISO_OK or len(answer) != length + 2:
        raise Ntag424Error(f"the card's NDEF file cannot be read (status {answer[-2:].hex()})")
    return answer[:-2]


def _outside_sun_fields(file: bytes, template: UrlTemplate) -> bytes:
    """The file without the fields the card fills in on each read (PICC data, MAC)."""
    picc, mac = template.picc_offset, template.mac_offset
    return file[:picc] + file[picc + 32 : mac] + file[mac + 16 :]


def _select(transmit: CardTransmit, apdu: bytes, what: str) -> None:
    answer = transmit(apdu)
    if answer[-2:] != ISO_OK:
        raise Ntag424Error(
            f"the card has no {what} (status {answer[-2:].hex()}): not an NTAG 424, or a misread"
        )


def read_url(transmit: CardTransmit) -> str:
    """The URL the card answers a read with now (its SUN message): the NDEF file holding
    one short URI record, as `url_template` writes it."""
    _select(transmit, SELECT_NDEF_APPLICATION, "NDEF application")
    _select(transmit, SELECT_NDEF_FILE, "NDEF file")
    answer = transmit(bytes.fromhex("00B0000002"))
    if answer[-2:] != ISO_OK or len(answer) != 4:
        raise Ntag424Error(f"the card's NDEF file cannot be read (status {answer[-2:].hex()})")
    length = int.from_bytes(answer[:2], "big")
    if not 5 < length <= 254:
        raise NoUrl("the card's NDEF file holds no URL")
    answer = transmit(bytes([0x00, 0xB0, 0x00, 0x02, length]))
    record = answer[:-2]
    codes = {code: prefix for prefix, code in _URI_PREFIXES.items()}
    if (
        answer[-2:] != ISO_OK
        or len(record) != length
        or record[:2] != b"\xd1\x01"
        or record[2] != length - 4
        or record[3:4] != b"U"
        or record[4] not in codes
    ):
        raise Ntag424Error("the card's NDEF file is not one URL record")
    try:
        return codes[record[4]] + record[5:].decode("ascii")
    except UnicodeDecodeError:
        raise Ntag424Error("the card's URL is not ASCII") from None


def _verified_url(
    transmit: CardTransmit, keys: SunKeys, uid: bytes, base_url: str
) -> tuple[str, int]:
    """The card's message now, read and verified as a store server would, for `uid`."""
    url = read_url(transmit)
    if url.split("?", 1)[0] != base_url:
        raise Ntag424Error(
            f"this card answers with the URL {url.split('?', 1)[0]}: if that repeats, it was "
            "issued by this programme for it (give that URL)"
        )
    try:
        tap = keys.verify_url(url)
    except SunRefused as refused:
        raise Ntag424Error(f"the card's message does not verify: {refused}") from None
    if tap.uid != uid:
        raise Ntag424Error("the card's message names another UID")
    return url, tap.counter


def _write_template(transmit: CardTransmit, template: UrlTemplate) -> bool:
    """The URL template in the NDEF file, checked by reading it back; False when the file
    was written and locked by an earlier run (then it must hold this template's URL)."""
    _select(transmit, SELECT_NDEF_APPLICATION, "NDEF application")
    _select(transmit, SELECT_NDEF_FILE, "NDEF file")
    written = _write_file(transmit, template.file)
    kept = _read_file(transmit, len(template.file))
    if written and kept != template.file:
        raise Ntag424Error("the card did not keep the URL written to it")
    if not written and _outside_sun_fields(kept, template) != _outside_sun_fields(
        template.file, template
    ):
        raise Ntag424Error(
            "this card was partly issued with another URL: present it again with the URL "
            "it was started with",
            final=True,
        )
    return written


def _personalise(
    transmit: CardTransmit,
    session: Ev2Session,
    template: UrlTemplate,
    own: list[bytes],
) -> tuple[Ev2Session, bool]:
    """SDM on, then keys 1-4 (each from its factory value, or its own when a card taken
    away mid-way already has it: its version says). True if some key was already its own."""
    settings = sdm_file_settings(template)
    answer = transmit(change_file_settings_command(session, NDEF_FILE, settings))
    _data, session = check_answer(session, answer)
    partial = False
    for number in (1, 2, 3, 4):
        current, session = check_answer(
            session, transmit(mac_command(session, 0x64, bytes([number])))
        )
        done = current == bytes([ISSUED_KEY_VERSION])
        partial = partial or done
        old = own[number] if done else FACTORY_KEY
        answer = transmit(change_key_command(session, number, own[number], ISSUED_KEY_VERSION, old))
        if answer == INTEGRITY_ERROR:
            raise Ntag424Error(
                f"the card's key {number} is neither the factory key nor this programme's: "
                "another programme started it, or the keys file changed; it cannot be "
                "finished here",
                final=True,
            )
        _data, session = check_answer(session, answer)
    return session, partial


def issue_card(
    transmit: CardTransmit,
    keys: SunKeys,
    base_url: str,
    random: Callable[[int], bytes],
    known: Callable[[bytes], bool] = lambda _uid: False,
) -> IssuedCard:
    """Personalise a blank NTAG 424 DNA for the programme. Nothing is written before the
    card proves its key 0 is the factory key and its UID (GetCardUID in an authenticated
    session); then the URL template (read back), ChangeFileSettings enabling SDM (UID and
    counter mirrored, encrypted under key 2, MACed with key 1; the file then written with
    key 0 only), keys 1-4 changed to the card's own, and its message read and verified as
    a store server would: only then key 0, the change that cannot be undone, checked by
    authenticating with the new key. A card taken away at any step can be presented again
    (the locked file, the key versions and key 0 say what was done); a card issued here
    before is read back; another programme's card is refused unchanged. `known(uid)`: the
    store already knows a card with this UID (then a "blank" one claiming it is refused
    before any key is sent). Ntag424Error says what failed, never a key."""
    template = url_template(base_url)
    card_keys(keys, bytes(7))  # no issuing keys: say so before touching the card
    _select(transmit, SELECT_NDEF_APPLICATION, "NDEF application")
    version = read_version(transmit)
    if version.name is None:
        raise Ntag424Error("this card is not an NTAG 424 DNA (GetVersion)", final=True)
    try:
        session = _authenticate(transmit, FACTORY_KEY, random)
    except WrongKey:
        return _issued_before(transmit, keys, version.uid, base_url, random)
    uid, session = read_card_uid(transmit, session)
    if uid != version.uid:
        raise Ntag424Error("the card's GetVersion and GetCardUID name different UIDs")
    if known(uid):
        # A blank card with the UID of one the store knows (linked, tapped, blocked): an
        # emulator asking for that card's keys (a UID is anyone's to read), or a re-used
        # UID. Its keys are never sent.
        raise Ntag424Error(
            "a card with this UID is already known to the store (issued, tapped or "
            "blocked): not issued; an emulator, or a card to hand to the store's staff",
            final=True,
        )
    own = card_keys(keys, uid)
    written = _write_template(transmit, template)  # (selecting the file ends the session)
    session = _authenticate(transmit, FACTORY_KEY, random)
    session, keys_done = _personalise(transmit, session, template, own)
    try:
        _verified_url(transmit, keys, uid, base_url)
    except Ntag424Error as exc:
        raise Ntag424Error(f"{exc}; key 0 is left as it was: present the card again") from None
    session = _authenticate(transmit, FACTORY_KEY, random)
    answer = transmit(change_key_command(session, 0, own[0], ISSUED_KEY_VERSION))
    if answer != OK:
        raise Ntag424Error(f"the card refused its new key 0 (status {answer[-2:].hex()})")
    _select(transmit, SELECT_NDEF_APPLICATION, "NDEF application")
    try:
        _authenticate(transmit, own[0], random)  # the bare 91 00 above proves nothing
    except Ntag424Error:
        raise Ntag424Error("the card did not take its new key 0: present it again") from None
    url, counter = _verified_url(transmit, keys, uid, base_url)
    return IssuedCard(uid, url, counter, personalised=True, resumed=keys_done or not written)


def _issued_before(
    transmit: CardTransmit,
    keys: SunKeys,
    uid: bytes,
    base_url: str,
    random: Callable[[int], bytes],
) -> IssuedCard:
    """A card whose key 0 is no longer the factory's: this programme's (its key 0, which
    only a card with this UID holds, opens it: read it back, changing nothing) or another's
    (refused, unchanged)."""
    _select(transmit, SELECT_NDEF_APPLICATION, "NDEF application")
    try:
        _authenticate(transmit, card_keys(keys, uid)[0], random)
    except WrongKey:
        raise Ntag424Error(
            "this card's key 0 is neither the factory key nor this programme's (for the UID "
            "it gave): if that repeats, it was issued elsewhere and cannot be issued here"
        ) from None
    url, counter = _verified_url(transmit, keys, uid, base_url)
    return IssuedCard(uid, url, counter, personalised=False, resumed=False)
