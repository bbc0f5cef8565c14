"""Member PINs (issue 12's "phone + a member PIN"): a phone number is no secret, so a member
found by phone may spend only after giving the PIN they chose. Pure: the rules for a PIN,
its salted scrypt hash (the ledger keeps only that), the check in constant time, and the
lockout after failures in a row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pos_client.staff import guessable

MIN_DIGITS, MAX_DIGITS = 4, 8
FAILURES_BEFORE_LOCK = 5
FIRST_LOCK = timedelta(minutes=15)
LONGEST_LOCK = timedelta(hours=24)
# scrypt at 16 MiB and ~50 ms a check: a stolen database's PINs cost that each to try.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_FORM = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([0-9a-f]{32})\$([0-9a-f]{64})")


# The PINs tried first after runs and repeats (published PIN-frequency studies): keypad
# lines, pairs repeated, well-known numbers. Years (19xx, 20xx) are refused as a pattern.
COMMON_PINS = frozenset(
    {
        "2580",
        "0852",
        "1470",
        "0741",
        "3690",
        "0963",
        "1004",
        "6969",
        "1313",
        "1122",
        "2323",
        "4545",
        "1337",
        "1998",
        "2468",
        "1357",
        "1112",
        "1110",
        "7410",
        "9630",
        "0007",
        "1000",
        "8520",
        "13579",
        "147258",
        "159753",
        "112233",
        "696969",
        "147852",
        "159357",
        "753951",
        "741852",
        "852963",
        "258456",
        "11223344",
        "12344321",
        "123321",
    }
)


class PinRefused(Exception):
    """A PIN change refused: `code` pin_set (one is set: the current one is needed),
    pin_wrong (the current one given is wrong, or locked), pin_not_set (none to change),
    pin_changed (changed or reset meanwhile)."""

    def __init__(self, message: str, code: str, locked_now: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.locked_now = locked_now  # the wrong current PIN given locked it


def is_pin_form(pin: str) -> bool:
    """4 to 8 digits: anything else is no PIN's try (not counted as a wrong one)."""
    return re.fullmatch(rf"[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}", pin) is not None


def pin_problem(pin: str) -> str | None:
    """Why `pin` cannot be a member's PIN, or None."""
    if not re.fullmatch(rf"[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}", pin):
        return f"a PIN is {MIN_DIGITS} to {MAX_DIGITS} digits"
    half = len(pin) // 2
    if (
        guessable(pin)
        or pin in COMMON_PINS
        or re.fullmatch(r"(19|20)[0-9]{2}", pin)
        or (len(pin) % 2 == 0 and pin[:half] == pin[half:])  # 1212, 123123
        or (len(pin) >= 6 and guessable(pin[:half]) and guessable(pin[half:]))
    ):
        return "a PIN of a run (1234), a repeat (1212), a year or a common one is tried first"
    return None


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """`pin` against a stored hash, in constant time; False for a hash of another form."""
    found = _FORM.fullmatch(stored)
    if found is None or not re.fullmatch(r"[0-9]{1,16}", pin):
        return False
    n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    if (n, r, p) != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
        return False  # no other costs are written; one here was not written by us
    digest = hashlib.scrypt(
        pin.encode(),
        salt=bytes.fromhex(found.group(4)),
        n=n,
        r=r,
        p=p,
        maxmem=64 * 2**20,
        dklen=32,
    )
    return hmac.compare_digest(digest.hex(), found.group(5))


@dataclass(frozen=True)
class PinCheck:
    """The outcome of a PIN given: `ok`; else `locked_until` (now refused, whatever the
    PIN) or `remaining` tries before a lock; `no_pin`: the member has chosen none."""

    ok: bool
    remaining: int = 0
    locked_until: datetime | None = None
    no_pin: bool = False
    locked_now: bool = False  # this failure locked it (a security event, once)


def lock_after(failures: int, now: datetime) -> datetime | None:
    """When `failures` in a row lock the PIN, until when: 15 minutes after the fifth,
    doubling with each five more, at most a day."""
    if failures < FAILURES_BEFORE_LOCK or failures % FAILURES_BEFORE_LOCK:
        return None
    doublings = min(failures // FAILURES_BEFORE_LOCK - 1, 16)
    lock: timedelta = min(FIRST_LOCK * (1 << doublings), LONGEST_LOCK)
    until: datetime = now + lock
    return until
