"""A programme's spending policy by identification (issue 12): `[spending] identified_by`
restricts which ways of finding a member may spend points, on top of the terminal's own
switches; earning is never refused. Real terminal, real ledger, a programme file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pos_client.bootstrap import build_terminal
from pos_client.checkout import CheckoutError
from pos_client.configfile import ConfigError
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase, PurchaseLine
from pos_client.program import load_program
from pos_client.settings import Settings
from pos_client.sun import card_url, load_sun_keys
from tests.conftest import CONFIG_DIR, make_settings
from tests.integration.test_card_issue import write_keys

ANNA = DEMO_MEMBERS[0]
GIFT = "gift-card-25"


def programme_with(tmp_path: Path, spending: str) -> Path:
    path = tmp_path / "programme.toml"
    base = (CONFIG_DIR / "programs" / "category_tiers.toml").read_text()
    path.write_text(base + "\n[spending]\n" + spending + "\n")
    return path


def settings_for(tmp_path: Path, spending: str) -> Settings:
    keys = write_keys(tmp_path / "keys")
    settings = make_settings(tmp_path / "data", BACKEND__CARD_KEYS_FILE=str(keys))
    return replace(settings, program=str(programme_with(tmp_path, spending)))


def anna_tap(tmp_path: Path, counter: int) -> str:
    keys = load_sun_keys(tmp_path / "keys" / "card-keys.toml")
    uid = bytes.fromhex(ANNA.card_uid or "")
    return card_url(
        "https://l.example/c", keys.meta_read_key, keys.file_read_key_for(uid), uid, counter
    )


def test_a_secure_card_only_programme_spends_on_a_verified_tap_alone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, 'identified_by = ["secure_card"]')
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        for raw, hint in ((ANNA.card_number, None), (ANNA.phone, "phone"), (ANNA.card_uid, "nfc")):
            session = checkout.identify(raw or "", hint=hint)
            with pytest.raises(CheckoutError) as refused:
                checkout.plan_redemption(session, reward_id=GIFT)
            assert refused.value.code == "secure_card_to_spend"
            # Earning is never refused on these grounds.
            receipt = checkout.earn(
                session, Purchase((PurchaseLine(checkout.policy.max_sale_amount / 1000),))
            )
            assert receipt.key
        tapped = checkout.identify(anna_tap(tmp_path, 5), hint="sun")
        assert checkout.spend_refusal(tapped) is None
        assert checkout.plan_redemption(tapped, reward_id=GIFT).points == 5000


def test_a_programme_may_let_cards_but_not_phones_spend(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, 'identified_by = ["secure_card", "card_number"]')
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        by_phone = checkout.identify(ANNA.phone, hint="phone")
        refusal = checkout.spend_refusal(by_phone)
        assert refusal is not None and refusal.code == "identification_cannot_spend"
        assert checkout.spend_refusal(checkout.identify(ANNA.card_number)) is None


@pytest.mark.parametrize(
    ("spending", "message"),
    [
        ('identified_by = ["face"]', "unknown identification.*face"),
        ("identified_by = []", "empty"),
        ('identified_by = "secure_card"', "list of text"),
        ('identifed_by = ["phone"]', "identifed_by.*unknown setting"),
    ],
)
def test_a_bad_spending_policy_is_refused_when_the_programme_loads(
    tmp_path: Path, spending: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_program(str(programme_with(tmp_path, spending)), CONFIG_DIR)
