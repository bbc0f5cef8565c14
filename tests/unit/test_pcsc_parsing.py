"""PC/SC parsing without a reader: ATRs, status words, NDEF TLVs and records."""

from __future__ import annotations

import pytest

ndef = pytest.importorskip("ndef", reason="ndeflib (the 'pcsc' extra) is not installed")

from drivers.pcsc import (  # noqa: E402
    CardReadError,
    Debouncer,
    NdefPolicy,
    describe_status,
    member_from_ndef,
    ndef_tlv,
    parse_atr,
    read_card,
)


def test_pcsc_part3_atr_names_the_card() -> None:
    ntag = parse_atr(bytes.fromhex("3B8F8001804F0CA0000003060300030000000068"))
    assert (ntag.standard, ntag.name, ntag.storage, ntag.ndef_capable) == (
        "ISO 14443 A part 3",
        "MIFARE Ultralight / NTAG",
        True,
        True,
    )
    classic = parse_atr(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))
    assert classic.name == "MIFARE Classic 1K" and not classic.ndef_capable
    felica = parse_atr(bytes.fromhex("3B8F8001804F0CA00000030611F0110000000000"))
    assert (felica.standard, felica.name) == ("FeliCa", "FeliCa 212K")
    assert not parse_atr(bytes.fromhex("3B6800000073C84013009000")).storage  # a CPU card


@pytest.mark.parametrize(
    ("sw", "text"),
    [
        ((0x6A, 0x81), "6A 81: function not supported"),
        ((0x63, 0x00), "63 00: the card did not"),
        ((0x69, 0x99), "69 99: unknown status"),
        ((0x6B, 0x00), "page out of range"),
    ],
)
def test_status_words_are_described(sw: tuple[int, int], text: str) -> None:
    assert text in describe_status(*sw)


def test_ndef_tlv_skips_null_and_lock_tlvs_and_asks_for_more_bytes() -> None:
    message = bytes(range(1, 11))
    memory = b"\x00\x01\x03\xa0\x0c\x34" + b"\x03\x0a" + message + b"\xfe"
    assert ndef_tlv(memory) == (message, None)
    assert ndef_tlv(memory[:10]) == (None, 18)  # the NDEF TLV ends at byte 18
    long_form = b"\x03\xff\x01\x2c" + b"x" * 300
    assert ndef_tlv(long_form) == (b"x" * 300, None)
    assert ndef_tlv(b"\xfe\x00\x00") == (None, None)
    with pytest.raises(CardReadError):
        ndef_tlv(b"\x03\xff\xff\xff")


def test_member_number_from_text_or_uri_record() -> None:
    text = b"".join(ndef.message_encoder([ndef.TextRecord(" M-0042 ")]))
    uri = b"".join(ndef.message_encoder([ndef.UriRecord("https://loyal.example/m/ABCD-77")]))
    assert member_from_ndef(text, NdefPolicy("text")) == "M-0042"
    assert member_from_ndef(uri, NdefPolicy("uri")) == "ABCD-77"
    assert member_from_ndef(uri, NdefPolicy("text")) is None
    assert member_from_ndef(text, NdefPolicy("none")) is None
    with pytest.raises(CardReadError, match="damaged"):
        member_from_ndef(b"\xd1\x01\xff", NdefPolicy("text"))


def test_read_card_with_a_fake_transmit_falls_back_to_uid_on_bad_ndef() -> None:
    atr = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")

    def transmit(apdu: list[int]) -> tuple[list[int], int, int]:
        if apdu[:2] == [0xFF, 0xCA]:
            return list(bytes.fromhex("04A224C25E6C80")), 0x90, 0x00
        return [], 0x63, 0x00  # page reads fail

    event = read_card(transmit, atr, "test", NdefPolicy("text"))
    assert (event.kind, event.value) == ("nfc", "04A224C25E6C80")


def test_debouncer_ignores_a_quick_re_tap_only() -> None:
    now = [0.0]
    debounce = Debouncer(1.0, clock=lambda: now[0])
    assert debounce.accept("A")
    now[0] = 0.5
    assert not debounce.accept("A") and debounce.accept("B")
    now[0] = 2.0
    assert debounce.accept("A")
