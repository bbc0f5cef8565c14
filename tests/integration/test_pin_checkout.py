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
    for pin, said in (("1234", "first one tried"), ("12", "4 to 8 digits")):
        refused = set_pin_by_cli(tmp_path, ANNA.card_number, pin)
        assert refused.returncode == 1 and said in refused.stderr
    done = set_pin_by_cli(tmp_path, ANNA.card_number, "2580")
    assert done.returncode == 0, done.stderr
    assert "2580" not in done.stdout + done.stderr
    with build_terminal(kiosk) as terminal:
        checkout = terminal.checkout
        by_phone = checkout.identify(ANNA.phone, hint="phone")
        assert checkout.spend_refusal(by_phone) is not None
        with pytest.raises(CheckoutError) as wrong:
            checkout.verify_pin(by_phone, "1397")
        assert wrong.value.code == "pin_wrong" and wrong.value.params["remaining"] == 4
        verified = checkout.verify_pin(by_phone, "2580")
        assert verified.identified_by == "phone_pin"
        assert checkout.spend_refusal(verified) is None
        assert checkout.plan_redemption(verified, reward_id="gift-card-25").points == 5000
        terminal.network.set_online(False)
        with pytest.raises(CheckoutError) as offline:
            checkout.verify_pin(by_phone, "2580")
        assert offline.value.code == "pin_offline"


def test_a_pin_locks_after_five_wrong_ones(tmp_path: Path) -> None:
    with build_terminal(make_settings(tmp_path)) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        checkout = terminal.checkout
        session = checkout.identify(ANNA.phone, hint="phone")
        with pytest.raises(CheckoutError) as none:
            checkout.verify_pin(session, "2580")
        assert none.value.code == "pin_not_set"
        checkout.set_pin(session, "2580")
        codes = []
        for _ in range(6):
            with pytest.raises(CheckoutError) as refused:
                checkout.verify_pin(session, "1397")
            codes.append(refused.value.code)
        assert codes == ["pin_wrong"] * 4 + ["pin_locked"] * 2
        with pytest.raises(CheckoutError, match="locked"):
            checkout.verify_pin(session, "2580")  # the right one too, while locked
