"""Operations a terminal records and a backend applies exactly once, keyed by a UUIDv7.

The body is plain JSON (money as decimal strings, times as ISO 8601 UTC) so the same bytes
travel through the outbox, the HTTP API and the ledger's idempotency check.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from pos_client.domain import Consent, Purchase, PurchaseLine, require_aware, text_problem

OP_SALE = "sale"
OP_ENROLL = "enroll"
OP_ACTION = "action"
OP_GIVE = "give"
OP_RECEIVE = "receive"
OP_KINDS = (OP_SALE, OP_ENROLL, OP_ACTION, OP_GIVE, OP_RECEIVE)


class OpRejected(Exception):
    """A permanent refusal: retrying the same operation can never succeed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OpConflict(OpRejected):
    """The key was already applied with a different body."""

    def __init__(self, key: str) -> None:
        super().__init__("conflict", f"key {key} was already used for a different operation")


class OpKeyTaken(OpConflict):
    """The key was applied for another terminal: refused, revealing nothing of it."""

    def __init__(self, key: str) -> None:
        OpRejected.__init__(self, "key_taken", f"key {key} belongs to another terminal")


def canonical_json(body: dict[str, Any]) -> str:
    """Sorted keys, no spaces, text as UTF-8: what `body_hash` hashes and results are
    stored as. orjson spells it ten times faster than the standard encoder (the hash of
    each operation was 8 % of the server's time) and alike for everything an operation
    holds: strings, integers, booleans, null, objects and lists. It refuses an integer past
    64 bits, which the standard encoder then spells. Floats it spells alike except small
    exponents (`1e-7`, not `1e-07`) and NaN as null: no operation field takes a float, and
    `json_problem` refuses NaN and Infinity, so no two different bodies share a hash."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def iso(moment: datetime) -> str:
    return require_aware(moment).isoformat()


EARLIEST_YEAR, LATEST_YEAR = 2000, 2999  # any time outside is malformed, not merely late


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise OpRejected("bad_request", f"{field}: expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise OpRejected("bad_request", f"{field}: time needs a UTC offset")
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise OpRejected("bad_request", f"{field}: not an ISO 8601 time in range") from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise OpRejected(
            "bad_request", f"{field}: a time from {EARLIEST_YEAR} to {LATEST_YEAR} (UTC)"
        )
    return moment


MAX_NESTING = 32  # levels of objects and lists in one operation (the operation is level 1)
MAX_INT_DIGITS = 100  # no number in an operation needs more than 19


class OversizedNumber:
    """What a JSON parser that refuses to build huge integers (quadratic to convert; Python
    refuses past 4300 digits) puts in their place, so the operation holding one is refused
    alone (`json_problem`) and the rest of its batch is applied."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"


def bounded_int(text: str) -> int | OversizedNumber:
    """`parse_int` for json.loads: an integer, or an OversizedNumber past MAX_INT_DIGITS."""
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else OversizedNumber(digits)


