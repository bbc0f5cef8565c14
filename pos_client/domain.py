"""Domain values: identities, members, purchases, operations. Pure data, no I/O."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any


class IdentityKind(StrEnum):
    CARD_UID = "card_uid"  # NFC card UID, upper-case hex without separators
    CARD_NUMBER = "card_number"  # printed/encoded loyalty card number (EAN, UPC, Code128)
    MEMBER_NUMBER = "member_number"  # GS1 GSRN (AI 8018), 18 digits
    PHONE = "phone"  # E.164
    # A secure card's (NTAG 424 DNA) message, as read: the URL the store server verifies;
    # it changes on every tap, so it is never a cache key.
    SECURE_CARD = "secure_card"


@dataclass(frozen=True)
class Identity:
    """A typed customer identifier. `value` is canonical (E.164, upper hex, digits)."""

    kind: IdentityKind
    value: str
    symbology: str | None = None  # e.g. "EAN-13", "Code128", "GSRN"

    def redacted(self) -> str:
        """A form safe for logs: kind plus a short digest, never the value itself."""
        digest = hashlib.sha256(f"{self.kind}:{self.value}".encode()).hexdigest()[:10]
        return f"{self.kind}#{digest}"

    def masked(self) -> str:
        """A form safe for screens: only the last digits stay visible."""
        if self.kind is IdentityKind.SECURE_CARD:
            return "secure card"  # its message is no identifier to show
        return mask_tail(self.value, 2 if self.kind is IdentityKind.PHONE else 4)

    def __repr__(self) -> str:  # keeps identifiers out of tracebacks and log lines
        return f"Identity({self.redacted()})"


def mask_tail(value: str, visible: int) -> str:
    if len(value) <= visible:
        return "•" * len(value)
    return "•" * (len(value) - visible) + value[-visible:]


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times inside the core must be timezone-aware")
    return moment.astimezone(UTC)


_uuid7_lock = threading.Lock()
_uuid7_last = [0, 0]  # last millisecond, last 12-bit counter


def uuid7() -> str:
    """RFC 9562 UUIDv7: ms timestamp + counter (monotonic in a process) + random bits."""
    with _uuid7_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _uuid7_last[0]:
            ms = _uuid7_last[0]
            counter = _uuid7_last[1] + 1
            if counter > 0xFFF:  # counter exhausted within one ms: borrow the next ms
                ms += 1
                counter = 0
        else:
            counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        _uuid7_last[0], _uuid7_last[1] = ms, counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


NAME_MAX_COMBINING_RUN = 2  # a letter may carry two marks (Vietnamese ệ); more is an attack
NAME_REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}
# Characters that draw nothing though Unicode calls them letters or marks: Hangul fillers,
# the combining grapheme joiner, Khmer inherent vowels, the Braille blank, and the like.
INVISIBLE_LETTERS = frozenset(
    "\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u2800\u180b\u180c\u180d\u180e\u180f"
)


def text_problem(text: str) -> str | None:
    """Why `text` is not printable text (a category, a SKU; names add a letter rule), or
    None: control, bidi-override, zero-width, private-use or unassigned characters, or runs
    of combining marks. The terminal checks before recording, the server again."""
    run = 0
    for char in text:
        category = unicodedata.category(char)
        if category in NAME_REFUSED_CATEGORIES or char in INVISIBLE_LETTERS:
            return (
                "control, invisible, bidi-override, zero-width or unassigned characters are refused"
            )
        run = run + 1 if category.startswith("M") else 0
        if run > NAME_MAX_COMBINING_RUN:
            return f"more than {NAME_MAX_COMBINING_RUN} combining marks on a letter"
    return None


def name_problem(text: str) -> str | None:
    """Why `text` (in NFC) is not a person's name, or None: not printable text (see
    text_problem), or no letter at all ("-'"). The terminal checks it before enrolling, the
    server again."""
    problem = text_problem(text)
    if problem is not None:
        return problem
    if text and not any(char.isalpha() for char in text):
        return "a name needs letters"
    return None


def tidy_name(value: str) -> str:
    """A typed name in NFC without spaces or stray punctuation at either end ("Dana'" ->
    "Dana", " -' " -> ""); inner punctuation stays ("O'Neil", "Anne-Marie")."""
    text = unicodedata.normalize("NFC", value)
    ends = "".join({c for c in text if unicodedata.category(c)[0] in "PZ" or c.isspace()} - {"."})
    text = text.strip(ends)
    return text.lstrip(".")


# Digits after the point in each currency's minor unit (ISO 4217); 2 when not listed.
MINOR_UNIT_EXPONENT = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}
MAX_AMOUNT_DIGITS = 7  # whole units of one line: the store server refuses more


def money_problem(amount: Decimal, currency: str) -> str | None:
    """Why `amount` is not a money amount the store server accepts for `currency` (finite,
    at most the currency's decimals, at most 7 whole digits), or None."""
    decimals = MINOR_UNIT_EXPONENT.get(currency, 2)
    if not amount.is_finite():
        return "not a number"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -decimals:
        return f"at most {decimals} decimals in {currency}"
    if abs(amount) >= Decimal(10) ** MAX_AMOUNT_DIGITS:
        return f"at most {MAX_AMOUNT_DIGITS} digits before the point"
    return None


def money_in(amount: Decimal, currency: str) -> Decimal:
    """`amount` written with exactly the currency's decimals ("1E+3" -> "1000.00")."""
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNIT_EXPONENT.get(currency, 2)))


