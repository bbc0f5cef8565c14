"""Phone + PIN as an identification that may spend (issue 12's policy): a kiosk does not
spend on a typed phone number alone, and does once the member gives their PIN; the PIN is
set from the command line (a real process), read from standard input, never an argument."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pos_client.bootstrap import build_terminal
from pos_client.checkout import CheckoutError
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.settings import Mode
from tests.conftest import REPO, make_settings

ANNA = DEMO_MEMBERS[0]


def set_pin_by_cli(data: Path, member: str, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pos_client.cli",
            "--data-dir",
            str(data),
            "pin",
            "set",
            "--member",
            member,
        ],
        cwd=REPO,
        input=pin + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_kiosk_spends_by_phone_once_the_member_gives_their_pin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    kiosk = replace(settings, terminal=replace(settings.terminal, mode=Mode.KIOSK))
    with build_terminal(kiosk) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    for pin, said in (("1234", "tried first"), ("12", "4 to 8 digits")):
        refused = set_pin_by_cli(tmp_path, ANNA.card_number, pin)
        assert refused.returncode == 1 and said in refused.stderr
    done = set_pin_by_cli(tmp_path, ANNA.card_number, "4071")
    assert done.returncode == 0, done.stderr
    assert "4071" not in done.stdout + done.stderr
    with build_terminal(kiosk) as terminal:
        checkout = terminal.checkout
        by_phone = checkout.identify(ANNA.phone, hint="phone")
        assert checkout.spend_refusal(by_phone) is not None
        with pytest.raises(CheckoutError) as wrong:
            checkout.verify_pin(by_phone, "1397")
        assert wrong.value.code == "pin_wrong" and wrong.value.params["remaining"] == 4
        verified = checkout.verify_pin(by_phone, "4071")
        assert verified.identified_by == "phone_pin"
        assert checkout.spend_refusal(verified) is None
        assert checkout.plan_redemption(verified, reward_id="gift-card-25").points == 5000
        terminal.network.set_online(False)
        with pytest.raises(CheckoutError) as offline:
            checkout.verify_pin(by_phone, "4071")
        assert offline.value.code == "pin_offline"


def test_a_pin_locks_after_five_wrong_ones(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        session = checkout.identify(ANNA.phone, hint="phone")
        with pytest.raises(CheckoutError) as none:
            checkout.verify_pin(session, "4071")
        assert none.value.code == "pin_not_set"
        with pytest.raises(CheckoutError) as by_phone:
            checkout.set_pin(session, "4071")  # a phone number is anyone's to type
        assert by_phone.value.code == "pin_needs_card"
        checkout.set_pin(checkout.identify(ANNA.card_number), "4071")
        codes = []
        for _ in range(6):
            with pytest.raises(CheckoutError) as refused:
                checkout.verify_pin(session, "1397")
            codes.append(refused.value.code)
        assert codes == ["pin_wrong"] * 4 + ["pin_locked"] * 2
        with pytest.raises(CheckoutError, match="locked"):
            checkout.verify_pin(session, "4071")  # the right one too, while locked


def test_a_pin_is_changed_only_with_the_current_one_and_a_forgotten_one_reset(
    tmp_path: Path,
) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        by_card = checkout.identify(ANNA.card_number)
        checkout.set_pin(by_card, "4071")
        with pytest.raises(CheckoutError) as silent:
            checkout.set_pin(by_card, "5182")  # no silent replacement, even by card
        assert silent.value.code == "pin_set"
        with pytest.raises(CheckoutError) as wrong:
            checkout.set_pin(by_card, "5182", current_pin="1397")
        assert wrong.value.code == "pin_wrong"
        by_phone = checkout.identify(ANNA.phone, hint="phone")
        checkout.set_pin(by_phone, "5182", current_pin="4071")  # the member knows it
        assert checkout.verify_pin(by_phone, "5182").pin_verified
        member = by_card.view.member_id
        assert terminal.ledger.reset_member_pin(member) is True
        with pytest.raises(CheckoutError) as gone:
            checkout.verify_pin(by_phone, "5182")
        assert gone.value.code == "pin_not_set"
