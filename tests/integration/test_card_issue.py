"""Issuing secure cards as staff do it: `pos-client card issue` (a real process) on a blank
virtual NTAG 424 DNA behind the real pcscd and vpcd reader; then the terminal's own PC/SC
driver reads the card and its ledger verifies each tap once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.pcsc import PcscReader
from pos_client.bootstrap import build_terminal
from pos_client.demo import DEMO_MEMBERS
from pos_client.events import ScanEvent
from pos_client.scanning import IdentificationFailed, MemberIdentified, ScanRouter
from pos_client.settings import Settings, load_settings
from tests.conftest import REPO
from tests.integration.test_pcsc import Events
from tests.integration.vpcd import (
    ISO_DEP_ATR,
    PcscDaemon,
    VirtualCard,
    pcsc_unavailable_reason,
)
from tests.virtual_ntag424 import VirtualNtag424

REASON = pcsc_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

BASE = "https://loyalty.example/c"
ANNA, BORIS = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
READER = "Virtual PCD 00 00"


def write_keys(folder: Path, master: str = "F0E1D2C3B4A5968778695A4B3C2D1E0F") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "card-keys.toml"
    path.write_text(
        'meta_read_key = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"\n'
        'file_read_key = "00112233445566778899AABBCCDDEEFF"\n'
        'diversify = true\nsystem_identifier = "4C4F59414C"\n'
        f'card_master_key = "{master}"\n'
    )
    path.chmod(0o600)
    return path


class Till:
    """A terminal's data folder and card keys, driven through `pos-client`."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "data"
        self.keys = write_keys(folder)
        self.env = {**os.environ, "POS_CLIENT__BACKEND__CARD_KEYS_FILE": str(self.keys)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pos_client.cli", "--data-dir", str(self.data), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def issue(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("card", "issue", "--url", BASE, "--wait", "5", "--json", *args)

    def settings(self) -> Settings:
        settings = load_settings(None, env={"POS_CLIENT__BACKEND__CARD_KEYS_FILE": str(self.keys)})
        return replace(
            settings,
            storage=replace(settings.storage, data_dir=self.data),
            phone_key_file=self.data / "phone.key",
        )


@pytest.fixture
def till(tmp_path: Path, pcscd: PcscDaemon) -> Till:
    till = Till(tmp_path)
    seeded = till.cli("seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    return till


def blank_card(uid: str = "04517A2B3C4D80") -> tuple[VirtualCard, VirtualNtag424]:
    ntag = VirtualNtag424(uid=bytes.fromhex(uid))
    return VirtualCard(uid=ntag.uid, atr=ISO_DEP_ATR, ntag424=ntag), ntag


def present(card: VirtualCard, till: Till, *args: str) -> subprocess.CompletedProcess[str]:
    card.insert()
    try:
        return till.issue(*args)
    finally:
        card.remove()


def test_a_blank_card_is_issued_linked_and_then_identifies_its_member_once_per_tap(
    till: Till,
) -> None:
    card, ntag = blank_card()
    issued = present(card, till, "--member", ANNA.card_number)
    assert issued.returncode == 0, issued.stderr
    report = json.loads(issued.stdout)
    assert report["personalised"] is True and report["resumed"] is False and report["linked"]
    assert ntag.key_versions == [1] * 5 and bytes(16) not in ntag.keys
    # The card's UID is never printed whole.
    assert ntag.uid.hex().upper() not in issued.stdout + issued.stderr

    events = Events()
    driver = PcscReader("nfc", {"reader": READER, "secure_cards": True, "debounce_s": 0.1}, events)
    with build_terminal(till.settings()) as terminal, driver:
        events.next_status("connected")
        router = ScanRouter(terminal.checkout, terminal.bus)
        urls = []
        for _ in range(2):
            card.insert()
            event = events.next_scan()
            card.remove()
            assert events.next_scan().kind == "removed"
            assert event.kind == "sun"
            urls.append(event.value)
            found = router.route(event)
            assert isinstance(found, MemberIdentified), found
            assert found.session.view.display_name.startswith(ANNA.first_name)
        assert urls[0] != urls[1]  # each read is a new message
        replayed = router.route(ScanEvent(f"pcsc:{READER}", "sun", urls[0]))
        assert isinstance(replayed, IdentificationFailed) and replayed.code == "card_replayed"


def test_a_card_linked_to_one_member_is_not_moved_to_another(till: Till) -> None:
    card, _ntag = blank_card("04517A2B3C4D81")
    assert present(card, till, "--member", ANNA.card_number).returncode == 0
    again = present(card, till, "--member", ANNA.card_number)  # the same: said, not an error
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["personalised"] is False
    moved = present(card, till, "--member", BORIS.card_number)
    assert moved.returncode == 1
    assert "belongs to another member" in moved.stderr


def test_a_card_issued_by_another_programme_is_refused_and_left_as_it_was(
    till: Till, tmp_path: Path
) -> None:
    card, ntag = blank_card("04517A2B3C4D82")
    assert present(card, till).returncode == 0
    keys_before, file_before = list(ntag.keys), bytes(ntag.file)
    other = write_keys(tmp_path / "other", master="00" * 16)
    refused = present(card, till, "--keys", str(other))
    assert refused.returncode == 1
    assert "issued elsewhere" in refused.stderr
    assert ntag.keys == keys_before and bytes(ntag.file) == file_before


def test_with_no_card_on_the_reader_issuing_says_so(till: Till) -> None:
    result = till.cli("card", "issue", "--url", BASE, "--wait", "0.3")
    assert result.returncode == 1
    assert "no card" in result.stderr


def test_doctor_names_a_secure_card_on_the_reader_and_whether_it_verifies(
    till: Till, tmp_path: Path
) -> None:
    card, _ntag = blank_card("04517A2B3C4D83")
    card.insert()
    try:
        blank = till.cli("doctor").stdout
        assert "pc/sc secure card: Virtual PCD 00 00: NTAG 424 DNA, blank (not issued)" in blank
        assert till.issue().returncode == 0
        issued = till.cli("doctor").stdout
        assert "NTAG 424 DNA, its message verifies (read counter" in issued
        other = tmp_path / "foreign.toml"
        other.write_text(
            'meta_read_key = "' + "11" * 16 + '"\nfile_read_key = "' + "22" * 16 + '"\n'
            "diversify = false\n"
        )
        other.chmod(0o600)
        till.env["POS_CLIENT__BACKEND__CARD_KEYS_FILE"] = str(other)
        foreign = till.cli("doctor").stdout
        for _ in range(2):  # on a loaded machine the virtual card's read may time out
            if "does not verify" in foreign:
                break
            foreign = till.cli("doctor").stdout
        assert "WARN pc/sc secure card" in foreign and "does not verify" in foreign, foreign
    finally:
        card.remove()


def test_offline_a_card_verified_here_before_is_found_by_its_tag_and_spends_as_one(
    till: Till,
) -> None:
    """Online the card's message is verified and the UID it proves is remembered; offline
    the same card is found by that UID (a tag: it earns, and spends only as a tag may),
    while a secure card never verified here is refused as uncheckable."""
    card, _ntag = blank_card("04517A2B3C4D84")
    stranger, _other = blank_card("04517A2B3C4D85")
    assert present(card, till, "--member", ANNA.card_number).returncode == 0
    assert present(stranger, till, "--member", BORIS.card_number).returncode == 0

    events = Events()
    driver = PcscReader("nfc", {"reader": READER, "secure_cards": True, "debounce_s": 0.1}, events)
    with build_terminal(till.settings()) as terminal, driver:
        events.next_status("connected")
        router = ScanRouter(terminal.checkout, terminal.bus)

        def read(which: VirtualCard) -> ScanEvent:
            which.insert()
            event = events.next_scan()
            which.remove()
            assert events.next_scan().kind == "removed"
            assert event.kind == "sun" and len(event.raw) == 7
            return event

        online = router.route(read(card))
        assert isinstance(online, MemberIdentified) and online.session.online
        assert online.session.identity.kind.value == "secure_card"
        terminal.network.set_online(False)
        offline = router.route(read(card))
        assert isinstance(offline, MemberIdentified), offline
        assert not offline.session.online
        assert offline.session.identity.kind.value == "card_uid"
        assert offline.session.view.display_name.startswith(ANNA.first_name)
        unknown = router.route(read(stranger))
        assert isinstance(unknown, IdentificationFailed)
        assert unknown.code == "secure_card_offline"


def test_a_message_beside_another_cards_uid_is_refused_as_an_emulator(till: Till) -> None:
    card, ntag = blank_card("04517A2B3C4D86")
    assert present(card, till, "--member", ANNA.card_number).returncode == 0
    from pos_client.ntag424 import read_url

    ntag.answer(bytes.fromhex("00A4040007D276000085010100"))
    url = read_url(ntag.answer)  # a genuine, unused message of Anna's card
    with build_terminal(till.settings()) as terminal:
        router = ScanRouter(terminal.checkout, terminal.bus)
        other_uid = bytes.fromhex("04000000000001")
        refused = router.route(ScanEvent(f"pcsc:{READER}", "sun", url, other_uid))
        assert isinstance(refused, IdentificationFailed) and refused.code == "card_refused"
        # The refusal spent nothing: the same message with its own UID still verifies.
        found = router.route(ScanEvent(f"pcsc:{READER}", "sun", url, ntag.uid))
        assert isinstance(found, MemberIdentified)


def test_an_emulator_claiming_an_issued_cards_uid_gets_no_keys(till: Till) -> None:
    card, _ntag = blank_card("04517A2B3C4D87")
    assert present(card, till, "--member", ANNA.card_number).returncode == 0
    emulator, fake = blank_card("04517A2B3C4D87")  # a "blank" card with Anna's card's UID
    refused = present(emulator, till)
    assert refused.returncode == 1 and "already known" in refused.stderr
    assert fake.keys == [bytes(16)] * 5 and fake.sdm is None


def test_a_blocked_card_no_longer_finds_its_member_offline(till: Till) -> None:
    card, ntag = blank_card("04517A2B3C4D88")
    assert present(card, till, "--member", ANNA.card_number).returncode == 0
    from pos_client.ntag424 import read_url

    def message() -> str:
        ntag.answer(bytes.fromhex("00A4040007D276000085010100"))
        return read_url(ntag.answer)

    with build_terminal(till.settings()) as terminal:
        router = ScanRouter(terminal.checkout, terminal.bus)
        seen = router.route(ScanEvent(f"pcsc:{READER}", "sun", message(), ntag.uid))
        assert isinstance(seen, MemberIdentified)  # verified: remembered for offline
        assert terminal.ledger is not None
        terminal.ledger.block_member_cards(ANNA.card_number, ntag.uid.hex()[-4:])
        blocked = router.route(ScanEvent(f"pcsc:{READER}", "sun", message(), ntag.uid))
        assert isinstance(blocked, IdentificationFailed) and blocked.code == "card_blocked"
        terminal.network.set_online(False)
        offline = router.route(ScanEvent(f"pcsc:{READER}", "sun", message(), ntag.uid))
        assert isinstance(offline, IdentificationFailed)
        assert offline.code == "secure_card_offline"