# Searched in C, not char by char in Python (the apply path's profile: a sale's strings).
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def json_problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be an operation's, or None: a string (a key too) with
    an unpaired surrogate (it cannot be stored, hashed or echoed as UTF-8), objects and lists
    nested deeper than MAX_NESTING, an integer of more than MAX_INT_DIGITS digits, or NaN or
    Infinity (Python's parser reads them; JSON has no such numbers). Walked a level at a
    time, without recursion (no depth is too deep to look at): the parser's exact types
    are told apart by identity and a level's strings checked in one C call (this ran for
    every operation the server applied, 3 % of its time walked value by value)."""
    level: list[Any] = [value]
    depth = 1  # the operation itself is level 1
    while level:
        texts: list[str] = []
        containers: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is str:
                texts.append(item)
            elif kind is dict or kind is list:
                containers.append(item)
            elif kind is not int and kind is not bool and item is not None:
                problem = _odd_value_problem(item, texts, containers)
                if problem is not None:
                    return problem
        if texts:
            joined = "".join(texts)
            if not joined.isascii() and _SURROGATE.search(joined):
                return "text that is not valid UTF-8 (an unpaired surrogate)"
        if containers and depth > MAX_NESTING:
            return f"nested deeper than {MAX_NESTING} levels"
        level = []
        for container in containers:
            if isinstance(container, dict):
                level.extend(container)  # keys: text to check like any other
                level.extend(container.values())
            else:
                level.extend(container)
        depth += 1
    return None


def _odd_value_problem(item: Any, texts: list[str], containers: list[Any]) -> str | None:
    """`json_problem` for a value of a type the JSON parser makes rarely or never (a float,
    an OversizedNumber, a subclass from an in-process caller): its problem, or None after
    adding it to `texts` or `containers` as its kind needs."""
    if isinstance(item, OversizedNumber):
        return f"a number of more than {MAX_INT_DIGITS} digits"
    if isinstance(item, float):
        return None if math.isfinite(item) else "a number JSON cannot hold (NaN or Infinity)"
    if isinstance(item, str):
        texts.append(item)
    elif isinstance(item, dict | list):
        containers.append(item)
    return None


MAX_AMOUNT = Decimal("10000000")  # no single line of a sale is ten million or more
MAX_TEXT = 64
MAX_POINTS = 10**9


def parse_money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value)) if isinstance(value, str | int) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        raise OpRejected("bad_request", f"{field}: expected a decimal string from 0 to 9999999")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise OpRejected("bad_request", f"{field}: at most 4 decimal places")
    return amount


MAX_UNITS = Decimal(10**7)  # a line's units (kilometres, nights): bounded like amounts
# ASCII digits, at most 3 decimals: no exponent, sign, space or other scripts' digits.
UNITS_TEXT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,3})?")


def parse_units(value: Any, field: str) -> Decimal | None:
    """A line's units: absent (None), or a decimal string from 0 to 9999999.999."""
    if value is None:
        return None
    if not isinstance(value, str) or not UNITS_TEXT.fullmatch(value):
        raise OpRejected(
            "bad_request",
            f"{field}: expected a decimal string of ASCII digits from 0 to 9999999,"
            " at most 3 decimals",
        )
    return Decimal(value)


def line_body(line: PurchaseLine) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": str(line.amount),
        "category": line.category,
        "sku": line.sku,
        "quantity": line.quantity,
    }
    if line.units is not None:  # only then, so a sale without units hashes as it did
        body["units"] = str(line.units)
    return body


