"""Checkout use cases on the embedded ledger (real SQLite files), online and offline."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.checkout import AlreadyMember, CheckoutError, MemberNotFound
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase, PurchaseLine
from pos_client.outbox import EntryState
from tests.conftest import make_settings

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


@pytest.fixture
def seeded(terminal: Terminal) -> Terminal:
    assert terminal.ledger is not None
    seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    return terminal


def test_member_is_shown_masked(seeded: Terminal) -> None:
    session = seeded.checkout.identify(ANNA.phone, hint="phone")
    view = session.view
    assert view.display_name == "Anna K."
    assert view.phone_hint.endswith("89") and "912" not in view.phone_hint
    assert "Karenina" not in repr(view)
    assert session.online


def test_identify_by_barcode_uid_and_phone_finds_the_same_member(seeded: Terminal) -> None:
    checkout = seeded.checkout
    ids = {
        checkout.identify("]E0" + ANNA.card_number).view.member_id,
        checkout.identify(ANNA.card_uid or "", hint="nfc").view.member_id,
        checkout.identify("+7 (912) 345-67-89", hint="phone").view.member_id,
    }
    assert len(ids) == 1
    with pytest.raises(MemberNotFound):
        checkout.identify("04:11:22:33", hint="nfc")


def test_earn_goes_to_the_outbox_first_then_syncs(seeded: Terminal) -> None:
    checkout = seeded.checkout
    session = checkout.identify(BOB.card_number)
    before = session.view.balance
    purchase = Purchase(
        (PurchaseLine(Decimal("10.00"), "cosmetics"), PurchaseLine(Decimal("5.50")))
    )
    assert checkout.preview(session, purchase).points == 25
    receipt = checkout.earn(session, purchase)
    entry = seeded.outbox.get(receipt.key)
    assert entry is not None and entry.state is EntryState.PENDING
    assert checkout.refresh(session).pending_points == 25
    seeded.sync.drain()
    assert seeded.outbox.get(receipt.key).state is EntryState.ACKED  # type: ignore[union-attr]
    assert checkout.refresh(session).view.balance == before + 25


def test_offline_earning_is_pending_and_redemption_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = replace(settings, offline=replace(settings.offline, redeem_cap_points=6000))
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        checkout.identify(ANNA.card_number)  # cached while online
        terminal.network.set_online(False)
        session = checkout.identify(ANNA.card_number)
        assert not session.online
        balance = session.view.balance
        assert balance >= 5000
        receipt = checkout.earn(session, Purchase.of_amount(Decimal("10.00")))
        assert receipt.offline
        plan = checkout.plan_redemption(session, reward_id="gift-card-25")
        checkout.earn(session, Purchase.of_amount(Decimal("1.00")), plan)
        session = checkout.identify(ANNA.card_number)
        assert session.pending_redemptions == 5000
        assert session.spendable == balance - 5000
        with pytest.raises(CheckoutError, match="needs 5000 points"):
            checkout.plan_redemption(session, reward_id="gift-card-25")
        assert terminal.sync.drain().online is False
        terminal.network.set_online(True)
        terminal.sync.drain()
        assert terminal.outbox.stats().unsent == 0
        assert terminal.ledger.balance_mismatches() == []


def test_offline_redemption_cap(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = replace(settings, offline=replace(settings.offline, redeem_cap_points=1000))
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        terminal.checkout.identify(ANNA.card_number)
        terminal.network.set_online(False)
        session = terminal.checkout.identify(ANNA.card_number)
        with pytest.raises(CheckoutError, match="offline: at most 1000"):
            terminal.checkout.plan_redemption(session, reward_id="gift-card-25")
        terminal.network.set_online(True)
        online = terminal.checkout.identify(ANNA.card_number)
        assert terminal.checkout.plan_redemption(online, reward_id="gift-card-25").points == 5000


def test_offline_lookup_of_a_never_seen_member_is_not_found(seeded: Terminal) -> None:
    seeded.network.set_online(False)
    with pytest.raises(MemberNotFound):
        seeded.checkout.identify(BOB.card_number)


def test_redemption_on_a_bare_uid_follows_the_policy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = replace(settings, offline=replace(settings.offline, redeem_on_uid=False))
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        session = terminal.checkout.identify(ANNA.card_uid or "", hint="nfc")
        with pytest.raises(CheckoutError, match="not a bare tag"):
            terminal.checkout.plan_redemption(session, reward_id="gift-card-25")
        by_card = terminal.checkout.identify(ANNA.card_number)
        assert terminal.checkout.plan_redemption(by_card, reward_id="gift-card-25").points == 5000


def test_enroll_records_consent_and_works_offline_then_syncs(seeded: Terminal) -> None:
    checkout = seeded.checkout
    with pytest.raises(CheckoutError, match="accept"):
        checkout.enroll("+1 650 253 0001", "Dana", consent=False)
    with pytest.raises(AlreadyMember):
        checkout.enroll(ANNA.phone, "Anna", consent=True)
    seeded.network.set_online(False)
    session = checkout.enroll("+1 650 253 0001", "Dana", "Scully", consent=True, marketing=True)
    assert session.view.display_name == "Dana S."
    again = checkout.identify("(650) 253-0001", hint="phone")
    assert again.view.member_id == session.view.member_id
    checkout.earn(again, Purchase.of_amount(Decimal("20.00")))
    seeded.network.set_online(True)
    report = seeded.sync.drain()
    assert (report.acked, report.dead) == (2, 0)
    fresh = checkout.identify(session.view.card_number or "")
    assert fresh.online and fresh.view.balance == 20
    assert seeded.ledger is not None
    with seeded.ledger.engine.connect() as conn:
        row = conn.execute(
            text("SELECT consent_text_id, marketing FROM members WHERE id = :m"),
            {"m": session.view.member_id},
        ).one()
    assert tuple(row) == (seeded.settings.consent_text_id, True)  # the consent is recorded
    enrolment = next(e for e in seeded.outbox.entries() if e.kind == "enroll")
    assert enrolment.body.get("pruned") is True  # synced: no phone key, names or consent
    assert "6502530001" not in str(enrolment.body) and "consent" not in enrolment.body


def test_an_online_enrollment_is_online_and_knows_the_next_level_and_reward(
    seeded: Terminal,
) -> None:
    """Issue 16: the member screen said "Offline: last known balance" and "Top level reached"
    right after joining online: the new session was always offline, its view had no next."""
    online = seeded.checkout.enroll("+1 650 253 0002", "Dana", consent=True)
    assert online.online
    assert online.view.next_tier_name == "Platinum" and online.view.next_tier_remaining
    assert online.view.next_reward_name and online.view.next_reward_remaining
    seeded.network.set_online(False)
    offline = seeded.checkout.enroll("+1 650 253 0003", "Eve", consent=True)
    assert not offline.online


def test_logs_never_show_phones_or_uids(seeded: Terminal, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    checkout = seeded.checkout
    seeded.network.set_online(False)
    for raw, hint in ((ANNA.phone, "phone"), (ANNA.card_uid or "", "nfc"), ("+15555550100", None)):
        with contextlib.suppress(MemberNotFound, CheckoutError, ValueError):
            checkout.identify(raw, hint)
    seeded.sync.drain()
    text = caplog.text
    for secret in ("9123456789", "04A224C25E6C80", "5555550100"):
        assert secret not in text
