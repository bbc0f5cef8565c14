"""Raw input -> Identity, or a clear IdentifyError.

Sources give a hint ("phone" from the keypad, "nfc" from a card reader, "barcode" from a
scanner); with no hint the shape of the input decides. A wrong check digit is an error:
python-barcode silently fixes them, we never do.
"""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from pos_client.domain import Identity, IdentityKind
from pos_client.errors import CodedError


class IdentifyError(CodedError, ValueError):
    """Input that is not a usable identifier: an English detail (for logs and staff), a code
    and parameters (for the screen, in the customer's language)."""

    default_code = "invalid"


# AIM symbology identifiers: "]" + code character + modifier (ISO/IEC 15424).
AIM_SYMBOLOGIES: dict[str, str] = {
    "A": "Code39",
    "C": "Code128",
    "E": "EAN/UPC",
    "F": "Codabar",
    "I": "ITF",
    "Q": "QR",
    "d": "DataMatrix",
    "e": "GS1 DataBar",
    "L": "PDF417",
    "z": "Aztec",
}
AIM_PREFIX = re.compile(r"^\]([A-Za-z])([0-9A-Za-z])")
GS1_AIM = {("C", "1"), ("e", "0"), ("d", "2"), ("Q", "3")}
GS_SEPARATOR = "\x1d"
GS1_HUMAN_READABLE = re.compile(r"^\(\d{2,4}\)\d")  # "(8018)0460..." is GS1, not a phone
UID_BYTE_LENGTHS = (4, 7, 10)
UID_SEPARATORS = re.compile(r"[\s:\-.]")
PHONE_CHARS = set(string.digits + " +-().")
CODE128_CHARS = set(string.ascii_letters + string.digits + "-_./ ")
MAX_RAW_LENGTH = 128


@dataclass(frozen=True)
class Scanned:
    """A scanner's payload with its AIM prefix removed."""

    text: str
    symbology: str | None
    gs1: bool


def strip_aim(raw: str) -> Scanned:
    """Split off an AIM symbology id; an id this terminal does not know is refused (the
    rest of such a scan is never used as if it were a loyalty code)."""
    match = AIM_PREFIX.match(raw)
    if not match:
        if raw.startswith("]"):
            raise IdentifyError(
                "scan starts with ']' but has no valid AIM symbology id", "not_loyalty_code"
            )
        return Scanned(raw, None, False)
    code, modifier = match.groups()
    name = AIM_SYMBOLOGIES.get(code)
    if name is None:
        raise IdentifyError(
            f"unknown AIM symbology id ]{code}{modifier}: not a code loyalty cards use",
            "not_loyalty_code",
        )
    return Scanned(raw[match.end() :], name, (code, modifier) in GS1_AIM)


