"""The PC/SC driver through a real pcscd, the vsmartcard virtual reader and a virtual card."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.pcsc import PcscReader
from pos_client.events import ReaderStatus, ScanEvent
from pos_client.sun import SunKeys, card_url
from tests.integration.vpcd import (
    CLASSIC_ATR,
    ISO_DEP_ATR,
    PcscDaemon,
    VirtualCard,
    ntag_memory,
    pcsc_unavailable_reason,
    type4_ndef_file,
)

REASON = pcsc_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


class Events:
    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.queue.put(event)

    def next_scan(self, timeout: float = 5.0) -> ScanEvent:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no scan event in time")
            event = self.queue.get(timeout=remaining)
            if isinstance(event, ScanEvent):
                return event

    def next_status(self, state: str, timeout: float = 10.0) -> ReaderStatus:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reader status {state!r} in time")
            event = self.queue.get(timeout=remaining)
            if isinstance(event, ReaderStatus) and event.state == state:
                return event

    def quiet(self, seconds: float) -> list[ScanEvent]:
        time.sleep(seconds)
        seen = []
        while not self.queue.empty():
            event = self.queue.get()
            if isinstance(event, ScanEvent):
                seen.append(event)
        return seen


@pytest.fixture
def reader(pcscd: PcscDaemon) -> Iterator[tuple[PcscReader, Events]]:
    events = Events()
    driver = PcscReader(
        "nfc", {"reader": "Virtual PCD 00 00", "debounce_s": 1.0, "ndef_member": "text"}, events
    )
    with driver:
        events.next_status("connected")
        yield driver, events


def tap(card: VirtualCard, events: Events) -> ScanEvent:
    card.insert()
    return events.next_scan()


def test_a_tap_gives_one_uid_event_even_if_the_card_stays(
    reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = reader
    card = VirtualCard()
    event = tap(card, events)
    assert (event.kind, event.value) == ("nfc", "04A224C25E6C80")
    assert event.source == "pcsc:Virtual PCD 00 00"
    assert events.quiet(0.8) == []  # left on the reader: no second event
    card.remove()
    assert events.next_scan().kind == "removed"


def test_a_quick_re_tap_is_debounced_and_a_later_one_is_not(
    reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = reader
    card = VirtualCard(uid=bytes.fromhex("04112233445566"))
    assert tap(card, events).value == "04112233445566"
    card.remove()
    assert events.next_scan().kind == "removed"
    card.insert()
    assert [e.kind for e in events.quiet(0.7)] == []  # same card within 1 s: ignored
    card.remove()
    events.quiet(0.5)
    time.sleep(0.5)
    assert tap(card, events).value == "04112233445566"
    card.remove()


def test_two_cards_in_a_row(reader: tuple[PcscReader, Events]) -> None:
    _driver, events = reader
    values = []
    for uid in ("3B9AC1F2", "08112233445566778899"):
        card = VirtualCard(uid=bytes.fromhex(uid))
        values.append(tap(card, events).value)
        card.remove()
        assert events.next_scan().kind == "removed"
    assert values == ["3B9AC1F2", "08112233445566778899"]


def test_a_card_answering_6a81_is_a_clear_error(reader: tuple[PcscReader, Events]) -> None:
    _driver, events = reader
    card = VirtualCard(uid_status=b"\x6a\x81")
    event = tap(card, events)
    assert event.kind == "error"
    assert "6A 81" in event.value and "not supported" in event.value
    card.remove()


def test_an_ntag_with_an_ndef_text_record_gives_the_member_number(
    reader: tuple[PcscReader, Events],
) -> None:
    import ndef

    _driver, events = reader
    message = b"".join(ndef.message_encoder([ndef.TextRecord("MEMBER-0042")]))
    card = VirtualCard(uid=bytes.fromhex("04AABBCCDDEEFF"), memory=ntag_memory(message))
    event = tap(card, events)
    assert (event.kind, event.value, event.raw) == (
        "ndef",
        "MEMBER-0042",
        bytes.fromhex("04AABBCCDDEEFF"),
    )
    assert any(apdu.startswith(b"\xff\xb0\x00\x03") for apdu in card.apdus)
    card.remove()


def test_a_long_ndef_message_is_read_across_several_page_reads(
    reader: tuple[PcscReader, Events],
) -> None:
    import ndef

    _driver, events = reader
    message = b"".join(
        ndef.message_encoder([ndef.TextRecord("x" * 300), ndef.TextRecord("never reached")])
    )
    card = VirtualCard(uid=bytes.fromhex("04A1A2A3A4A5A6"), memory=ntag_memory(message))
    event = tap(card, events)
    assert (event.kind, event.value) == ("ndef", "x" * 300)
    assert sum(apdu.startswith(b"\xff\xb0") for apdu in card.apdus) > 10
    card.remove()


def test_a_classic_card_gives_its_uid_without_ndef_reads(
    reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = reader
    card = VirtualCard(uid=bytes.fromhex("DEADBEEF"), atr=CLASSIC_ATR)
    assert tap(card, events).value == "DEADBEEF"
    assert all(not apdu.startswith(b"\xff\xb0") for apdu in card.apdus)
    card.remove()


def test_pcscd_killed_and_restarted_while_the_driver_runs(
    pcscd: PcscDaemon,
    reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = reader
    pcscd.kill()
    status = events.next_status("error")
    assert "PC/SC" in status.detail
    pcscd.start()
    restarted = time.monotonic()
    events.next_status("connected", timeout=10)
    recovered_in = time.monotonic() - restarted
    assert recovered_in < 2.0 + 1.0  # the driver reconnects within its backoff cap
    card = VirtualCard(uid=bytes.fromhex("04C0FFEE000001"))
    assert tap(card, events).value == "04C0FFEE000001"
    card.remove()


def test_missing_pyscard_is_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    from drivers.base import DriverUnavailable

    real_import = builtins.__import__

    def no_smartcard(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("smartcard"):
            raise ImportError("No module named 'smartcard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_smartcard)
    monkeypatch.delitem(__import__("sys").modules, "smartcard.scard", raising=False)
    driver = PcscReader("nfc", {}, lambda event: None)
    with pytest.raises(DriverUnavailable, match="pos-client\\[pcsc\\]"):
        driver.open()


def test_a_card_yanked_mid_read_is_never_misread(reader: tuple[PcscReader, Events]) -> None:
    import ndef

    _driver, events = reader
    message = b"".join(ndef.message_encoder([ndef.TextRecord("y" * 200)]))
    card = VirtualCard(
        uid=bytes.fromhex("04DDDDDDDDDD01"), memory=ntag_memory(message), answer_delay_s=0.15
    )
    card.insert()
    deadline = time.monotonic() + 5
    while len(card.apdus) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    card.remove()  # pulled away while the NDEF pages are being read
    seen = events.quiet(1.0)
    assert all(e.kind in ("error", "removed", "nfc") for e in seen)
    assert not any(e.kind == "ndef" for e in seen)  # a half-read record is never used
    assert all(e.value == "04DDDDDDDDDD01" for e in seen if e.kind == "nfc")
    time.sleep(1.0)
    whole = VirtualCard(uid=bytes.fromhex("04DDDDDDDDDD01"), memory=ntag_memory(message))
    assert tap(whole, events).value == "y" * 200
    whole.remove()


@pytest.mark.parametrize("good_reads", [0, 1])
def test_a_card_answering_9000_with_no_data_gives_its_uid_not_a_crash_or_a_hang(
    reader: tuple[PcscReader, Events], good_reads: int
) -> None:
    import ndef

    _driver, events = reader
    message = b"".join(ndef.message_encoder([ndef.TextRecord("y" * 200)]))
    card = VirtualCard(
        uid=bytes.fromhex("04B1B2B3B4B5B6"),
        memory=ntag_memory(message),
        empty_reads_after=good_reads,  # 0: even the capability container; 1: the rest
    )
    event = tap(card, events)  # within 5 s: no endless loop, no dead monitor thread
    assert (event.kind, event.value) == ("nfc", "04B1B2B3B4B5B6")
    assert sum(apdu.startswith(b"\xff\xb0") for apdu in card.apdus) <= good_reads + 1
    card.remove()
    assert events.next_scan().kind == "removed"
    again = VirtualCard(uid=bytes.fromhex("04C1C2C3C4C5C6"))
    assert tap(again, events).value == "04C1C2C3C4C5C6"  # the reader still works
    again.remove()
    assert events.next_scan().kind == "removed"


# ---------------------------------------------------------------- secure cards (issue 12)


def sun_ndef(url: str) -> bytes:
    import ndef

    return type4_ndef_file(b"".join(ndef.message_encoder([ndef.UriRecord(url)])))


ZERO_KEY = bytes(16)
SECURE_UID = bytes.fromhex("04958CAA5C5E80")


@pytest.fixture
def secure_reader(pcscd: PcscDaemon) -> Iterator[tuple[PcscReader, Events]]:
    events = Events()
    driver = PcscReader(
        "nfc", {"reader": "Virtual PCD 00 00", "debounce_s": 0.2, "secure_cards": True}, events
    )
    with driver:
        events.next_status("connected")
        yield driver, events


def test_an_ntag424s_secure_message_is_read_through_pcscd_and_verifies(
    secure_reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = secure_reader
    url = card_url("https://loyalty.example/c", ZERO_KEY, ZERO_KEY, SECURE_UID, 12)
    card = VirtualCard(uid=bytes.fromhex("08A1B2C3"), atr=ISO_DEP_ATR, ndef_file=sun_ndef(url))
    event = tap(card, events)
    assert (event.kind, event.value) == ("sun", url)
    # What the store server does with it: the card proved its UID and counter.
    tap_verified = SunKeys(ZERO_KEY, ZERO_KEY, diversify=False).verify_url(event.value)
    assert (tap_verified.uid, tap_verified.counter) == (SECURE_UID, 12)
    assert [apdu[:4].hex() for apdu in card.apdus[:3]] == ["00a40400", "00a4000c", "00b00000"]
    card.remove()


@pytest.mark.parametrize(
    ("ndef_file", "expected"),
    [
        (None, ("nfc", "08A1B2C3")),  # no NDEF application: the UID, as before
        (b"", ("nfc", "08A1B2C3")),  # an empty NDEF file
        (sun_ndef("https://shop.example/"), ("nfc", "08A1B2C3")),  # a URL with no SUN
    ],
)
def test_a_type4_card_without_a_secure_message_gives_its_uid(
    secure_reader: tuple[PcscReader, Events],
    ndef_file: bytes | None,
    expected: tuple[str, str],
) -> None:
    _driver, events = secure_reader
    if ndef_file == b"":
        ndef_file = type4_ndef_file(b"")
    card = VirtualCard(uid=bytes.fromhex("08A1B2C3"), atr=ISO_DEP_ATR, ndef_file=ndef_file)
    event = tap(card, events)
    assert (event.kind, event.value) == expected
    card.remove()


def test_a_secure_card_whose_ndef_file_is_cut_short_is_a_clear_error(
    secure_reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = secure_reader
    url = card_url("https://loyalty.example/c", ZERO_KEY, ZERO_KEY, SECURE_UID, 13)
    whole = sun_ndef(url)
    card = VirtualCard(atr=ISO_DEP_ATR, ndef_file=whole[: len(whole) // 2])  # NLEN says more
    event = tap(card, events)
    assert event.kind == "error"
    assert "cannot read the card's NDEF file" in event.value
    card.remove()


def test_with_secure_cards_off_an_ntag424_gives_its_uid(
    reader: tuple[PcscReader, Events],
) -> None:
    _driver, events = reader
    url = card_url("https://loyalty.example/c", ZERO_KEY, ZERO_KEY, SECURE_UID, 14)
    card = VirtualCard(uid=SECURE_UID, atr=ISO_DEP_ATR, ndef_file=sun_ndef(url))
    event = tap(card, events)
    assert (event.kind, event.value) == ("nfc", SECURE_UID.hex().upper())
    card.remove()
