"""Issuing a secure card (issue 12): pos_client.ntag424.issue_card against a virtual NTAG
424 DNA that keeps its keys, file settings and read counter and checks every secured
command as a card does (tests/virtual_ntag424.py, written from the datasheet)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pos_client.ntag424 import (
    FACTORY_KEY,
    Ntag424Error,
    card_keys,
    issue_card,
    read_url,
    read_version,
)
from pos_client.sun import SunKeys, SunRefused
from tests.virtual_ntag424 import VirtualNtag424

h = bytes.fromhex
BASE = "https://loyalty.example/c"
KEYS = SunKeys(
    meta_read_key=h("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
    file_read_key=h("00112233445566778899AABBCCDDEEFF"),
    diversify=True,
    system_identifier=h("4C4F59414C5459"),
    card_master_key=h("F0E1D2C3B4A5968778695A4B3C2D1E0F"),
)


def random(size: int) -> bytes:
    return bytes(range(size))


def transmit_to(card: VirtualNtag424) -> Callable[[bytes], bytes]:
    return card.answer


def test_a_blank_card_issued_answers_with_messages_that_verify_and_rise() -> None:
    card = VirtualNtag424()
    issued = issue_card(card.answer, KEYS, BASE, random)
    assert issued.uid == card.uid and not issued.resumed
    assert issued.url.startswith(BASE + "?picc_data=")
    first = KEYS.verify_url(issued.url)
    second = KEYS.verify_url(read_url(card.answer))
    assert (first.uid, second.uid) == (card.uid, card.uid)
    assert second.counter == first.counter + 1
    # Every key is the card's own now (none is left at the factory's zeros).
    assert card.keys == card_keys(KEYS, card.uid)
    assert FACTORY_KEY not in card.keys and card.key_versions == [1] * 5
    # The URL can no longer be rewritten without key 0.
    card.answer(h("00A4040007D276000085010100"))
    card.answer(h("00A4000C02E104"))
    assert card.answer(h("00D6000001") + b"X") == h("6982")


def test_two_cards_get_different_keys_and_neither_verifies_with_the_others() -> None:
    one, other = VirtualNtag424(), VirtualNtag424(uid=h("04AABBCCDDEE80"))
    issue_card(one.answer, KEYS, BASE, random)
    issue_card(other.answer, KEYS, BASE, random)
    assert one.keys[0] != other.keys[0] and one.keys[1] != other.keys[1]
    assert one.keys[2] == other.keys[2]  # the meta-read key is the programme's
    # A clone: the other card's keys with this card's UID make messages that do not verify.
    clone = VirtualNtag424(uid=one.uid, keys=list(other.keys), file=other.file, sdm=other.sdm)
    with pytest.raises(SunRefused) as refused:
        KEYS.verify_url(read_url(clone.answer))
    assert refused.value.reason == "forged"


class CardTakenAway(Exception):
    pass


@pytest.mark.parametrize("taken_after", range(1, 21))  # every step of the 21 commands
def test_a_card_taken_away_mid_way_is_issued_when_presented_again(taken_after: int) -> None:
    card = VirtualNtag424()
    sent = 0

    def flaky(apdu: bytes) -> bytes:
        nonlocal sent
        sent += 1
        if sent > taken_after:
            raise CardTakenAway
        return card.answer(apdu)

    with pytest.raises(CardTakenAway):
        issue_card(flaky, KEYS, BASE, random)
    issued = issue_card(card.answer, KEYS, BASE, random)
    assert KEYS.verify_url(issued.url).uid == card.uid
    assert card.keys == card_keys(KEYS, card.uid)


def test_a_card_issued_here_before_is_read_back_and_changes_nothing() -> None:
    card = VirtualNtag424()
    first = issue_card(card.answer, KEYS, BASE, random)
    keys, file = list(card.keys), bytes(card.file)
    again = issue_card(card.answer, KEYS, BASE, random)
    assert again.resumed and again.uid == first.uid and again.counter > first.counter
    with pytest.raises(Ntag424Error, match="with another URL"):
        issue_card(card.answer, KEYS, "https://elsewhere.example/x", random)
    assert card.keys == keys and bytes(card.file) == file


def test_a_card_issued_by_another_programme_is_refused_and_kept() -> None:
    card = VirtualNtag424()
    issue_card(card.answer, KEYS, BASE, random)
    keys, file = list(card.keys), bytes(card.file)
    other = SunKeys(KEYS.meta_read_key, KEYS.file_read_key, True, h("4F54484552"), h("11" * 16))
    with pytest.raises(Ntag424Error, match="issued elsewhere"):
        issue_card(card.answer, other, BASE, random)
    assert card.keys == keys and bytes(card.file) == file


def test_an_answer_altered_on_the_way_ends_issuing() -> None:
    card = VirtualNtag424()

    def tampering(apdu: bytes) -> bytes:
        answer = card.answer(apdu)
        if apdu[1] == 0x5F:  # ChangeFileSettings' answer MAC, one bit changed
            return bytes([answer[0] ^ 1]) + answer[1:]
        return answer

    with pytest.raises(Ntag424Error, match="does not verify"):
        issue_card(tampering, KEYS, BASE, random)
    assert card.keys[0] == FACTORY_KEY  # stopped before any key changed


def test_a_card_that_is_not_an_ntag424_is_refused() -> None:
    card = VirtualNtag424()

    def other_card(apdu: bytes) -> bytes:
        answer = card.answer(apdu)
        if apdu[1] == 0x60:  # another product's hardware type in GetVersion
            return h("04010101001805") + answer[-2:]
        return answer

    with pytest.raises(Ntag424Error, match="not an NTAG 424 DNA"):
        issue_card(other_card, KEYS, BASE, random)
    assert card.keys[0] == FACTORY_KEY


def test_a_card_with_no_ndef_application_is_refused() -> None:
    with pytest.raises(Ntag424Error, match="no NDEF application"):
        issue_card(lambda apdu: h("6A82"), KEYS, BASE, random)


def test_issuing_needs_the_card_master_key() -> None:
    without = SunKeys(KEYS.meta_read_key, KEYS.file_read_key, True, KEYS.system_identifier)
    with pytest.raises(ValueError, match="card_master_key"):
        issue_card(VirtualNtag424().answer, without, BASE, random)


def test_get_version_names_the_card_and_its_uid() -> None:
    card = VirtualNtag424()
    card.answer(h("00A4040007D276000085010100"))
    version = read_version(card.answer)
    assert version.name == "NTAG 424 DNA" and version.uid == card.uid
    assert card.uid.hex() not in repr(version).lower()
