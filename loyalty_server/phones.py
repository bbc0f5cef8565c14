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


def key_enrollment_phones(bodies: list[Any], hasher: PhoneHasher) -> dict[int, str]:
    """An enrollment carrying `phone` (E.164) instead of `phone_key` gets its keyed HMAC
    here; the number itself is dropped before anything is stored. Returns, by index, why
    an enrollment's phone cannot be keyed (not a number, or sent with a phone_key too): the
    caller refuses that enrollment alone, with this reason."""
    refused: dict[int, str] = {}
    for index, body in enumerate(bodies):
        if not isinstance(body, dict) or body.get("type") != "enroll" or "phone" not in body:
            continue
        e164 = e164_or_none(body.pop("phone"))
        if "phone_key" in body:  # both: which one is the member's? refused, not guessed
            refused[index] = "phone: send a phone or a phone_key, not both"
        elif e164 is None:
            refused[index] = "phone: not a valid phone number (E.164: + and digits)"
        else:
            body["phone_key"] = hasher.phone_key(e164)
            body["phone_last"] = e164[-2:]
    return refused