@dataclass(frozen=True)
class PurchaseLine:
    amount: Decimal  # line total in store currency
    category: str = ""
    sku: str = ""
    quantity: int = 1
    # The line's quantity in the unit the programme earns by (kilometres flown, nights,
    # litres), when it earns by one; None: the line carries no units.
    units: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("money must be Decimal")
        if self.amount < 0:
            raise ValueError("a purchase line cannot be negative")
        if self.units is not None:
            if not isinstance(self.units, Decimal):
                raise TypeError("units must be Decimal")
            if not self.units.is_finite() or self.units < 0:
                raise ValueError("a purchase line's units cannot be negative")


@dataclass(frozen=True)
class Purchase:
    lines: tuple[PurchaseLine, ...]

    @classmethod
    def of_amount(cls, amount: Decimal, category: str = "") -> Purchase:
        return cls((PurchaseLine(amount=amount, category=category),))

    @cached_property
    def total(self) -> Decimal:
        # Cached (frozen: the lines never change): a sale's rules ask for it several times.
        return sum((line.amount for line in self.lines), Decimal("0"))

    @cached_property
    def units(self) -> Decimal:
        """The units the lines carry (0 when none does)."""
        return sum((line.units for line in self.lines if line.units), Decimal("0"))

    @cached_property
    def unit_lines(self) -> int:
        """How many lines carry units (flight segments, stays)."""
        return sum(1 for line in self.lines if line.units)


@dataclass(frozen=True)
class Consent:
    """What the member agreed to, when and where: kept with the enrollment."""

    text_id: str  # version id of the consent wording shown
    given_at: datetime
    channel: str  # "cashier", "kiosk", "cli"
    marketing: bool = False
    guardian: bool = False  # a parent or guardian consented for a minor (the age gate)


@dataclass(frozen=True)
class MemberStats:
    """Activity in the program's qualifying period (for tiers) and overall."""

    points_in_period: int = 0
    spend_in_period: Decimal = Decimal("0")
    visits_in_period: int = 0
    units_in_period: Decimal = Decimal("0")  # the programme's earning unit (km, nights)
    segments_in_period: int = 0  # sale lines that carried units
    tenure_months: int = 0  # months of membership (or of active membership), as tiers count
    # Over the whole membership, for every-Nth-free rules (0 where the programme has none).
    lifetime_units: Decimal = Decimal("0")
    lifetime_visits: int = 0
    # The period before (programmes whose status holds to the end of the next period).
    previous_period: MemberStats | None = None
    # Tiers reached at earlier sales and kept (downgrade never or grace): (tier id, the
    # last store day the member reached it). Read by the ledger; not sent to terminals.
    tiers_kept: tuple[tuple[str, date], ...] = ()


@dataclass(frozen=True)
class RewardOffer:
    reward_id: str
    name: str
    cost: int
    affordable: bool
    kind: str = "item"
    value: Decimal | None = None


MAX_OFFERS = 50  # partner offers a programme may run at once


@dataclass(frozen=True)
class OfferLeft:
    """A partner offer the member may use today, and how many more times."""

    offer_id: str
    uses_left: int


@dataclass(frozen=True)
class MemberView:
    """What a terminal may know and show about a member. Names and phone are masked."""

    member_id: str
    display_name: str  # first name + initial
    phone_hint: str  # "•••••••••89"
    tier_id: str
    tier_name: str
    balance: int
    stats: MemberStats = field(default_factory=MemberStats)
    next_tier_name: str | None = None
    next_tier_remaining: Decimal | None = None  # in the tier basis unit
    next_reward_name: str | None = None
    next_reward_remaining: int | None = None
    rewards: tuple[RewardOffer, ...] = ()
    birthday_reward: bool = False  # a birthday benefit (item or bonus) is available now
    card_number: str | None = None
    as_of: datetime = field(default_factory=utcnow)
    points_expiring: int = 0  # of the balance, expiring within the next 30 days
    expiring_on: date | None = None  # the store day the first of them expire
    # A programme holding points until a first spend: what is held, and what is still to
    # spend (None: no gate, or it is open).
    points_held: int = 0
    gate_remaining: Decimal | None = None
    offers: tuple[OfferLeft, ...] = ()  # partner offers open to the member today
    invitations_left: int | None = None  # a programme joined by invitation: theirs to give


