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


def test_a_blank_card_issued_answers_with_messages_that_verify_and_rise() -> None:
    card = VirtualNtag424()
    issued = issue_card(card.answer, KEYS, BASE, random)
    assert issued.uid == card.uid and issued.personalised and not issued.resumed
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


@pytest.mark.parametrize("taken_after", range(1, 36))  # every step of the 36 commands
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
    assert not again.personalised and again.uid == first.uid and again.counter > first.counter
    with pytest.raises(Ntag424Error, match=r"answers with the URL https://loyalty\.example/c"):
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


def misbehaving(
    card: VirtualNtag424, at: int, change: Callable[[bytes, bytes], bytes]
) -> Callable[[bytes], bytes]:
    """The card's answer to its `at`-th command (1-based) replaced by change(apdu, answer)."""
    sent = 0

    def transmit(apdu: bytes) -> bytes:
        nonlocal sent
        sent += 1
        answer = card.answer(apdu)
        return change(apdu, answer) if sent == at else answer

    return transmit


@pytest.mark.parametrize(
    "change",
    [
        lambda apdu, answer: bytes([answer[0] ^ 1]) + answer[1:],  # one UID byte wrong
        lambda apdu, answer: answer[:-2] + bytes(3000) + answer[-2:],  # a huge frame
    ],
)
def test_a_wrong_uid_from_get_version_changes_no_key(
    change: Callable[[bytes, bytes], bytes],
) -> None:
    card = VirtualNtag424()
    with pytest.raises(Ntag424Error) as stopped:
        issue_card(misbehaving(card, 4, change), KEYS, BASE, random)  # GetVersion's 3rd frame
    assert not stopped.value.final
    assert card.keys == [FACTORY_KEY] * 5
    issued = issue_card(card.answer, KEYS, BASE, random)  # presented again: issued
    assert KEYS.verify_url(issued.url).uid == card.uid


def test_a_card_started_with_one_url_is_not_finished_with_another() -> None:
    card = VirtualNtag424()
    sent = 0

    def taken_away_after_sdm(apdu: bytes) -> bytes:
        nonlocal sent
        sent += 1
        if sent > 14:  # ChangeFileSettings done: the file is locked with the first URL
            raise CardTakenAway
        return card.answer(apdu)

    with pytest.raises(CardTakenAway):
        issue_card(taken_away_after_sdm, KEYS, BASE, random)
    with pytest.raises(Ntag424Error, match="partly issued with another URL") as refused:
        issue_card(card.answer, KEYS, BASE + "/typo-fixed", random)
    assert refused.value.final and card.keys == [FACTORY_KEY] * 5
    issued = issue_card(card.answer, KEYS, BASE, random)
    assert issued.resumed and KEYS.verify_url(issued.url).uid == card.uid


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/picc_data=/c",
        "https://shop.example/a&cmac=b",
        "https://shop.example/c#x",
        "https://shop.example/c d",
        "ftp://shop.example/c",
        "https:///c",
        "https://shop.example/c\n",
        "https://shöp.example/c",
    ],
)
def test_a_url_the_card_cannot_carry_is_refused_before_the_card_is_touched(url: str) -> None:
    card = VirtualNtag424()
    with pytest.raises(ValueError, match="base URL"):
        issue_card(card.answer, KEYS, url, random)
    assert card.commands == []


def test_another_programmes_card_is_refused_without_a_byte_written() -> None:
    card = VirtualNtag424()
    card.keys = [bytes(range(16))] + [FACTORY_KEY] * 4  # key 0 changed, the file left free
    card.file[:8] = b"THEIRS!!"
    with pytest.raises(Ntag424Error, match="issued elsewhere") as refused:
        issue_card(card.answer, KEYS, BASE, random)
    assert not refused.value.final  # a misread UID would say the same: "if that repeats"
    assert bytes(card.file[:8]) == b"THEIRS!!" and not any(a[1] == 0xD6 for a in card.commands)


