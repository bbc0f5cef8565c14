"""Phone numbers hashed on the server: terminals paired without the store-wide phone key
send the E.164 number (over TLS, with their token) and only the server keys it."""

from __future__ import annotations

import re
from typing import Any

from pos_client.privacy import PhoneHasher

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def e164_or_none(value: object) -> str | None:
    """The number if it is a valid E.164 phone number, else None."""
    if not isinstance(value, str) or not E164.match(value):
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    return value if phonenumbers.is_valid_number(number) else None


def key_enrollment_phones(bodies: list[Any], hasher: PhoneHasher) -> None:
    """An enrollment carrying `phone` (E.164) instead of `phone_key` gets its keyed HMAC
    here; the number itself is dropped before anything is stored. A bad number leaves no
    phone_key, so the ledger refuses that enrollment alone."""
    for body in bodies:
        if not isinstance(body, dict) or body.get("type") != "enroll" or "phone" not in body:
            continue
        e164 = e164_or_none(body.pop("phone"))
        if "phone_key" in body:  # both: which one is the member's? refused, not guessed
            body["phone_key"] = ""
        elif e164 is not None:
            body["phone_key"] = hasher.phone_key(e164)
            body["phone_last"] = e164[-2:]
