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
from pos_client.settings import Mode
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


def test_a_kiosk_does_not_spend_on_a_typed_phone_number_alone(tmp_path: Path) -> None:
    """A phone number is not a secret: at a kiosk it earns but does not spend (rewards,
    transfers, donations) unless `kiosk.spend_by_phone`; a cashier may spend by phone."""
    settings = make_settings(tmp_path)
    kiosk = replace(settings, terminal=replace(settings.terminal, mode=Mode.KIOSK))
    with build_terminal(kiosk) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        by_phone = checkout.identify(ANNA.phone, hint="phone")
        for spend in (
            lambda: checkout.plan_redemption(by_phone, reward_id="gift-card-25"),
            lambda: checkout.redeem(by_phone, "gift-card-25"),
            lambda: checkout.give(by_phone, "skin-cancer-fund", 1000),
        ):
            with pytest.raises(CheckoutError) as refused:
                spend()
            assert refused.value.code == "phone_cannot_spend"
        assert checkout.spend_refusal(by_phone) is not None
        before = len(terminal.outbox.entries(limit=1000))
        checkout.earn(by_phone, Purchase.of_amount(Decimal("10.00")))  # earning still works
        assert len(terminal.outbox.entries(limit=1000)) == before + 1
        by_card = checkout.identify(ANNA.card_number)  # the card scanned: it may spend
        assert checkout.spend_refusal(by_card) is None
        assert checkout.plan_redemption(by_card, reward_id="gift-card-25").points == 5000
        checkout.set_channel("cashier")  # staff switched the terminal to a cashier desk
        assert checkout.spend_refusal(by_phone) is None
    allowed = replace(kiosk, kiosk=replace(kiosk.kiosk, spend_by_phone=True))
    with build_terminal(allowed) as terminal:
        session = terminal.checkout.identify(ANNA.phone, hint="phone")
        assert terminal.checkout.spend_refusal(session) is None


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


def test_points_plus_cash_is_charged_as_chosen_once_synced(seeded: Terminal) -> None:
    """The sale recorded for a points + cash reward used to leave out the option: the
    backend then charged the reward's full points (5,000, not 2,500) for it."""
    checkout = seeded.checkout
    session = checkout.identify(ANNA.card_number)
    before = session.view.balance
    receipt = checkout.redeem(session, "gift-card-25", 0)
    assert (receipt.redeemed_points, receipt.cash_due) == (2500, Decimal("12.50"))
    seeded.sync.drain()
    entry = seeded.outbox.get(receipt.key)
    assert entry is not None and entry.state is EntryState.ACKED
    assert entry.result["points_redeemed"] == 2500  # type: ignore[index]
    after = checkout.refresh(session).view.balance
    assert after == before - 2500 + receipt.expected_points


def test_a_transfer_to_a_partner_needs_an_account_number_there(seeded: Terminal) -> None:
    checkout = seeded.checkout
    session = checkout.identify(ANNA.card_number)
    for account, code in (
        (None, "partner_account_required"),
        ("", "partner_account_required"),
        ("AB-123", "partner_account_invalid"),
        ("ΑΒ123", "partner_account_invalid"),  # Greek capitals look Latin: not ASCII
        ("A" * 33, "partner_account_invalid"),
    ):
        with pytest.raises(CheckoutError) as refused:
            checkout.give(session, "sky-miles", 1000, account)
        assert refused.value.code == code, account
    receipt = checkout.give(session, "sky-miles", 1000, "SM12345678")
    entry = seeded.outbox.get(receipt.key)
    assert entry is not None and entry.body["partner_account"] == "SM12345678"
    seeded.sync.drain()
    entry = seeded.outbox.get(receipt.key)
    assert entry is not None and entry.state is EntryState.ACKED
    assert entry.result["partner_account"] == "SM12345678"  # type: ignore[index]
    donation = checkout.give(session, "skin-cancer-fund", 100, "IGNORED1")
    entry = seeded.outbox.get(donation.key)
    assert entry is not None and "partner_account" not in entry.body
