"""Hostile identification input: foreign digits, unknown AIM ids, superscripts, ambiguous
numbers, arbitrary text; through the real command line, the scan router and the parser.
Readers and identification never raise anything but the project's identification error."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.checkout import AmbiguousInput, MemberNotFound
from pos_client.domain import IdentityKind
from pos_client.events import ScanEvent
from pos_client.identify import IdentifyError, identify, readings
from pos_client.scanning import IdentificationFailed, ScanRouter
from tests.conftest import REPO, make_settings
from tests.integration.ledger_helpers import enroll

HOSTILE = [
    ("\u00b2" * 13, "outside ASCII"),  # superscript two: int() ValueError before
    ("\u0664\u0660\u0660\u0666\u0663\u0668\u0661\u0663\u0663\u0663\u0669\u0663\u0661", "ASCII"),
    ("\uff14\uff10\uff10\uff16\uff13\uff18\uff11\uff13\uff13\uff13\uff19\uff13\uff11", "ASCII"),
    ("]E0\u0664\u0660\u0660\u0666\u0663\u0668\u0661\u0663\u0663\u0663\u0669\u0663\u0661", "ASCII"),
    ("]X94006381333931", "unknown AIM symbology id ]X9"),
    ("]Y1ABCD-1234", "unknown AIM symbology id ]Y1"),
    ("]", "AIM"),
]


def pos_client(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(tmp_path / "data"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize(("raw", "message"), HOSTILE)
def test_pos_client_identify_refuses_hostile_input_with_the_identification_error(
    tmp_path: Path, raw: str, message: str
) -> None:
    result = pos_client(tmp_path, "identify", raw)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("pos-client: cannot identify: ") and message in result.stderr


@pytest.mark.parametrize("hint", [None, "barcode", "nfc", "phone"])
@pytest.mark.parametrize(("raw", "message"), HOSTILE)
def test_foreign_digits_and_unknown_aim_ids_never_become_an_identity(
    raw: str, message: str, hint: str | None
) -> None:
    with pytest.raises(IdentifyError):
        identify(raw, "US", hint)


class Collect:
    def __init__(self) -> None:
        self.items: queue.Queue[Any] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.items.put(event)


@pytest.mark.parametrize(("raw", "message"), HOSTILE)
def test_the_scan_router_shows_a_clear_message_and_logs_no_traceback(
    terminal: Terminal, raw: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    failures = Collect()
    terminal.bus.subscribe(IdentificationFailed, failures)
    caplog.set_level(logging.DEBUG)
    with ScanRouter(terminal.checkout, terminal.bus):
        terminal.bus.publish(ScanEvent("wedge", "barcode", raw, raw.encode()))
        failed = failures.items.get(timeout=5)
    assert failed.reason == "invalid" and message in failed.message
    assert failed.code in ("foreign_characters", "scan_garbage", "too_long", "not_loyalty_code")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# ------------------------------------------------------------------ ambiguous numbers


@pytest.fixture
def latvian_terminal(tmp_path: Path) -> Terminal:
    built = build_terminal(make_settings(tmp_path, store__region="LV"))
    yield built  # type: ignore[misc]
    built.close()


def test_an_8_digit_latvian_phone_read_as_a_uid_too_is_resolved_by_its_member(
    latvian_terminal: Terminal,
) -> None:
    terminal = latvian_terminal
    assert terminal.ledger is not None
    assert [r.kind for r in readings("21 234 567", "LV")] == [
        IdentityKind.CARD_UID,
        IdentityKind.PHONE,
    ]
    phone_key = terminal.checkout.hasher.phone_key("+37121234567")
    member = enroll(terminal.ledger, "m-lv", phone_key=phone_key)
    session = terminal.checkout.identify("21 234 567")
    assert session.view.member_id == member and session.identity.kind is IdentityKind.PHONE
    from pos_client.domain import Purchase

    assert terminal.checkout.earn(session, Purchase.of_amount(Decimal("5.00"))).key


def test_a_number_matching_two_members_under_two_readings_is_a_clear_error(
    latvian_terminal: Terminal,
) -> None:
    terminal = latvian_terminal
    assert terminal.ledger is not None
    enroll(terminal.ledger, "m-phone", phone_key=terminal.checkout.hasher.phone_key("+37121234567"))
    enroll(terminal.ledger, "m-card", phone_key="other")
    terminal.ledger.link_identifier("m-card", "card_uid", "21234567")
    with pytest.raises(AmbiguousInput) as caught:
        terminal.checkout.identify("21 234 567")
    text = str(caught.value)
    assert "2 members" in text and "a card UID" in text and "a phone number" in text
    assert "21234567" not in text and "21 234 567" not in text  # named, masked
    # With its source said, each finds its own member.
    assert terminal.checkout.identify("21 234 567", "phone").view.member_id == "m-phone"
    assert terminal.checkout.identify("21 234 567", "nfc").view.member_id == "m-card"


def test_a_number_matching_nobody_under_any_reading_names_the_readings(
    latvian_terminal: Terminal,
) -> None:
    with pytest.raises(MemberNotFound, match=r"a card UID .* or a phone number"):
        latvian_terminal.checkout.identify("21 234 567")


def test_earn_on_an_estonian_mobile_number_finds_the_member(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", store__region="EE")
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        enroll(
            terminal.ledger, "m-ee", phone_key=terminal.checkout.hasher.phone_key("+37251234567")
        )
    result = pos_client(
        tmp_path,
        "earn",
        "--member",
        "5123 4567",
        "--amount",
        "3.00",
        POS_CLIENT__STORE__REGION="EE",
    )
    assert result.returncode == 0, result.stderr
    assert "4567" not in result.stdout.replace("••", "")  # the phone never in clear


# ------------------------------------------------------------------ any text at all


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=60)
    | st.text(alphabet="0123456789 ]-+()EXYCQd\u00b2\u0663\uff15", max_size=30),
    region=st.sampled_from(["US", "LV", "EE", "RU", "GR"]),
    hint=st.sampled_from([None, "phone", "nfc", "barcode", "bogus"]),
)
def test_identify_on_arbitrary_text_raises_only_the_identification_error(
    text: str, region: str, hint: str | None
) -> None:
    for parse in (identify, readings):
        try:
            result = parse(text, region, hint)
        except IdentifyError as exc:
            assert str(exc) and exc.code
        else:
            identities = result if isinstance(result, list) else [result]
            for identity in identities:
                assert identity.value and identity.value.isascii()