def test_a_card_that_acknowledges_a_write_it_did_not_keep_is_stopped_before_any_key() -> None:
    card = VirtualNtag424()

    def lying(apdu: bytes) -> bytes:
        if apdu[:2] == b"\x00\xd6":
            return b"\x90\x00"  # "written", and nothing was
        return card.answer(apdu)

    with pytest.raises(Ntag424Error, match="did not keep the URL"):
        issue_card(lying, KEYS, BASE, random)
    assert card.keys == [FACTORY_KEY] * 5 and card.sdm is None


def test_a_key_0_change_acknowledged_but_not_made_is_found_out() -> None:
    card = VirtualNtag424()

    def lying(apdu: bytes) -> bytes:
        if apdu[:2] == b"\x90\xc4" and len(apdu) > 5 and apdu[5] == 0:
            return b"\x91\x00"  # the bare answer key 0's change has, and key 0 unchanged
        return card.answer(apdu)

    with pytest.raises(Ntag424Error, match="did not take its new key 0"):
        issue_card(lying, KEYS, BASE, random)
    assert card.keys[0] == FACTORY_KEY
    issued = issue_card(card.answer, KEYS, BASE, random)  # presented again: finished
    assert issued.personalised and issued.resumed and card.keys == card_keys(KEYS, card.uid)


@pytest.mark.parametrize("at", [5, 6])
def test_garbage_during_authentication_is_not_called_another_programmes_card(at: int) -> None:
    card = VirtualNtag424()
    with pytest.raises(Ntag424Error) as stopped:
        issue_card(misbehaving(card, at, lambda apdu, answer: b"\x6f\x00"), KEYS, BASE, random)
    assert not stopped.value.final and "elsewhere" not in str(stopped.value)
    assert issue_card(card.answer, KEYS, BASE, random).personalised


def test_a_blank_card_claiming_a_known_uid_gets_no_key() -> None:
    """An emulator answering as a blank card with a member's real UID (anyone can read a
    UID) is refused before any key is sent: the store knows that UID."""
    victim = VirtualNtag424()
    issue_card(victim.answer, KEYS, BASE, random)
    emulator = VirtualNtag424(uid=victim.uid)
    with pytest.raises(Ntag424Error, match="already known") as refused:
        issue_card(emulator.answer, KEYS, BASE, random, known=lambda uid: uid == victim.uid)
    assert refused.value.final
    assert emulator.keys == [FACTORY_KEY] * 5 and emulator.sdm is None
    sent = {apdu[:2] for apdu in emulator.commands}
    assert not sent & {b"\x90\xc4", b"\x90\x5f", b"\x00\xd6"}  # no key, setting or write


def test_a_misread_during_authentication_is_not_called_a_foreign_card() -> None:
    card = VirtualNtag424()
    flip = misbehaving(card, 6, lambda apdu, answer: bytes([answer[0] ^ 1]) + answer[1:])
    with pytest.raises(Ntag424Error) as stopped:
        issue_card(flip, KEYS, BASE, random)
    assert not stopped.value.final and "elsewhere" not in str(stopped.value)
    assert issue_card(card.answer, KEYS, BASE, random).personalised


def test_a_card_another_programme_started_is_refused_for_good() -> None:
    card = VirtualNtag424()
    card.keys[1] = bytes(range(16))  # changed elsewhere, its version left at 0
    with pytest.raises(Ntag424Error, match="key 1 is neither") as refused:
        issue_card(card.answer, KEYS, BASE, random)
    assert refused.value.final and card.keys[0] == FACTORY_KEY


@pytest.mark.parametrize(
    "url",
    [
        "https://loyalty.example/" + "a" * 168,  # a 256-byte file: not read back in one APDU
        "https://good.example@evil.example/c",
        "https://@/",
        "https://h:99999/x",
        'https://x/"><script>',
    ],
)
def test_more_urls_a_card_cannot_carry_are_refused_first(url: str) -> None:
    card = VirtualNtag424()
    with pytest.raises(ValueError, match="base URL"):
        issue_card(card.answer, KEYS, url, random)
    assert card.commands == []