def gs1_check_digit(body: str) -> int:
    """Mod-10 check digit of EAN-8/13, UPC-A, GTIN-14 and GSRN (weights 3,1 from the right)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


EAN_NAMES = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}


def parse_ean(digits: str) -> Identity:
    name = EAN_NAMES.get(len(digits))
    if name is None or not digits.isdigit():
        raise IdentifyError(
            f"not an EAN/UPC code: expected 8, 12 or 13 digits, got {len(digits)}",
            "not_loyalty_code",
        )
    expected = gs1_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise IdentifyError(
            f"{name} check digit is wrong: expected {expected}, got {digits[-1]}"
            " (misread or mistyped)",
            "check_digit",
        )
    return Identity(IdentityKind.CARD_NUMBER, digits, name)


def parse_gsrn(text: str) -> Identity | None:
    """GS1 GSRN under AI 8018, in element-string or human-readable form; None if no AI 8018."""
    cleaned = text.replace("(", "").replace(")", "").replace(" ", "").lstrip(GS_SEPARATOR)
    if not cleaned.startswith("8018"):
        return None
    digits = cleaned[4:22]
    rest = cleaned[22:]
    if len(digits) != 18 or not digits.isdigit():
        raise IdentifyError(
            "GSRN (AI 8018) needs exactly 18 digits after the AI", "not_loyalty_code"
        )
    if rest and not rest.startswith(GS_SEPARATOR) and not rest[:2].isdigit():
        raise IdentifyError("unexpected data after the GSRN", "not_loyalty_code")
    expected = gs1_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise IdentifyError(
            f"GSRN check digit is wrong: expected {expected}, got {digits[-1]}", "check_digit"
        )
    return Identity(IdentityKind.MEMBER_NUMBER, digits, "GSRN")


def parse_uid(raw: str) -> Identity:
    compact = UID_SEPARATORS.sub("", raw.strip())
    if compact.lower().startswith("0x"):
        compact = compact[2:]
    if not compact or any(c not in string.hexdigits for c in compact) or len(compact) % 2:
        raise IdentifyError("card UID must be hex bytes (e.g. 04:A2:24:C2:5E:6C:80)", "card_reader")
    size = len(compact) // 2
    if size not in UID_BYTE_LENGTHS:
        raise IdentifyError(f"card UID must be 4, 7 or 10 bytes, got {size}", "card_reader")
    return Identity(IdentityKind.CARD_UID, compact.upper(), f"UID-{size}")


def parse_phone(raw: str, region: str) -> Identity:
    text = raw.strip()
    if not text:
        raise IdentifyError("phone number is empty", "phone_empty")
    if any(c not in PHONE_CHARS for c in text):
        raise IdentifyError(
            "phone number may only contain digits, spaces, + - ( ) .",
            "phone_invalid",
            region=region.upper(),
        )
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise IdentifyError(
            f"not a phone number: {exc._msg}", "phone_invalid", region=region.upper()
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise IdentifyError(
            f"not a valid phone number for region {region.upper()}"
            " (check the digits or add +country)",
            "phone_invalid",
            region=region.upper(),
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Identity(IdentityKind.PHONE, e164, None)


def parse_code128(text: str) -> Identity:
    value = text.strip()
    if len(value) < 4:
        raise IdentifyError("card code too short (at least 4 characters)", "not_loyalty_code")
    if any(c not in CODE128_CHARS for c in value):
        raise IdentifyError(
            "card code has characters a loyalty card never carries", "not_loyalty_code"
        )
    return Identity(IdentityKind.CARD_NUMBER, value.upper(), "Code128")


def parse_barcode(raw: str) -> Identity:
    scanned = strip_aim(raw.strip("\r\n\t"))
    text = scanned.text
    if scanned.gs1 or text.startswith(("(8018)", GS_SEPARATOR + "8018")):
        gsrn = parse_gsrn(text)
        if gsrn is not None:
            return gsrn
        raise IdentifyError("GS1 barcode without a membership number (AI 8018)", "not_loyalty_code")
    if text.isdigit() and len(text) == 22:
        gsrn = parse_gsrn(text)
        if gsrn is not None:
            return gsrn
    if scanned.symbology == "EAN/UPC" or (text.isdigit() and len(text) in EAN_NAMES):
        return parse_ean(text)
    if text.isdigit() and len(text) in (14,):
        raise IdentifyError("GTIN-14 is a product code, not a loyalty card", "product_code")
    return parse_code128(text)


def _looks_like_uid(text: str) -> bool:
    compact = UID_SEPARATORS.sub("", text)
    has_separator = compact != text
    has_hex_letter = any(c in "abcdefABCDEF" for c in compact)
    return (
        (has_separator or has_hex_letter)
        and all(c in string.hexdigits for c in compact)
        and len(compact) // 2 in UID_BYTE_LENGTHS
        and len(compact) % 2 == 0
    )


def _looks_like_phone(text: str) -> bool:
    return text.startswith("+") or (
        all(c in PHONE_CHARS for c in text) and any(c in " -()." for c in text)
    )


def parse_secure_card(text: str) -> Identity:
    """A secure card's message: its URL, checked for the SUN fields (the store server
    verifies the rest)."""
    from pos_client.sun import SunRefused, parse_url

    try:
        parse_url(text)
    except SunRefused as exc:
        raise IdentifyError(
            f"the card's secure message cannot be read ({exc})", "card_reader"
        ) from None
    return Identity(IdentityKind.SECURE_CARD, text)


def _checked(raw: object, max_length: int = MAX_RAW_LENGTH) -> str:
    """The input stripped, or IdentifyError: not text, control characters, non-ASCII
    (Arabic-Indic, full-width or superscript digits are never taken for 0-9), too long."""
    if not isinstance(raw, str):
        raise IdentifyError("input must be text")
    if any(ord(c) < 32 and c not in "\r\n\t" + GS_SEPARATOR for c in raw) or "\x7f" in raw:
        raise IdentifyError(
            "input has control characters: scanner garbage or a misread", "scan_garbage"
        )
    text = raw.strip()
    if not text:
        raise IdentifyError("nothing was read")
    if len(text) > max_length:
        raise IdentifyError(
            f"input too long ({len(text)} characters, at most {max_length})", "too_long"
        )
    if not text.isascii():
        position = next(i for i, c in enumerate(text) if not c.isascii())
        kind = "a digit of another script" if text[position].isdigit() else "a character"
        raise IdentifyError(
            f"input has {kind} outside ASCII at position {position + 1} (U+"
            f"{ord(text[position]):04X}): cards, scanners and phone numbers use 0-9 and A-Z",
            "foreign_characters",
        )
    return text


def _primary(text: str, region: str, hint: str | None) -> Identity:
    parser = HINTED_PARSERS.get(hint or "")
    if parser is not None:
        return parser(text, region)
    if hint:
        raise IdentifyError(f"unknown input source hint {hint!r}")
    if text.startswith("]") or GS1_HUMAN_READABLE.match(text):
        return parse_barcode(text)
    if _looks_like_uid(text):
        return parse_uid(text)
    if _looks_like_phone(text):
        return parse_phone(text, region)
    return parse_barcode(text)


def _guarded(parse: Callable[[], Identity]) -> Identity:
    """Whatever a parser trips on in hostile text becomes an IdentifyError."""
    try:
        return parse()
    except IdentifyError:
        raise
    except (ValueError, IndexError, TypeError, OverflowError, KeyError) as exc:
        raise IdentifyError(f"cannot read this input ({type(exc).__name__})") from None


def identify(raw: str, region: str, hint: str | None = None) -> Identity:
    """Turn raw input into an Identity. `hint`: "phone", "nfc", "barcode" or None.
    Raises only IdentifyError, whatever the text."""
    text = _checked(raw, MAX_LENGTH_BY_HINT.get(hint or "", MAX_RAW_LENGTH))
    return _guarded(lambda: _primary(text, region, hint))


def readings(raw: str, region: str, hint: str | None = None) -> list[Identity]:
    """Every way to read the input, the preferred first. With a hint there is one; with
    none, digits that are also a valid phone number of the store's region (LV "21 234 567",
    EE "5123 4567", which also read as 4-byte card UIDs or EAN-8) give each reading, for the
    caller to look up. IdentifyError when there is no reading at all."""
    text = _checked(raw, MAX_LENGTH_BY_HINT.get(hint or "", MAX_RAW_LENGTH))
    try:
        found = [_guarded(lambda: _primary(text, region, hint))]
        error: IdentifyError | None = None
    except IdentifyError as exc:
        found, error = [], exc
    if hint is None and not text.startswith("+") and all(c in PHONE_CHARS for c in text):
        digits = sum(c.isdigit() for c in text)
        if digits >= 6 and not any(r.kind is IdentityKind.PHONE for r in found):
            with contextlib.suppress(IdentifyError):
                found.append(_guarded(lambda: parse_phone(text, region)))
    if not found:
        assert error is not None
        raise error
    return found


HINTED_PARSERS: dict[str, Callable[[str, str], Identity]] = {
    "phone": parse_phone,
    "nfc": lambda text, _region: parse_uid(text),
    "barcode": lambda text, _region: parse_barcode(text),
    "sun": lambda text, _region: parse_secure_card(text),
}
# A secure card's URL is longer than any code typed or scanned.
MAX_LENGTH_BY_HINT = {"sun": 512}  # sun.MAX_URL (not imported here: cryptography loads lazily)
