"""PC/SC contactless readers through pyscard (pcscd on Linux, WinSCard elsewhere).

One monitor thread waits on SCardGetStatusChange for every reader plus the PnP pseudo
reader, so readers coming and going and cards arriving and leaving are one loop — and when
pcscd stops, the loop drops its context and re-establishes it with backoff.

On a card: read the UID (FF CA 00 00 00); for NTAG/Ultralight cards with an NDEF capability
container, read the NDEF TLV from page 4 (FF B0 00 page 10) and, when configured, take a
member number from a text or URI record. Every status word and transmit error becomes a
clear ScanEvent(kind="error"), never an exception out of the thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from drivers.base import DriverUnavailable, Sink, require_module
from pos_client.configfile import Section
from pos_client.events import ReaderStatus, ScanEvent

log = logging.getLogger(__name__)

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
PNP_READER = "\\\\?PnP?\\Notification"
PCSC_RID = bytes.fromhex("A000000306")
NDEF_PAGE = 4
MAX_NDEF_BYTES = 1024  # NTAG216 holds 888

# PC/SC part 3, section 3.1.3.2.3: the standard byte and the card-name bytes of storage cards.
STANDARDS = {
    0x01: "ISO 14443 A part 1",
    0x02: "ISO 14443 A part 2",
    0x03: "ISO 14443 A part 3",
    0x05: "ISO 14443 B part 1",
    0x06: "ISO 14443 B part 2",
    0x07: "ISO 14443 B part 3",
    0x09: "ISO 15693 part 1",
    0x0B: "ISO 15693 part 3",
    0x11: "FeliCa",
}
CARD_NAMES = {
    0x0001: "MIFARE Classic 1K",
    0x0002: "MIFARE Classic 4K",
    0x0003: "MIFARE Ultralight / NTAG",
    0x0026: "MIFARE Mini",
    0x003A: "MIFARE Ultralight C",
    0x0036: "MIFARE Plus SL1 2K",
    0x0037: "MIFARE Plus SL1 4K",
    0xF004: "Topaz / Jewel",
    0xF011: "FeliCa 212K",
    0xF012: "FeliCa 424K",
}
NDEF_CARDS = {0x0003, 0x003A}

STATUS_WORDS: dict[tuple[int, int], str] = {
    (0x90, 0x00): "ok",
    (0x62, 0x82): "end of data reached before the requested length",
    (0x63, 0x00): "the card did not answer (read failed)",
    (0x65, 0x81): "memory failure on the card",
    (0x67, 0x00): "wrong length",
    (0x68, 0x00): "class byte not supported",
    (0x69, 0x81): "command incompatible with this card",
    (0x69, 0x82): "security status not satisfied (card is protected)",
    (0x69, 0x86): "command not allowed",
    (0x6A, 0x81): "function not supported by this card or reader",
    (0x6A, 0x82): "file or page not found",
    (0x6B, 0x00): "wrong parameter (page out of range)",
    (0x6D, 0x00): "instruction not supported",
    (0x6E, 0x00): "class not supported",
}


def describe_status(sw1: int, sw2: int) -> str:
    meaning = STATUS_WORDS.get((sw1, sw2)) or STATUS_WORDS.get((sw1, 0x00)) or "unknown status"
    return f"{sw1:02X} {sw2:02X}: {meaning}"


class CardReadError(Exception):
    """A card that could not be read; the message is fit for staff."""


@dataclass(frozen=True)
class CardInfo:
    standard: str | None
    name: str | None
    name_code: int | None
    storage: bool  # a PC/SC part 3 storage-card ATR

    @property
    def ndef_capable(self) -> bool:
        return self.name_code in NDEF_CARDS


def parse_atr(atr: bytes) -> CardInfo:
    """Recognise a contactless storage card from its PC/SC part 3 ATR."""
    index = atr.find(PCSC_RID)
    if index < 0 or len(atr) < index + len(PCSC_RID) + 3:
        return CardInfo(None, None, None, False)
    standard = atr[index + 5]
    code = int.from_bytes(atr[index + 6 : index + 8], "big")
    return CardInfo(
        STANDARDS.get(standard, f"standard 0x{standard:02X}"),
        CARD_NAMES.get(code, f"card 0x{code:04X}"),
        code,
        True,
    )


Transmit = Callable[[list[int]], tuple[list[int], int, int]]


def read_uid(transmit: Transmit) -> bytes:
    data, sw1, sw2 = transmit(GET_UID)
    if (sw1, sw2) != (0x90, 0x00):
        raise CardReadError(f"cannot read the card UID ({describe_status(sw1, sw2)})")
    if len(data) not in (4, 7, 10):
        raise CardReadError(f"the reader returned a {len(data)}-byte UID; expected 4, 7 or 10")
    return bytes(data)


PAGE_READ_BYTES = 16  # FF B0 .. 10: four 4-byte pages


def read_pages(transmit: Transmit, page: int) -> bytes:
    data, sw1, sw2 = transmit([0xFF, 0xB0, 0x00, page & 0xFF, PAGE_READ_BYTES])
    if (sw1, sw2) != (0x90, 0x00):
        raise CardReadError(f"cannot read page {page} ({describe_status(sw1, sw2)})")
    if len(data) != PAGE_READ_BYTES:  # "90 00" with no or short data: never trust it
        raise CardReadError(
            f"the card answered a read of page {page} with {len(data)} bytes instead of "
            f"{PAGE_READ_BYTES}; tap again"
        )
    return bytes(data)


def ndef_tlv(memory: bytes) -> tuple[bytes | None, int | None]:
    """Find the NDEF TLV (type 03) in type-2 tag memory from page 4 on.

    Returns (message, None) when complete, (None, total_needed) when more bytes must be
    read, or (None, None) when the card holds no NDEF message."""
    offset = 0
    while offset < len(memory):
        tag = memory[offset]
        if tag == 0x00:  # NULL TLV
            offset += 1
            continue
        if tag == 0xFE:  # terminator
            return None, None
        if offset + 1 >= len(memory):
            return None, offset + 4
        length = memory[offset + 1]
        header = 2
        if length == 0xFF:
            if offset + 3 >= len(memory):
                return None, offset + 4
            length = int.from_bytes(memory[offset + 2 : offset + 4], "big")
            header = 4
        end = offset + header + length
        if end > MAX_NDEF_BYTES:
            raise CardReadError("NDEF length is larger than any supported tag")
        if tag == 0x03:
            if end > len(memory):
                return None, end
            return memory[offset + header : end], None
        offset = end  # lock control, memory control or proprietary TLVs: skip
    return None, None


def read_ndef(transmit: Transmit) -> bytes | None:
    """Read the NDEF message of a type-2 tag, or None when it is not NDEF-formatted."""
    first = read_pages(transmit, 3)
    if first[0] != 0xE1:  # capability container magic
        return None
    memory = first[4:]
    page = NDEF_PAGE + len(memory) // 4
    for _ in range(MAX_NDEF_BYTES // PAGE_READ_BYTES + 2):  # bounded, whatever the card says
        message, needed = ndef_tlv(memory)
        if needed is None:
            return message
        if needed > MAX_NDEF_BYTES:
            raise CardReadError("NDEF message too long")
        memory += read_pages(transmit, page)
        page += 4
    raise CardReadError("the card's NDEF message never ended; tap again")


# NFC Forum Type 4 tags (ISO 14443-4: NTAG 424 DNA, DESFire): the NDEF application, its
# NDEF file, and READ BINARY in chunks (issue 12).
SELECT_NDEF_APP = [0x00, 0xA4, 0x04, 0x00, 0x07, 0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01, 0x00]
SELECT_NDEF_FILE = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x04]
READ_CHUNK = 0x80


def read_binary(transmit: Transmit, offset: int, length: int) -> bytes:
    data, sw1, sw2 = transmit([0x00, 0xB0, offset >> 8, offset & 0xFF, length])
    if (sw1, sw2) != (0x90, 0x00):
        raise CardReadError(f"cannot read the card's NDEF file ({describe_status(sw1, sw2)})")
    if len(data) != length:  # short or long: never trust it
        raise CardReadError(
            f"the card answered a read of {length} bytes with {len(data)}; tap again"
        )
    return bytes(data)


def read_type4_ndef(transmit: Transmit) -> bytes | None:
    """The NDEF message of a Type 4 tag (SELECT the NDEF application D2760000850101, its
    NDEF file E104, READ BINARY: the 2-byte length, then the message), or None when the
    card has no NDEF application."""
    _data, sw1, sw2 = transmit(SELECT_NDEF_APP)
    if (sw1, sw2) != (0x90, 0x00):
        return None
    _data, sw1, sw2 = transmit(SELECT_NDEF_FILE)
    if (sw1, sw2) != (0x90, 0x00):
        raise CardReadError(f"the card has no NDEF file ({describe_status(sw1, sw2)})")
    length = int.from_bytes(read_binary(transmit, 0, 2), "big")
    if length > MAX_NDEF_BYTES:
        raise CardReadError("NDEF length is larger than any supported tag")
    message = b""
    while len(message) < length:
        chunk = min(READ_CHUNK, length - len(message))
        message += read_binary(transmit, 2 + len(message), chunk)
    return message


def ndef_records(message: bytes) -> tuple[Any, list[Any]]:
    """ndeflib and the message's records; CardReadError for a damaged message."""
    ndef = require_module("ndef", "pip install ndeflib")
    try:
        return ndef, list(ndef.message_decoder(message))
    except Exception as exc:  # ndeflib raises its own DecodeError family
        raise CardReadError(f"the card's NDEF message is damaged ({exc})") from None


