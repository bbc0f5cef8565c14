from __future__ import annotations

import pytest

from pos_client.domain import IdentityKind
from pos_client.identify import IdentifyError, gs1_check_digit, identify, strip_aim


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("+7 912 345-67-89", "US", "+79123456789"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("067 123 4567", "UA", "+380671234567"),
        ("691 234 5678", "GR", "+306912345678"),
    ],
)
def test_phone_numbers_become_e164_with_the_store_region(raw: str, region: str, e164: str) -> None:
    identity = identify(raw, region, hint="phone")
    assert identity.kind is IdentityKind.PHONE
    assert identity.value == e164


def test_local_russian_form_needs_the_russian_region() -> None:
    with pytest.raises(IdentifyError, match="region US"):
        identify("8 (912) 345-67-89", "US", hint="phone")


@pytest.mark.parametrize("raw", ["123", "+1 000", "call me", "+7 912 345 67 89 12 34"])
def test_bad_phone_numbers_are_clear_errors(raw: str) -> None:
    with pytest.raises(IdentifyError):
        identify(raw, "RU", hint="phone")


def test_phone_typed_without_hint_is_recognised_by_its_shape() -> None:
    assert identify("+7 912 345-67-89", "RU").kind is IdentityKind.PHONE


def test_ean13_with_valid_check_digit() -> None:
    identity = identify("4006381333931", "US")
    assert (identity.kind, identity.value, identity.symbology) == (
        IdentityKind.CARD_NUMBER,
        "4006381333931",
        "EAN-13",
    )


def test_ean13_with_wrong_check_digit_is_an_error_not_fixed() -> None:
    with pytest.raises(IdentifyError, match="check digit is wrong: expected 1, got 2"):
        identify("4006381333932", "US")


def test_ean8_and_upca() -> None:
    assert identify("96385074", "US").symbology == "EAN-8"
    assert identify("036000291452", "US").symbology == "UPC-A"
    with pytest.raises(IdentifyError, match="UPC-A check digit"):
        identify("036000291453", "US")


@pytest.mark.parametrize(
    ("raw", "symbology"),
    [("]E04006381333931", "EAN-13"), ("]C0ABC-12345", "Code128"), ("]Q1MEMBER-77", "Code128")],
)
def test_aim_prefixes_are_stripped(raw: str, symbology: str) -> None:
    identity = identify(raw, "US")
    assert not identity.value.startswith("]")
    assert identity.symbology == symbology


def test_aim_prefix_is_parsed() -> None:
    scanned = strip_aim("]C1801800000000000000001")
    assert scanned.symbology == "Code128"
    assert scanned.gs1


def test_code128_alphanumeric_card_codes_are_upper_cased() -> None:
    identity = identify("abc-12345", "US", hint="barcode")
    assert (identity.kind, identity.value) == (IdentityKind.CARD_NUMBER, "ABC-12345")


def _gsrn(body17: str) -> str:
    return body17 + str(gs1_check_digit(body17))


@pytest.mark.parametrize(
    "template",
    ["(8018){}", "8018{}", "]C18018{}", "]d28018{}", "\x1d8018{}"],
)
def test_gsrn_membership_numbers_in_every_form(template: str) -> None:
    number = _gsrn("04600000000000031")
    identity = identify(template.format(number), "US")
    assert (identity.kind, identity.value, identity.symbology) == (
        IdentityKind.MEMBER_NUMBER,
        number,
        "GSRN",
    )


def test_gsrn_with_wrong_check_digit() -> None:
    number = _gsrn("04600000000000031")
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(IdentifyError, match="GSRN check digit is wrong"):
        identify(f"(8018){wrong}", "US")


def test_gs1_barcode_without_membership_ai_is_refused() -> None:
    with pytest.raises(IdentifyError, match="AI 8018"):
        identify("]C10104006381333931", "US")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("04A224C25E6C80", "04A224C25E6C80"),
        ("04:a2:24:c2:5e:6c:80", "04A224C25E6C80"),
        ("3B 9A C1 F2", "3B9AC1F2"),
        ("0x3b9ac1f2", "3B9AC1F2"),
        ("08-11-22-33-44-55-66-77-88-99", "08112233445566778899"),
    ],
)
def test_nfc_uids_of_4_7_and_10_bytes(raw: str, value: str) -> None:
    identity = identify(raw, "US", hint="nfc")
    assert (identity.kind, identity.value) == (IdentityKind.CARD_UID, value)


def test_uid_is_recognised_without_hint() -> None:
    assert identify("04:A2:24:C2:5E:6C:80", "US").kind is IdentityKind.CARD_UID


@pytest.mark.parametrize("raw", ["04A224", "04A224C25E6C8", "ZZ:11:22:33", "0102030405"])
def test_bad_uids_are_refused(raw: str) -> None:
    with pytest.raises(IdentifyError):
        identify(raw, "US", hint="nfc")


@pytest.mark.parametrize(
    "raw", ["", "   ", "\x00\x01garbage", "40063\x0781333931", "x" * 200, "é€™漢字"]
)
def test_garbage_is_a_clear_error(raw: str) -> None:
    with pytest.raises(IdentifyError):
        identify(raw, "US")


def test_redacted_identity_never_shows_the_value() -> None:
    identity = identify("+7 912 345-67-89", "RU")
    assert "9123456789" not in identity.redacted()
    assert "9123456789" not in repr(identity)
    assert identity.masked().endswith("89") and "912" not in identity.masked()


def test_a_secure_cards_message_is_bounded_as_the_verifier_bounds_it() -> None:
    from pos_client.identify import MAX_LENGTH_BY_HINT
    from pos_client.sun import MAX_URL

    assert MAX_LENGTH_BY_HINT["sun"] == MAX_URL