def mask_name(first_name: str, last_name: str) -> str:
    first = first_name.strip() or "Member"
    initial = last_name.strip()[:1]
    return f"{first} {initial}." if initial else first


def today_utc() -> date:
    return utcnow().date()


def member_view_to_json(view: MemberView) -> dict[str, object]:
    """Plain JSON for the terminal's member cache and the HTTP API."""
    return {
        "member_id": view.member_id,
        "display_name": view.display_name,
        "phone_hint": view.phone_hint,
        "tier_id": view.tier_id,
        "tier_name": view.tier_name,
        "balance": view.balance,
        "stats": {
            "points_in_period": view.stats.points_in_period,
            "spend_in_period": str(view.stats.spend_in_period),
            "visits_in_period": view.stats.visits_in_period,
            "units_in_period": str(view.stats.units_in_period),
            "segments_in_period": view.stats.segments_in_period,
            "tenure_months": view.stats.tenure_months,
            "lifetime_units": str(view.stats.lifetime_units),
            "lifetime_visits": view.stats.lifetime_visits,
        },
        "next_tier_name": view.next_tier_name,
        "next_tier_remaining": (
            None if view.next_tier_remaining is None else str(view.next_tier_remaining)
        ),
        "next_reward_name": view.next_reward_name,
        "next_reward_remaining": view.next_reward_remaining,
        "rewards": [
            {
                "reward_id": r.reward_id,
                "name": r.name,
                "cost": r.cost,
                "affordable": r.affordable,
                "kind": r.kind,
                "value": None if r.value is None else str(r.value),
            }
            for r in view.rewards
        ],
        "birthday_reward": view.birthday_reward,
        "card_number": view.card_number,
        "as_of": view.as_of.isoformat(),
        "points_expiring": view.points_expiring,
        "expiring_on": view.expiring_on.isoformat() if view.expiring_on else None,
        "points_held": view.points_held,
        "gate_remaining": None if view.gate_remaining is None else str(view.gate_remaining),
        "offers": [{"offer_id": o.offer_id, "uses_left": o.uses_left} for o in view.offers],
        "invitations_left": view.invitations_left,
    }


def member_view_from_json(data: dict[str, Any]) -> MemberView:
    stats = data.get("stats") or {}
    remaining = data.get("next_tier_remaining")
    return MemberView(
        member_id=data["member_id"],
        display_name=data["display_name"],
        phone_hint=data.get("phone_hint", ""),
        tier_id=data["tier_id"],
        tier_name=data["tier_name"],
        balance=int(data["balance"]),
        stats=MemberStats(
            points_in_period=int(stats.get("points_in_period", 0)),
            spend_in_period=Decimal(stats.get("spend_in_period", "0")),
            visits_in_period=int(stats.get("visits_in_period", 0)),
            units_in_period=Decimal(stats.get("units_in_period", "0")),
            segments_in_period=int(stats.get("segments_in_period", 0)),
            tenure_months=int(stats.get("tenure_months", 0)),
            lifetime_units=Decimal(stats.get("lifetime_units", "0")),
            lifetime_visits=int(stats.get("lifetime_visits", 0)),
        ),
        next_tier_name=data.get("next_tier_name"),
        next_tier_remaining=None if remaining is None else Decimal(remaining),
        next_reward_name=data.get("next_reward_name"),
        next_reward_remaining=data.get("next_reward_remaining"),
        rewards=tuple(
            RewardOffer(
                reward_id=r["reward_id"],
                name=r["name"],
                cost=int(r["cost"]),
                affordable=bool(r["affordable"]),
                kind=r.get("kind", "item"),
                value=None if r.get("value") is None else Decimal(r["value"]),
            )
            for r in data.get("rewards", [])
        ),
        birthday_reward=bool(data.get("birthday_reward")),
        card_number=data.get("card_number"),
        as_of=datetime.fromisoformat(data["as_of"]) if data.get("as_of") else utcnow(),
        points_expiring=max(int(data.get("points_expiring") or 0), 0),
        expiring_on=date.fromisoformat(data["expiring_on"]) if data.get("expiring_on") else None,
        points_held=max(int(data.get("points_held") or 0), 0),
        gate_remaining=(
            Decimal(data["gate_remaining"]) if data.get("gate_remaining") is not None else None
        ),
        offers=tuple(
            OfferLeft(str(o["offer_id"]), max(int(o["uses_left"]), 0))
            for o in (data.get("offers") or [])[:MAX_OFFERS]
        ),
        invitations_left=(
            None if data.get("invitations_left") is None else max(int(data["invitations_left"]), 0)
        ),
    )