def sun_url_from_ndef(message: bytes) -> str | None:
    """The secure-NFC URL of a card's NDEF message: its first URI record carrying SUN
    parameters (picc_data and cmac, the layout pos_client.sun reads), else None."""
    ndef, records = ndef_records(message)
    for record in records:
        if isinstance(record, ndef.UriRecord):
            uri = str(record.iri)
            if "picc_data=" in uri and "cmac=" in uri:
                return uri
    return None


@dataclass(frozen=True)
class NdefPolicy:
    field: str = "none"  # "none", "text" or "uri": where a member number is written
    uri_pattern: str = r"(?:[?&]m=|/m/)([A-Za-z0-9-]{4,40})"


def member_from_ndef(message: bytes, policy: NdefPolicy) -> str | None:
    """The member number from a text or URI record, as the config says cards carry it."""
    if policy.field == "none":
        return None
    ndef, records = ndef_records(message)
    for record in records:
        if policy.field == "text" and isinstance(record, ndef.TextRecord):
            return str(record.text).strip()
        if policy.field == "uri" and isinstance(record, ndef.UriRecord):
            match = re.search(policy.uri_pattern, str(record.iri))
            if match:
                return match.group(1)
    return None


def read_card(
    transmit: Transmit,
    atr: bytes,
    source: str,
    ndef_policy: NdefPolicy,
    secure_cards: bool = False,
) -> ScanEvent:
    """Turn one presented card into one event: with `secure_cards`, a Type 4 tag's secure
    NFC URL (kind "sun": the store server verifies it); a member number from NDEF if
    configured and present; else the UID; a clear error event when the card cannot be read."""
    info = parse_atr(atr)
    if secure_cards and not info.storage:  # ISO 14443-4: maybe an NTAG 424 DNA
        message = read_type4_ndef(transmit)
        url = sun_url_from_ndef(message) if message else None
        if url is not None:
            return ScanEvent(source, "sun", url, _fixed_uid(transmit))
    try:
        uid = read_uid(transmit)
    except CardReadError as exc:
        return ScanEvent(source, "error", str(exc), atr)
    if ndef_policy.field != "none" and info.ndef_capable:
        try:
            message = read_ndef(transmit)
            member = member_from_ndef(message, ndef_policy) if message else None
        except CardReadError as exc:
            log.warning("%s: NDEF unreadable, using the UID: %s", source, exc)
            member = None
        if member:
            return ScanEvent(source, "ndef", member, uid)
    return ScanEvent(source, "nfc", uid.hex().upper(), uid)


