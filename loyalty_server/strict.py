"""Strict input (issue 10, item 6), checked by the server on every operation a terminal
sends, before any rule runs: a refusal names the field and never echoes the value.

- names are NFC-normalised; control, format (bidi overrides, zero-width), private-use and
  unassigned characters are refused, and so are runs of combining marks;
- categories and SKUs of sale lines are printable text by the same rule as names (no
  control, format, private-use or unassigned characters, no runs of combining marks), but
  need no letter;
- money amounts are decimal strings of ASCII digits with at most the currency's decimals
  (no spaces, underscores, exponents or other scripts' digits);
- idempotency keys are UUIDs (8-4-4-4-12 lowercase hex: one key, one spelling);
- member ids at enrollment are 1 to 64 ASCII letters, digits or - (a URL path segment);
- card numbers are ASCII card characters, and GS1 numbers (8, 12, 13, 14 or 18 digits)
  carry a right check digit;
- `phone_key` is the HMAC-SHA256 hex of a number (64 lowercase hex digits), never a number;
- a sale has an amount or a redemption (a $0 sale with neither only read the balance).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pos_client.domain import (
    MINOR_UNIT_EXPONENT,
    name_problem,
    text_problem,
    utcnow,
)
from pos_client.identify import CODE128_CHARS, gs1_check_digit
from pos_client.operations import EnrollOp, Operation, OpRejected, SaleOp

# Lowercase only: one key, one spelling (an upper-case retry of a key was a second key).
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A member id is a URL path segment (/v1/members/{id}): nothing a path or query reads.
MEMBER_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
PHONE_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
GS1_LENGTHS = (8, 12, 13, 14, 18)


def refuse(field: str, why: str) -> OpRejected:
    return OpRejected("bad_request", f"{field}: {why}")


def clean_name(value: str, field: str) -> str:
    """The name in NFC; refused with a reason if it holds characters a name never has."""
    text = unicodedata.normalize("NFC", value)
    problem = name_problem(text)
    if problem is not None:
        raise refuse(field, problem)
    if text != text.strip():
        raise refuse(field, "leading or trailing spaces")
    return text


def amount_pattern(currency: str) -> re.Pattern[str]:
    decimals = MINOR_UNIT_EXPONENT.get(currency, 2)
    fraction = rf"(\.[0-9]{{1,{decimals}}})?" if decimals else ""
    return re.compile(rf"^[0-9]{{1,7}}{fraction}$")


def check_key(value: Any, field: str = "key") -> None:
    if not isinstance(value, str) or not UUID_PATTERN.match(value):
        raise refuse(field, "expected a UUID (8-4-4-4-12 lowercase hexadecimal digits)")


def card_number_problem(value: str) -> str | None:
    """Why this is not a card number (None: it is one)."""
    if not 4 <= len(value) <= 64 or any(c not in CODE128_CHARS or c == " " for c in value):
        return "4 to 64 ASCII letters, digits or - _ . /"
    gs1 = value.isascii() and value.isdigit() and len(value) in GS1_LENGTHS
    if gs1 and gs1_check_digit(value[:-1]) != int(value[-1]):
        return "the check digit is wrong"
    return None


def phone_key_problem(value: str) -> str | None:
    if not PHONE_KEY_PATTERN.match(value) or value.isdigit():
        # An HMAC's 64 hex digits are all 0-9 once in 10^13: all digits is a padded number.
        return "expected the HMAC-SHA256 of the number (64 lowercase hex digits), not a number"
    return None


def checker(currency: str) -> Callable[[Operation, dict[str, Any]], Operation]:
    amounts = amount_pattern(currency)
    decimals = MINOR_UNIT_EXPONENT.get(currency, 2)

    def check(op: Operation, body: dict[str, Any]) -> Operation:
        check_key(body.get("key"))
        if isinstance(op, SaleOp):
            if op.redemption is None and op.purchase.total == 0:
                # It records nothing and answered any member's balance, unlimited (a balance
                # oracle); a terminal never sends one (checkout refuses amount_zero).
                raise refuse("lines", "a sale with no amount and no redemption records nothing")
            for index, line in enumerate(body.get("lines") or []):
                amount = line.get("amount") if isinstance(line, dict) else None
                if not isinstance(amount, str) or not amounts.match(amount):
                    raise refuse(
                        f"lines[{index}].amount",
                        f"a decimal string of ASCII digits with at most {decimals} decimals "
                        f"({currency})",
                    )
            for index, parsed in enumerate(op.purchase.lines):
                for field, value in (("category", parsed.category), ("sku", parsed.sku)):
                    problem = text_problem(value)
                    if problem:
                        raise refuse(f"lines[{index}].{field}", problem)
        if isinstance(op, EnrollOp):
            if not MEMBER_ID_PATTERN.match(op.member_id):
                raise refuse("member_id", "1 to 64 ASCII letters, digits or -")
            problem = card_number_problem(op.card_number)
            if problem:
                raise refuse("card_number", problem)
            problem = phone_key_problem(op.phone_key)
            if problem:
                raise refuse("phone_key", problem)
            if not re.fullmatch(r"[0-9]{0,4}", op.phone_last):
                raise refuse("phone_last", "at most 4 ASCII digits")
            first = clean_name(op.first_name, "first_name")
            if not first:
                raise refuse("first_name", "a name is needed")
            # A day of slack for the zones ahead of UTC; a later birthday is a typo or a trick.
            if op.birthday is not None and op.birthday > utcnow().date() + timedelta(days=1):
                raise refuse("birthday", "in the future")
            op = dataclasses.replace(
                op, first_name=first, last_name=clean_name(op.last_name, "last_name")
            )
        return op

    return check