def require(body: dict[str, Any], field: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(field)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise OpRejected("bad_request", f"{field}: missing or of the wrong type")
    if isinstance(value, str) and not 0 < len(value) <= MAX_TEXT:
        raise OpRejected("bad_request", f"{field}: 1 to {MAX_TEXT} characters")
    if isinstance(value, str) and not printable(value):
        raise OpRejected("bad_request", f"{field}: control characters are not allowed")
    if isinstance(value, int) and not 0 <= value <= MAX_POINTS:
        raise OpRejected("bad_request", f"{field}: out of range")
    return value


def optional(body: dict[str, Any], field: str, kind: type) -> Any:
    if body.get(field) is None:
        return None
    return require(body, field, kind)


def text(body: dict[str, Any], field: str, limit: int = MAX_TEXT) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or not printable(value):
        raise OpRejected("bad_request", f"{field}: text of at most {limit} printable characters")
    return value


def printable(value: str) -> bool:
    # NUL and other control characters: PostgreSQL refuses NUL, and no identifier has them.
    return _CONTROL.search(value) is None


@dataclass(frozen=True)
class RedemptionRequest:
    reward_id: str | None = None
    option: int | None = None  # index of a points + cash alternative
    blocks: int | None = None  # points-as-money blocks
    points: int = 0  # what the terminal planned; the backend re-checks

    def to_body(self) -> dict[str, Any]:
        return {
            "reward_id": self.reward_id,
            "option": self.option,
            "blocks": self.blocks,
            "points": self.points,
        }

    @classmethod
    def from_body(cls, body: Any) -> RedemptionRequest | None:
        if body is None:
            return None
        if not isinstance(body, dict):
            raise OpRejected("bad_request", "redemption: expected an object")
        return cls(
            reward_id=optional(body, "reward_id", str),
            option=optional(body, "option", int),
            blocks=optional(body, "blocks", int),
            points=optional(body, "points", int) or 0,
        )


@dataclass(frozen=True)
class StaffAward:
    """An award as a till asks for it: the PINs are checked by the ledger, never stored."""

    key: str
    member_id: str
    points: int
    reason: str
    staff_id: str
    staff_pin: str = field(repr=False)
    approver: tuple[str, str] | None = field(default=None, repr=False)  # (id, PIN)

    def result(self, approver_id: str | None) -> dict[str, Any]:
        return {
            "key": self.key,
            "member_id": self.member_id,
            "points": self.points,
            "staff_id": self.staff_id,
            "approver_id": approver_id,
        }


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_OFFERS_PER_SALE = 50  # as many as a programme may run
_OFFER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def parse_offer_ids(value: Any) -> tuple[str, ...]:
    """A sale's offers: absent, or a list of at most 10 distinct offer ids."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_OFFERS_PER_SALE:
        raise OpRejected("bad_request", f"offers: a list of at most {MAX_OFFERS_PER_SALE} ids")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _OFFER_ID.fullmatch(item):
            raise OpRejected("bad_request", f"offers[{index}]: not an offer id")
    if len(set(value)) != len(value):
        raise OpRejected("bad_request", "offers: an offer is named twice")
    return tuple(value)


@dataclass(frozen=True)
class SaleOp:
    key: str
    member_id: str
    terminal_id: str
    occurred_at: datetime
    purchase: Purchase
    redemption: RedemptionRequest | None = None
    expected_points: int = 0  # the terminal's preview, shown as pending until acked
    offline: bool = False
    program_version: str | None = None  # the programme the preview was made under
    offers: tuple[str, ...] = ()  # the partner offers the till applied (ids)

    kind = OP_SALE

    def to_body(self) -> dict[str, Any]:
        return {
            "type": OP_SALE,
            "key": self.key,
            "member_id": self.member_id,
            "terminal_id": self.terminal_id,
            "occurred_at": iso(self.occurred_at),
            "lines": [line_body(line) for line in self.purchase.lines],
            "redemption": self.redemption.to_body() if self.redemption else None,
            "expected_points": self.expected_points,
            "offline": self.offline,
            # Only when known, so a sale recorded before versions hashes as it did.
            **({"program_version": self.program_version} if self.program_version else {}),
            **({"offers": list(self.offers)} if self.offers else {}),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SaleOp:
        raw_lines = require(body, "lines", list)
        if not raw_lines:
            raise OpRejected("bad_request", "lines: a sale has 1 to 500 lines")
        if len(raw_lines) > 500:  # the format's bound: a limit, answered as the limits are
            raise OpRejected("limit_lines", "lines: a sale has at most 500 lines")
        lines = []
        for index, line in enumerate(raw_lines):
            if not isinstance(line, dict):
                raise OpRejected("bad_request", f"lines[{index}]: expected an object")
            lines.append(
                PurchaseLine(
                    amount=parse_money(line.get("amount"), f"lines[{index}].amount"),
                    category=text(line, "category"),
                    sku=text(line, "sku"),
                    quantity=optional(line, "quantity", int) or 1,
                    units=parse_units(line.get("units"), f"lines[{index}].units"),
                )
            )
        return cls(
            key=require(body, "key", str),
            member_id=require(body, "member_id", str),
            terminal_id=text(body, "terminal_id"),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at"),
            purchase=Purchase(tuple(lines)),
            redemption=RedemptionRequest.from_body(body.get("redemption")),
            expected_points=optional(body, "expected_points", int) or 0,
            offline=body.get("offline") is True,
            program_version=parse_program_version(body.get("program_version")),
            offers=parse_offer_ids(body.get("offers")),
        )

    @property
    def redeem_points(self) -> int:
        return self.redemption.points if self.redemption else 0


@dataclass(frozen=True)
class EnrollOp:
    key: str
    member_id: str
    first_name: str
    last_name: str
    phone_key: str  # keyed HMAC of the E.164 number, never the number
    phone_last: str  # last two digits, for the masked hint
    card_number: str
    consent: Consent
    occurred_at: datetime
    birthday: date | None = None
    invited_by: str = ""  # the inviting member's id (a programme joined by invitation)

    kind = OP_ENROLL

    def to_body(self) -> dict[str, Any]:
        return {
            "type": OP_ENROLL,
            "key": self.key,
            "member_id": self.member_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone_key": self.phone_key,
            "phone_last": self.phone_last,
            "card_number": self.card_number,
            "birthday": self.birthday.isoformat() if self.birthday else None,
            "consent": {
                "text_id": self.consent.text_id,
                "given_at": iso(self.consent.given_at),
                "channel": self.consent.channel,
                "marketing": self.consent.marketing,
                # Only when given, so an enrollment recorded before the age gate hashes as it did.
                **({"guardian": True} if self.consent.guardian else {}),
            },
            "occurred_at": iso(self.occurred_at),
            **({"invited_by": self.invited_by} if self.invited_by else {}),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> EnrollOp:
        consent = require(body, "consent", dict)
        birthday_text = body.get("birthday")
        try:
            if birthday_text and not _DAY.fullmatch(birthday_text):
                raise ValueError(birthday_text)  # 20000101, 2000-W01-1: not this format
            birthday = date.fromisoformat(birthday_text) if birthday_text else None
        except (TypeError, ValueError):
            raise OpRejected("bad_request", "birthday: expected YYYY-MM-DD") from None
        if consent.get("guardian", False) not in (True, False):
            raise OpRejected("bad_request", "consent.guardian: true or false")
        if birthday is not None and not 1900 <= birthday.year <= LATEST_YEAR:
            raise OpRejected("bad_request", "birthday: out of range")
        return cls(
            key=require(body, "key", str),
            member_id=require(body, "member_id", str),
            first_name=require(body, "first_name", str),
            last_name=text(body, "last_name"),
            phone_key=require(body, "phone_key", str),
            phone_last=text(body, "phone_last", 4),
            card_number=require(body, "card_number", str),
            consent=Consent(
                text_id=require(consent, "text_id", str),
                given_at=parse_time(consent.get("given_at"), "consent.given_at"),
                channel=text(consent, "channel", 20),
                marketing=consent.get("marketing") is True,
                guardian=consent.get("guardian") is True,
            ),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at"),
            birthday=birthday,
            invited_by=text(body, "invited_by", 64),
        )


@dataclass(frozen=True)
class ActionOp:
    key: str
    member_id: str
    action: str
    terminal_id: str
    occurred_at: datetime
    expected_points: int = 0

    kind = OP_ACTION

    def to_body(self) -> dict[str, Any]:
        return {
            "type": OP_ACTION,
            "key": self.key,
            "member_id": self.member_id,
            "action": self.action,
            "terminal_id": self.terminal_id,
            "occurred_at": iso(self.occurred_at),
            "expected_points": self.expected_points,
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ActionOp:
        return cls(
            key=require(body, "key", str),
            member_id=require(body, "member_id", str),
            action=require(body, "action", str),
            terminal_id=text(body, "terminal_id"),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at"),
            expected_points=optional(body, "expected_points", int) or 0,
        )


PROGRAM_VERSION = re.compile(r"[0-9a-f]{16}")


def parse_program_version(value: object) -> str | None:
    """A programme version as a sale carries it (pos_client.program.program_version)."""
    if value is None:
        return None
    if not isinstance(value, str) or not PROGRAM_VERSION.fullmatch(value):
        raise OpRejected("bad_request", "program_version: 16 lowercase hex digits")
    return value


# The member's account number at a partner programme (where transferred points arrive):
# ASCII letters and digits only (str.isalnum() would take any script), bounded.
PARTNER_ACCOUNT_MAX = 32
PARTNER_ACCOUNT = re.compile(r"[A-Za-z0-9]+")


def partner_account_problem(account: str | None) -> str | None:
    """Why this cannot be an account number at a partner (an error code), or None."""
    if not account:
        return "partner_account_required"
    if len(account) > PARTNER_ACCOUNT_MAX or not PARTNER_ACCOUNT.fullmatch(account):
        return "partner_account_invalid"
    return None


@dataclass(frozen=True)
class GiveOp:
    """Points transferred to a partner programme (to the member's account there) or donated
    to a charity."""

    key: str
    member_id: str
    target_id: str
    points: int
    terminal_id: str
    occurred_at: datetime
    partner_account: str | None = None  # a transfer's account number at the partner

    kind = OP_GIVE

    def to_body(self) -> dict[str, Any]:
        body = {
            "type": OP_GIVE,
            "key": self.key,
            "member_id": self.member_id,
            "target_id": self.target_id,
            "points": self.points,
            "terminal_id": self.terminal_id,
            "occurred_at": iso(self.occurred_at),
            "redemption": {"points": self.points},  # counts as spent while unsynced
        }
        if self.partner_account is not None:
            body["partner_account"] = self.partner_account
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> GiveOp:
        account = body.get("partner_account")
        if account is not None and (
            not isinstance(account, str) or partner_account_problem(account) is not None
        ):
            raise OpRejected(
                "bad_request",
                f"partner_account: 1 to {PARTNER_ACCOUNT_MAX} ASCII letters and digits",
            )
        return cls(
            key=require(body, "key", str),
            member_id=require(body, "member_id", str),
            target_id=require(body, "target_id", str),
            points=require(body, "points", int),
            terminal_id=text(body, "terminal_id"),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at"),
            partner_account=account,
        )


@dataclass(frozen=True)
class ReceiveOp:
    """Units of a partner programme transferred in, credited as points."""

    key: str
    member_id: str
    partner_id: str
    units: int
    reference: str  # the partner's own transfer id, for reconciliation
    occurred_at: datetime

    kind = OP_RECEIVE

    def to_body(self) -> dict[str, Any]:
        return {
            "type": OP_RECEIVE,
            "key": self.key,
            "member_id": self.member_id,
            "partner_id": self.partner_id,
            "units": self.units,
            "reference": self.reference,
            "occurred_at": iso(self.occurred_at),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ReceiveOp:
        return cls(
            key=require(body, "key", str),
            member_id=require(body, "member_id", str),
            partner_id=require(body, "partner_id", str),
            units=require(body, "units", int),
            reference=text(body, "reference"),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at"),
        )


Operation = SaleOp | EnrollOp | ActionOp | GiveOp | ReceiveOp
OP_PARSERS: dict[str, Any] = {
    OP_SALE: SaleOp.from_body,
    OP_ENROLL: EnrollOp.from_body,
    OP_ACTION: ActionOp.from_body,
    OP_GIVE: GiveOp.from_body,
    OP_RECEIVE: ReceiveOp.from_body,
}


# Stands for the keyed phone of an enrollment that carries the number for the server to key.
PHONE_KEY_STANDIN = "0" * 64


def sendable_problem(body: Any) -> OpRejected | None:
    """Why the server would refuse this body as malformed (the rules it parses with), or
    None. An enrollment carrying `phone` for the server to key is judged with a stand-in
    key; the terminal checks before recording and again before sending."""
    if isinstance(body, dict) and body.get("type") == OP_ENROLL and "phone" in body:
        phone = body.get("phone")
        if "phone_key" in body or not isinstance(phone, str) or not 0 < len(phone) <= MAX_TEXT:
            return OpRejected("bad_request", "phone: 1 to 64 characters, without a phone_key")
        body = {k: v for k, v in body.items() if k != "phone"} | {"phone_key": PHONE_KEY_STANDIN}
    try:
        op = parse_operation(body)
    except OpRejected as exc:
        return exc
    if isinstance(op, SaleOp):  # the server's strict rule for a line's text (strict.py)
        for index, line in enumerate(op.purchase.lines):
            for field, value in (("category", line.category), ("sku", line.sku)):
                problem = text_problem(value)
                if problem:
                    return OpRejected("bad_request", f"lines[{index}].{field}: {problem}")
    return None


def parse_operation(body: Any) -> Operation:
    if not isinstance(body, dict):
        raise OpRejected("bad_request", "an operation must be a JSON object")
    problem = json_problem(body)
    if problem is not None:
        raise OpRejected("bad_request", problem)
    kind = body.get("type")
    parser = OP_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise OpRejected("bad_request", "unknown operation type")
    try:
        op: Operation = parser(body)
    except (TypeError, ValueError, ArithmeticError):
        raise OpRejected("bad_request", f"malformed {kind} operation") from None
    return op