def _fixed_uid(transmit: Transmit) -> bytes:
    """A secure card's 7-byte UID as the reader sees it, which its message must prove (so a
    terminal may find the card by it offline); empty when unreadable, or a random ID (a
    card personalised with Random ID answers 08 and three random bytes)."""
    try:
        uid = read_uid(transmit)
    except CardReadError:
        return b""
    return uid if len(uid) == 7 else b""


class Debouncer:
    """One event per tap: a re-tap of the same card within `window_s` is ignored."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._last: dict[str, float] = {}

    def accept(self, value: str) -> bool:
        now = self.clock()
        last = self._last.get(value)
        self._last[value] = now
        return last is None or now - last >= self.window_s


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


class PcscReader:
    kind = "pcsc"

    def __init__(self, name: str, options: Mapping[str, Any], sink: Sink) -> None:
        section = Section(options, f"reader {name}", f"readers.{name}.")
        self.name = name
        self.sink = sink
        self.reader_filter = section.text("reader", "")  # substring of the reader name
        self.debounce = Debouncer(float(section.decimal("debounce_s", "1.5")))
        self.ndef = NdefPolicy(
            field=section.text("ndef_member", "none"),
            uri_pattern=section.text("ndef_uri_pattern", NdefPolicy.uri_pattern),
        )
        if self.ndef.field not in ("none", "text", "uri"):
            raise section.fail("ndef_member", "expected none, text or uri")
        # Read NTAG 424 DNA cards' secure NFC messages (issue 12); off: their UID.
        self.secure_cards = section.flag("secure_cards", False)
        self.poll_ms = section.integer("poll_ms", 250, minimum=10)
        self.backoff_cap_s = float(section.decimal("reconnect_max_s", "1.0"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: Any = None
        self.readers: list[str] = []
        self.last_error: str | None = None

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        self.scard = require_module(
            "smartcard.scard",
            "install the 'pcsc' extra (pip install 'pos-client[pcsc]'; needs libpcsclite-dev)",
        )
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pcsc-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        context = self._context
        if context is not None:
            self.scard.SCardCancel(context)  # wakes SCardGetStatusChange at once
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> PcscReader:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self) -> str:
        state = f"readers: {', '.join(self.readers) or 'none'}"
        return f"pcsc {self.name}: {state}" + (f"; {self.last_error}" if self.last_error else "")

    def problem(self) -> str | None:
        if self.last_error:
            return self.last_error
        return None if self.readers else "no PC/SC reader connected"

    # ------------------------------------------------------------ monitor loop

    def _status(self, state: str, detail: str = "") -> None:
        self.last_error = detail if state == "error" else None
        self.sink(ReaderStatus(f"pcsc:{self.name}", state, detail))

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                self._watch()
                delay = 0.05
            except _ServiceLost as exc:
                self._status("error", f"PC/SC service unavailable: {exc}")
            except Exception as exc:  # never let the monitor thread die
                log.exception("pcsc monitor failed")
                self._status("error", f"PC/SC monitor error: {exc}")
            finally:
                self._release()
            self._stop.wait(delay)
            delay = min(self.backoff_cap_s, delay * 2)

    def _release(self) -> None:
        if self._context is not None:
            self.scard.SCardReleaseContext(self._context)
            self._context = None

    def _call(self, result: tuple[Any, ...]) -> tuple[Any, ...]:
        code = _code(result[0])
        if code in _service_errors(self.scard):
            raise _ServiceLost(self.scard.SCardGetErrorMessage(result[0]))
        return result

    def _list_readers(self) -> list[str]:
        hresult, names = self.scard.SCardListReaders(self._context, [])
        code = _code(hresult)
        if code == _code(self.scard.SCARD_E_NO_READERS_AVAILABLE):
            return []
        self._call((hresult,))
        return [n for n in names if self.reader_filter in n]

    def _watch(self) -> None:
        scard = self.scard
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        self._call((hresult,))
        self._context = context
        readers = self._list_readers()
        self._announce(readers)
        states = {name: scard.SCARD_STATE_UNAWARE for name in readers}
        present: dict[str, bool] = {name: False for name in readers}
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            query = [(name, state) for name, state in states.items()]
            query.append((PNP_READER, pnp_state))
            hresult, results = scard.SCardGetStatusChange(context, self.poll_ms, query)
            code = _code(hresult)
            if code in (_code(scard.SCARD_E_TIMEOUT),):
                continue
            if code == _code(scard.SCARD_E_CANCELLED):
                return
            if code in (
                _code(scard.SCARD_E_UNKNOWN_READER),
                _code(scard.SCARD_E_READER_UNAVAILABLE),
            ):
                readers = self._relist(readers, states, present)
                continue
            self._call((hresult,))
            for name, event_state, atr in results:
                if name == PNP_READER:
                    if event_state & scard.SCARD_STATE_CHANGED:
                        pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                        readers = self._relist(readers, states, present)
                    continue
                if name not in states:
                    continue
                states[name] = event_state & ~scard.SCARD_STATE_CHANGED
                if event_state & scard.SCARD_STATE_UNAVAILABLE:
                    continue
                is_present = bool(event_state & scard.SCARD_STATE_PRESENT) and not (
                    event_state & scard.SCARD_STATE_MUTE
                )
                if event_state & scard.SCARD_STATE_MUTE and not present[name]:
                    present[name] = True
                    self.sink(
                        ScanEvent(
                            f"pcsc:{name}",
                            "error",
                            "the card does not answer (mute): present it again, flat on the reader",
                        )
                    )
                    continue
                if is_present and not present[name]:
                    present[name] = True
                    self._card_arrived(name, bytes(atr))
                elif not (event_state & scard.SCARD_STATE_PRESENT) and present[name]:
                    present[name] = False
                    self.sink(ScanEvent(f"pcsc:{name}", "removed", ""))

    def _announce(self, readers: list[str]) -> None:
        self.readers = readers
        if readers:
            self._status("connected", ", ".join(readers))
        else:
            self._status("disconnected", "no PC/SC reader connected")

    def _relist(
        self, old: list[str], states: dict[str, int], present: dict[str, bool]
    ) -> list[str]:
        readers = self._list_readers()
        for gone in set(old) - set(readers):
            states.pop(gone, None)
            present.pop(gone, None)
        for new in set(readers) - set(old):
            states[new] = self.scard.SCARD_STATE_UNAWARE
            present[new] = False
        if set(readers) != set(old):
            self._announce(readers)
        return readers

    def _card_arrived(self, reader: str, atr: bytes) -> None:
        scard = self.scard
        source = f"pcsc:{reader}"
        hresult, card, protocol = scard.SCardConnect(
            self._context,
            reader,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if _code(hresult) != 0:
            self._call((hresult,))
            message = scard.SCardGetErrorMessage(hresult)
            self.sink(ScanEvent(source, "error", f"cannot connect to the card: {message}", atr))
            return

        def transmit(apdu: list[int]) -> tuple[list[int], int, int]:
            code, response = scard.SCardTransmit(card, protocol, apdu)
            if _code(code) != 0:
                self._call((code,))
                raise CardReadError(
                    f"card removed or unreadable while reading ({scard.SCardGetErrorMessage(code)})"
                    "; tap again"
                )
            if len(response) < 2:
                raise CardReadError("the reader returned no status word")
            return list(response[:-2]), response[-2], response[-1]

        try:
            event = read_card(transmit, atr, source, self.ndef, self.secure_cards)
        except CardReadError as exc:
            event = ScanEvent(source, "error", str(exc), atr)
        except (ValueError, IndexError, TypeError, OverflowError) as exc:  # a card's nonsense
            log.warning("%s: unreadable card answer (%s)", source, type(exc).__name__)
            event = ScanEvent(source, "error", "the card gave an answer that cannot be read", atr)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        if event.kind == "error" or self.debounce.accept(event.value):
            self.sink(event)


class _ServiceLost(Exception):
    pass


@dataclass(frozen=True)
class ConnectedCard:
    """A card held for one piece of work (issuing, a doctor's look): its reader, its ATR
    and `transmit`, an APDU to the card's answer (data, SW1, SW2), as pos_client.ntag424
    sends them."""

    reader: str
    atr: bytes
    transmit: Callable[[bytes], bytes]


@contextmanager
def connected_card(reader_filter: str = "", wait_s: float = 0.0) -> Iterator[ConnectedCard]:
    """Connect to the card on the first reader (whose name contains `reader_filter`) that
    holds one, waiting up to `wait_s` for a card to be presented; exclusive, so the
    terminal's own monitor does not read it meanwhile. CardReadError says what is missing."""
    scard = require_module(
        "smartcard.scard",
        "install the 'pcsc' extra (pip install 'pos-client[pcsc]'; needs libpcsclite-dev)",
    )
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if _code(hresult) != 0:
        message = scard.SCardGetErrorMessage(hresult)
        raise CardReadError(f"PC/SC service unavailable: {message} (is pcscd running?)")
    try:
        reader, atr = _wait_for_card(scard, context, reader_filter, wait_s)
        hresult, card, protocol = scard.SCardConnect(
            context,
            reader,
            scard.SCARD_SHARE_EXCLUSIVE,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if _code(hresult) != 0:
            message = scard.SCardGetErrorMessage(hresult)
            raise CardReadError(f"cannot connect to the card on {reader}: {message}")

        def transmit(apdu: bytes) -> bytes:
            code, response = scard.SCardTransmit(card, protocol, list(apdu))
            if _code(code) != 0:
                message = scard.SCardGetErrorMessage(code)
                raise CardReadError(f"the card was taken away or is unreadable ({message})")
            if len(response) < 2:
                raise CardReadError("the reader returned no status word")
            return bytes(response)

        try:
            yield ConnectedCard(reader, atr, transmit)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    finally:
        scard.SCardReleaseContext(context)


def _wait_for_card(
    scard: Any, context: Any, reader_filter: str, wait_s: float
) -> tuple[str, bytes]:
    deadline = time.monotonic() + wait_s
    while True:
        hresult, names = scard.SCardListReaders(context, [])
        readers = [n for n in (names if _code(hresult) == 0 else []) if reader_filter in n]
        if readers:
            hresult, states = scard.SCardGetStatusChange(
                context, 0, [(name, scard.SCARD_STATE_UNAWARE) for name in readers]
            )
            for name, state, atr in states if _code(hresult) == 0 else []:
                if state & scard.SCARD_STATE_PRESENT:
                    return name, bytes(atr)
        if time.monotonic() >= deadline:
            where = f"a reader matching '{reader_filter}'" if reader_filter else "any reader"
            if not readers:
                raise CardReadError(f"no PC/SC reader found ({where})")
            raise CardReadError(f"no card on {where}: present the card and try again")
        time.sleep(0.1)


def _service_errors(scard: Any) -> set[int]:
    names = (
        "SCARD_E_NO_SERVICE",
        "SCARD_E_SERVICE_STOPPED",
        "SCARD_E_INVALID_HANDLE",
        "SCARD_F_COMM_ERROR",
        "SCARD_E_NO_READERS_AVAILABLE_",
        "SCARD_E_INVALID_VALUE",
    )
    return {_code(getattr(scard, name)) for name in names if hasattr(scard, name)}


__all__ = [
    "CardInfo",
    "CardReadError",
    "Debouncer",
    "DriverUnavailable",
    "NdefPolicy",
    "PcscReader",
    "describe_status",
    "member_from_ndef",
    "ndef_tlv",
    "parse_atr",
    "read_card",
]
