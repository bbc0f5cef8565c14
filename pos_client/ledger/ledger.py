"""The loyalty ledger: members, identifiers and an append-only transaction log.

Each operation is applied in one database transaction that first claims its idempotency
key; a repeat with the same body returns the first result, a different body is a conflict.
The cached `members.balance` moves in the same transaction as the rows that explain it, by
a conditional UPDATE that can never take it below zero.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from time import sleep
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, case, event, func, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from pos_client import pins, rules
from pos_client.domain import (
    MINOR_UNIT_EXPONENT,
    MemberStats,
    MemberView,
    mask_name,
    mask_tail,
    utcnow,
)
from pos_client.errors import CardLinkRefused
from pos_client.ledger import card_counters, totals
from pos_client.ledger import staff_awards as staff_awards_module
from pos_client.ledger.pending import PENDING, BatchWrites, FlushRefused
from pos_client.ledger.pin_rows import check_pin_row
from pos_client.ledger.schema import (
    PerDialect,
    birthday_grants,
    identifiers,
    member_pins,
    member_tiers,
    members,
    one_of,
    operations,
    partner_transfers,
    staff_awards,
    transactions,
)
from pos_client.ledger.staff_awards import describe_pin_refusal
from pos_client.ledger.upgrade import Opened, StepContext, open_schema
from pos_client.operations import (
    ActionOp,
    EnrollOp,
    GiveOp,
    OpConflict,
    Operation,
    OpKeyTaken,
    OpRejected,
    ReceiveOp,
    SaleOp,
    StaffAward,
    body_hash,
    canonical_json,
    parse_operation,
)
from pos_client.rules import Program, RedemptionPlan, RulesError
from pos_client.sun import SunKeys, SunRefused

log = logging.getLogger(__name__)
EARNING_KINDS = totals.EARNING_KINDS
EXPIRING_SOON = timedelta(days=30)  # the member view shows what expires within this
# A sale's units the programme cannot count: refused by a rule (422), named by code.
UNIT_REFUSALS = frozenset(
    {
        "units_over_limit",
        "units_not_whole",
        "units_underpriced",
        "units_not_earned",
        "units_too_many_lines",
        "not_combinable",
    }
)
EXPIRY_LOCK = 0x6C6F79616C747901  # pg advisory lock key: one expiry run at a time
# PostgreSQL's serialization_failure and deadlock_detected: the transaction may simply be
# tried again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a database error (psycopg), None where the driver has none."""
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def to_minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(MINOR_UNIT_EXPONENT.get(currency, 2)).to_integral_value())


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-MINOR_UNIT_EXPONENT.get(currency, 2))


class _RolledBack(Exception):
    """Leaves an all-or-nothing batch's transaction, rolled back; carries the outcomes."""

    def __init__(self, outcomes: list[dict[str, Any] | OpRejected]) -> None:
        super().__init__("rolled back")
        self.outcomes = outcomes


class _Deferred(OpRejected):
    """An operation left for a batch's second pass (its member was held by another
    transaction): passed through the first as a refusal is, replaced by its outcome after
    the second. Never returned."""


DEFERRED = _Deferred("deferred", "applied in the batch's second pass")


@dataclass(frozen=True)
class Limits:
    """Abuse limits a server enforces on every operation (None: no limit)."""

    max_sale_amount: Decimal | None = None  # purchase total, in the programme's currency
    max_lines_per_sale: int | None = None
    max_points_per_operation: int | None = None  # earned or spent by one operation
    max_points_per_member_per_day: int | None = None  # every earning kind, per store day
    # Time bounds on `occurred_at` (and consent times): no later than now + clock_skew, no
    # earlier than now - offline_window, never before the member's enrollment (- clock_skew).
    clock_skew: timedelta | None = None
    offline_window: timedelta | None = None


EARNED_KINDS = totals.EARNED_KINDS
# Rows that are not the member's own activity (expiry by inactivity): their points
# expiring, and their inviting someone else.
NOT_ACTIVITY = ("expire", "invite", "adjust")  # a manager's correction is not the member's


@dataclass(frozen=True)
class Claim:
    """What an operation's idempotency record holds beside its result."""

    digest: str  # the body's hash: the same key with another body is a conflict
    terminal_id: str | None  # from the caller's credentials; None in-process
    merchant: str = ""  # the coalition merchant of the caller's till ("" = the operator)
    founder: bool = False  # the operator's own enrollment (import, demo): needs no invitation


@dataclass(frozen=True)
class MemberRecord:
    id: str
    first_name: str
    last_name: str
    phone_last: str
    card_number: str | None
    birthday: date | None
    balance: int
    enrolled_at: datetime | None = None

    def with_balance(self, balance: int) -> MemberRecord:
        """This record with another balance: every other field copied as it is (what
        dataclasses.replace does, at a tenth of its cost: a batch does it per operation)."""
        copy = object.__new__(MemberRecord)
        copy.__dict__.update(self.__dict__, balance=balance)
        return copy


MEMBER_RECORD_COLUMNS = (
    members.c.id,
    members.c.first_name,
    members.c.last_name,
    members.c.phone_last,
    members.c.card_number,
    members.c.birthday,
    members.c.balance,
    members.c.enrolled_at,
)


def _members_locked_by(op: Operation) -> tuple[str, ...]:
    """The members whose rows an operation reads and then writes: its own, and an
    enrollment's inviter (whose invitations are counted under its lock)."""
    if isinstance(op, EnrollOp) and op.invited_by:
        return (op.member_id, op.invited_by)
    return (op.member_id,)


def _lock_members_statement(skip_locked: bool) -> PerDialect:
    """The batch's members read under their row locks, in id order (FOR UPDATE is rendered
    on PostgreSQL; SQLite's BEGIN IMMEDIATE locks all). `skip_locked`: only the rows no
    other transaction holds, without waiting (a batch's first pass: see apply_many)."""
    return PerDialect(
        lambda dialect: (
            select(*MEMBER_RECORD_COLUMNS)
            .where(one_of(members.c.id, "ids", dialect))
            .order_by(members.c.id)
            .with_for_update(skip_locked=skip_locked)
        )
    )


# Built once per dialect (see PerDialect): the batch's reads pay for parameters only.
_LOCK_MEMBERS = _lock_members_statement(skip_locked=False)
_LOCK_FREE_MEMBERS = _lock_members_statement(skip_locked=True)
_KNOWN_KEYS = PerDialect(
    lambda dialect: select(
        operations.c.key, operations.c.body_hash, operations.c.result, operations.c.terminal_id
    ).where(one_of(operations.c.key, "keys", dialect))
)
MEMBER_CACHE = "pos_client.ledger.locked_members"  # Connection.info key, during a batch
WRITES = "pos_client.ledger.writes"  # Connection.info key: statements that wrote
# Connection.info key: a batch's one reading of the clock. Its rows are recorded at one time
# and on one store day (as PostgreSQL's now() is one per transaction), and the clock is read
# once per batch, not four times per operation (the apply path's profile: 5 % of it).
BATCH_NOW = "pos_client.ledger.now"


class _NeedSavepoints(Exception):
    """An operation failed after it wrote: the batch is applied again, a savepoint each."""


def _count_writes(
    conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    if statement[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        conn.info[WRITES] = conn.info.get(WRITES, 0) + 1


# Identifier kind of a card linked as a secure card: found by its verified messages only.
SECURE_CARD_UID = "secure_card_uid"
# A card reported lost or stolen: its taps are refused (a security event), never linked.
BLOCKED_CARD_UID = "blocked_card_uid"
CARD_KINDS = (SECURE_CARD_UID, "card_uid")  # what a member's cards are linked as
PRINTED_CARD_KINDS = ("card_number", "member_number")  # a card's printed or encoded number
BLOCKED_CARD_NUMBER = "blocked_card_number"


class Ledger:
    def __init__(
        self,
        engine: Engine,
        program: Program,
        limits: Limits | None = None,
        check: Callable[[Operation, dict[str, Any]], Operation] | None = None,
        program_version: str | None = None,
        zone: ZoneInfo | None = None,
        merchant: str = "",
    ) -> None:
        """`check`, when given, sees every parsed operation first: it returns the operation
        to apply (normalised) or raises OpRejected for it alone (the server's strict input).
        `program_version` is told in each sale's result: the rules it was applied under.
        `zone` is the store's time zone: every day, year and period rule counts its days.
        `merchant`: the coalition merchant of operations applied in-process (an embedded
        ledger's own till); an authenticated caller's is given with its batch.
        """
        self.merchant = merchant
        self._merchant_programs: dict[str, Program] = {}
        self.program_version = program_version
        self.zone = zone or ZoneInfo("UTC")
        self.limits = limits or Limits()
        self.check = check
        self.engine = engine
        if not event.contains(engine, "before_cursor_execute", _count_writes):
            event.listen(engine, "before_cursor_execute", _count_writes)
        self.writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.program = program
        self.max_retries = 8  # whole-transaction retries of a batch that met a deadlock
        self.retries = 0  # how many there were (this process)

    def create_schema(self, context: StepContext | None = None) -> Opened:
        """Create the tables, or check and upgrade an existing ledger in place (raises
        LedgerSchemaError for one this release must not open: see ledger/upgrade.py)."""
        return open_schema(self.engine, context or StepContext(zone=self.zone))

    def accept_card_counter(self, uid: bytes, counter: int) -> bool:
        """The replay check of a verified secure-NFC tap: True (and recorded) if the read
        counter is above the last accepted for the card (see ledger/card_counters.py)."""
        return card_counters.accept_counter(self.writer, uid, counter, utcnow())

    def member_by_secure_card(
        self, keys: SunKeys, url: str, uid: bytes | None = None
    ) -> str | None:
        """A secure card's message checked whole, as the store server and a terminal on its
        own ledger both do: verified with the programme's card keys, its read counter
        accepted once, then the id of the member the card is linked to (None: no one).
        `uid`: the UID the reader saw; one the message does not prove is a forgery (an
        emulator answering another card's message), refused before its counter is spent.
        SunRefused: malformed, unreadable, forged, or replayed (with the card's UID)."""
        tap = keys.verify_url(url)
        self._refuse_blocked(tap.uid)
        if uid is not None and uid != tap.uid:
            raise SunRefused(
                "forged",
                "the card's UID is not the one its message proves (an emulator?)",
                tap.uid,
            )
        if not self.accept_card_counter(tap.uid, tap.counter):
            raise SunRefused(
                "replayed", "this card's message was already used: a copy or a replay", tap.uid
            )
        return self.secure_card_owner(tap.uid)

    def _refuse_blocked(self, uid: bytes) -> None:
        if self.find_member_id(BLOCKED_CARD_UID, card_counters.card_key(uid)) is not None:
            raise SunRefused("blocked", "this card was reported lost or stolen: blocked", uid)

    def block_cards(self, member_id: str, uid_tail: str = "") -> list[str]:
        """Block a member's cards (tags and secure cards), or the one whose UID ends with
        `uid_tail`, reported lost or stolen: unlinked, and a blocked card's taps refused
        from then on. The UIDs blocked (callers show their last digits only)."""
        return self._block(member_id, CARD_KINDS, BLOCKED_CARD_UID, uid_tail.upper())

    def block_card_numbers(self, member_id: str) -> list[str]:
        """Block the member's printed card numbers and member numbers (a lost or stolen
        card's barcode): unlinked and kept as blocked, so they identify nobody, and nobody
        links or joins with them again. The numbers blocked."""
        return self._block(member_id, PRINTED_CARD_KINDS, BLOCKED_CARD_NUMBER)

    def _block(
        self, member_id: str, kinds: tuple[str, ...], blocked_kind: str, tail: str = ""
    ) -> list[str]:
        """The member's identifiers of `kinds` (ending with `tail`) moved to `blocked_kind`."""
        with self.writer.begin() as conn:
            rows = conn.execute(
                select(identifiers.c.value).where(
                    identifiers.c.member_id == member_id, identifiers.c.kind.in_(kinds)
                )
            ).all()
            blocked = sorted({row.value for row in rows if row.value.endswith(tail)})
            for value in blocked:
                conn.execute(
                    identifiers.delete().where(
                        identifiers.c.kind.in_(kinds), identifiers.c.value == value
                    )
                )
                already = conn.execute(  # blocked while a link raced it: one row is enough
                    select(identifiers.c.value).where(
                        identifiers.c.kind == blocked_kind, identifiers.c.value == value
                    )
                ).first()
                if already is None:
                    conn.execute(
                        identifiers.insert().values(
                            kind=blocked_kind, value=value, member_id=member_id
                        )
                    )
        return blocked

    def member_by_reference(self, reference: str) -> str | None:
        """A member as staff name one at the store server: by id, or by card number."""
        if self.member(reference) is not None:
            return reference
        return self.find_member_id("card_number", reference)

    def block_member_cards(self, reference: str, uid_tail: str = "") -> tuple[str, list[str]]:
        """`block_cards` for a member named by id or card number, as staff give it; the
        UIDs' last 4 digits. ValueError names what is wrong."""
        if uid_tail and not re.fullmatch(r"[0-9A-Fa-f]{2,20}", uid_tail):
            raise ValueError("--card takes the last hex digits of the card's UID")
        member_id = self.member_by_reference(reference)
        if member_id is None:
            raise ValueError("no member with this id or card number")
        blocked = self.block_cards(member_id, uid_tail)
        return member_id, [mask_tail(value, 4) for value in blocked]

    # ------------------------------------------------------------ member PINs

    def set_member_pin(self, member_id: str, pin: str, current_pin: str | None = None) -> bool:
        """The member's PIN: only its salted hash is kept. A PIN already set is replaced
        only with the current one given (checked and counted as any check: a wrong one is
        a failure), never silently: its lock would go with it. True if one was replaced.
        ValueError: no such member, a PIN that cannot be one; PinRefused: a PIN is set and
        the current one was not given, or was wrong, or is locked."""
        problem = pins.pin_problem(pin)
        if problem:
            raise ValueError(problem)
        if self.member(member_id) is None:
            raise ValueError("no member has this id")
        had = self._pin_row(member_id)
        if had is None and current_pin is not None:
            # "Changing" a PIN that does not exist: a first PIN dressed as a change (the
            # terminals ask a card for a first one).
            raise pins.PinRefused("this member has no PIN yet: none to change", "pin_not_set")
        if had is not None:
            if current_pin is None:
                raise pins.PinRefused("this member has a PIN: give it to change it", "pin_set")
            check = self.check_member_pin(member_id, current_pin)
            if not check.ok:
                raise pins.PinRefused(
                    "the current PIN is wrong or locked", "pin_wrong", locked_now=check.locked_now
                )
        digest = pins.hash_pin(pin)  # slow on purpose: outside the transaction
        with self.writer.begin() as conn:
            now_row = conn.execute(
                select(member_pins.c.pin_hash)
                .where(member_pins.c.member_id == member_id)
                .with_for_update()
            ).first()
            # Written only over what was checked: a reset, another change or another first
            # PIN meanwhile wins, and this one is refused, not laid over it.
            if (now_row is None) != (had is None) or (
                now_row is not None and had is not None and now_row[0] != had.pin_hash
            ):
                raise pins.PinRefused("the PIN changed meanwhile: try again", "pin_changed")
            conn.execute(member_pins.delete().where(member_pins.c.member_id == member_id))
            conn.execute(
                member_pins.insert().values(
                    member_id=member_id,
                    pin_hash=digest,
                    failures=0,
                    locked_until=None,
                    set_at=utcnow(),
                )
            )
        return had is not None

    def reset_member_pin(self, member_id: str) -> bool:
        """Forget the member's PIN (staff at the store server, the member present and
        forgotten it): they choose a new one at a terminal. True if there was one."""
        with self.writer.begin() as conn:
            gone = conn.execute(member_pins.delete().where(member_pins.c.member_id == member_id))
        return bool(gone.rowcount)

    def _pin_row(self, member_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(member_pins).where(member_pins.c.member_id == member_id)
            ).first()

    def check_member_pin(
        self, member_id: str, pin: str, now: datetime | None = None
    ) -> pins.PinCheck:
        """A PIN given for the member: ok (failures forgotten), or wrong (one failure more;
        the fifth in a row locks it for a while), or locked (refused unchecked). The slow
        hash runs outside any transaction; the count is then taken under the member's
        row lock, so two tills trying at once count two failures."""
        moment = now or utcnow()
        row = self._pin_row(member_id)
        if row is None:
            return pins.PinCheck(False, no_pin=True)
        where = member_pins.c.member_id == member_id
        return check_pin_row(self.writer, member_pins, where, row, pin, moment)

    # ------------------------------------------------------------ staff awards

    def award(
        self,
        award: StaffAward,
        terminal_id: str,
        merchant: str = "",
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A staff member's award of points to a member, checked here: the programme awards
        this much, the reason is text, the staff member's PIN is right, an approver's PIN
        (when given) is another staff member's and right, and the member's awards of the
        store day without approval stay within the programme's `approval_over` (splitting a
        large award into small ones needs the approval all the same). Applied once by its
        key (the same award repeated answers duplicate) and kept in the audit trail. Raises
        OpRejected: no_staff_awards, bad_request, award_over_limit, staff_refused,
        approval_required, approver_refused, unknown_member, limit_member_day, limit_points;
        OpConflict: the key was used for another operation or award."""
        policy = self.program.staff_awards
        if policy is None:
            raise OpRejected("no_staff_awards", "the programme has no staff awards")
        pins_given = [award.staff_pin, *(award.approver[1:] if award.approver else ())]
        problem = (
            ("points: a whole number from 1" if award.points < 1 else None)
            or staff_awards_module.reason_problem(award.reason)
            or staff_awards_module.staff_id_problem(award.staff_id)
            or (award.approver and staff_awards_module.staff_id_problem(award.approver[0]))
            or next(
                ("a PIN is 4 to 8 digits" for pin in pins_given if not pins.is_pin_form(pin)), None
            )
        )
        if problem:
            raise OpRejected("bad_request", problem)
        if award.points > policy.max_points:
            raise OpRejected(
                "award_over_limit", f"an award gives at most {policy.max_points} points"
            )
        moment = now or utcnow()
        check = staff_awards_module.check_staff_pin(
            self.writer, award.staff_id, award.staff_pin, moment
        )
        if not check.ok:
            raise OpRejected("staff_refused", describe_pin_refusal(check, "staff member"))
        approver_id = None
        if award.approver is not None:
            if award.approver[0] == award.staff_id:
                raise OpRejected("approver_refused", "another staff member approves, not the giver")
            second = staff_awards_module.check_staff_pin(
                self.writer, award.approver[0], award.approver[1], moment
            )
            if not second.ok:
                raise OpRejected("approver_refused", describe_pin_refusal(second, "approver"))
            approver_id = award.approver[0]
        self._check_points(award.points)
        with self.writer.begin() as conn:
            if self._locked_member(conn, award.member_id) is None:
                raise OpRejected("unknown_member", "no such member")
            previous = self._award_record(award.key, conn)
            if previous is not None:  # a repeat (a till that heard no answer) or a reuse
                same = (
                    previous.member_id,
                    previous.points,
                    previous.reason,
                    previous.staff_id,
                    previous.approver_id,
                    previous.terminal_id,
                ) == (
                    award.member_id,
                    award.points,
                    award.reason.strip(),
                    award.staff_id,
                    approver_id,
                    terminal_id,
                )
                if not same:
                    raise OpConflict(award.key)
                return {"status": "duplicate", **award.result(approver_id)}
            if conn.execute(select(operations.c.key).where(operations.c.key == award.key)).first():
                raise OpConflict(award.key)  # another operation's key
            if approver_id is None:
                unapproved = self._unapproved_awards_today(conn, award.member_id, moment)
                if unapproved + award.points > policy.approval_over:
                    raise OpRejected(
                        "approval_required",
                        f"over {policy.approval_over} points a day without approval:"
                        " another staff member's PIN approves",
                    )
            self._check_member_day(conn, award.member_id, award.points, moment)
            conn.info[BATCH_NOW] = moment  # recorded on the day its cap was checked for
            try:
                self._post(
                    conn,
                    award.key,
                    award.member_id,
                    "award",
                    award.points,
                    moment,
                    reward_id=award.staff_id,
                    merchant=merchant,
                )
            finally:
                conn.info.pop(BATCH_NOW, None)
            balance = self._move_balance(conn, award.member_id, award.points)
            conn.execute(
                staff_awards.insert().values(
                    key=award.key,
                    member_id=award.member_id,
                    points=award.points,
                    reason=award.reason.strip(),
                    staff_id=award.staff_id,
                    approver_id=approver_id,
                    terminal_id=terminal_id,
                    awarded_at=moment,
                )
            )
        return {"status": "applied", **award.result(approver_id), "balance": balance}

    def adjust(
        self, key: str, member_id: str, points: int, now: datetime | None = None
    ) -> tuple[bool, int]:
        """A manager's correction of a member's balance by `points` (signed, not 0), posted
        as an 'adjust' transaction under `key` (the console form's own key, so a form sent
        twice adjusts once). Returns (applied now, the balance). Raises OpRejected:
        bad_request, limit_points, unknown_member, insufficient_points (below zero),
        key_reused (the key of another change)."""
        if points == 0 or not 1 <= len(key) <= 64:
            raise OpRejected("bad_request", "an adjustment moves at least one point")
        self._check_points(abs(points))
        moment = now or utcnow()
        with self.writer.begin() as conn:
            record = self._locked_member(conn, member_id)
            if record is None:
                raise OpRejected("unknown_member", "no such member")
            done = conn.execute(
                select(transactions.c.member_id, transactions.c.points, transactions.c.kind)
                .where(transactions.c.op_key == key)
                .limit(1)
            ).first()
            if done is not None:
                if tuple(done) != (member_id, points, "adjust"):  # the key, another change
                    raise OpRejected("key_reused", "this form was used for another change")
                return False, record.balance
            conn.info[BATCH_NOW] = moment
            try:
                self._post(conn, key, member_id, "adjust", points, moment)
            finally:
                conn.info.pop(BATCH_NOW, None)
            return True, self._move_balance(conn, member_id, points)

    def _unapproved_awards_today(self, conn: Connection, member_id: str, now: datetime) -> int:
        """Points awarded to the member on the store day of `now` without an approver."""
        _day, start = totals.day_and_start(now, self.zone)
        return int(
            conn.execute(
                select(func.coalesce(func.sum(staff_awards.c.points), 0)).where(
                    staff_awards.c.member_id == member_id,
                    staff_awards.c.approver_id.is_(None),
                    staff_awards.c.awarded_at >= start,
                )
            ).scalar_one()
        )

    def _award_record(
        self, key: str, conn: Connection | None = None
    ) -> staff_awards_module.AwardRecord | None:
        query = select(staff_awards).where(staff_awards.c.key == key)
        if conn is None:
            with self.engine.connect() as reader:
                row = reader.execute(query).first()
        else:
            row = conn.execute(query).first()
        return None if row is None else staff_awards_module.AwardRecord(**dict(row._mapping))

    def card_known(self, uid: bytes) -> bool:
        """A card with this UID is known here: linked (as a tag or a secure card), blocked,
        or its secure message accepted once. `card issue` refuses to personalise a "blank"
        card claiming such a UID (an emulator after that card's keys)."""
        value = card_counters.card_key(uid)
        with self.engine.connect() as conn:
            linked = conn.execute(
                select(identifiers.c.member_id).where(
                    identifiers.c.kind.in_((*CARD_KINDS, BLOCKED_CARD_UID)),
                    identifiers.c.value == value,
                )
            ).first()
        return linked is not None or card_counters.last_counter(self.engine, uid) is not None

    def secure_card_owner(self, uid: bytes) -> str | None:
        """The member a secure card is linked to: as a secure card (`card issue`), or, for
        a card linked before by its UID, as a tag."""
        value = card_counters.card_key(uid)
        return self.find_member_id(SECURE_CARD_UID, value) or self.find_member_id("card_uid", value)

    def link_secure_card(self, keys: SunKeys, url: str, member_id: str) -> bool:
        """Link the card that answered with `url` (a message checked and accepted like a
        tap: proof the card is here and genuine) to a member, as a secure card: its UID
        alone then finds no one (a copied UID is no card). True if linked now, False if it
        already was this member's. CardLinkRefused: no such member, or the card is another
        member's (both before the counter: a refusal spends no message); SunRefused as for
        a tap."""
        tap = keys.verify_url(url)
        self._refuse_blocked(tap.uid)
        if self.member(member_id) is None:
            raise CardLinkRefused("no member has this id", "unknown_member")
        owner = self.secure_card_owner(tap.uid)
        if owner is not None and owner != member_id:
            raise CardLinkRefused(
                "this card belongs to another member", "card_linked", uid=tap.uid.hex()
            )
        if not self.accept_card_counter(tap.uid, tap.counter):
            raise SunRefused(
                "replayed", "this card's message was already used: a copy or a replay", tap.uid
            )
        value = card_counters.card_key(tap.uid)
        try:
            with self.writer.begin() as conn:
                conn.execute(
                    identifiers.delete().where(  # its bare UID no longer finds the member
                        identifiers.c.kind == "card_uid",
                        identifiers.c.value == value,
                        identifiers.c.member_id == member_id,
                    )
                )
                conn.execute(
                    identifiers.insert().values(
                        kind=SECURE_CARD_UID, value=value, member_id=member_id
                    )
                )
        except IntegrityError:  # linked already (or at this moment, by another terminal)
            if self.find_member_id(SECURE_CARD_UID, value) != member_id:
                raise CardLinkRefused(
                    "this card belongs to another member", "card_linked", uid=tap.uid.hex()
                ) from None
            return False
        return True

    def today(self, now: datetime | None = None) -> date:
        """The store's calendar day now (or at `now`)."""
        return totals.local_day(now or utcnow(), self.zone)

    @staticmethod
    def _now(conn: Connection) -> datetime:
        """The time of this write: the batch's (BATCH_NOW), or the clock's outside one."""
        now: datetime | None = conn.info.get(BATCH_NOW)
        return now if now is not None else utcnow()

    # ------------------------------------------------------------ lookups

    def find_member_id(self, kind: str, value: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(identifiers.c.member_id).where(
                    identifiers.c.kind == kind, identifiers.c.value == value
                )
            ).first()
        return row[0] if row else None

    def member(
        self, member_id: str, conn: Connection | None = None, lock: bool = False
    ) -> MemberRecord | None:
        """The member's record; `lock` (inside a writing transaction) holds the member's row
        until it ends, so per-member rules decide one operation at a time (PostgreSQL; a
        SQLite writer holds the whole database already)."""
        query = select(*MEMBER_RECORD_COLUMNS).where(members.c.id == member_id)
        if lock:
            query = query.with_for_update()
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).first()
        else:
            row = conn.execute(query).first()
        return MemberRecord(*row) if row else None

    def stats(
        self,
        conn: Connection,
        member_id: str,
        today: date,
        enrolled_at: datetime | None = None,
    ) -> MemberStats:
        """Tier statistics for the period holding the store day `today`, from the member's
        totals (a handful of rows, whatever the history); with the period before when status
        holds to the end of the next period, and the months of membership when a tier needs
        them (`enrolled_at`)."""
        policy = self.program.tiers
        start = rules.period_start(policy.period, today)
        sums = self._sums(conn, member_id, start)
        previous = None
        if policy.downgrade is rules.Downgrade.PERIOD_END:
            before = rules.previous_period_start(policy.period, today)
            older = self._sums(conn, member_id, before)  # from the previous period on
            previous = self._member_stats(tuple(a - b for a, b in zip(older, sums, strict=True)))
        tenure = 0
        if self.program.needs_tenure and enrolled_at is not None:
            tenure = self._tenure(conn, member_id, enrolled_at, today)
        stats = self._member_stats(sums, tenure, previous)
        if policy.keeps_tiers:
            stats = replace(stats, tiers_kept=self._tiers_kept(conn, member_id, today))
        if self.program.every_nth is None:
            return stats
        lifetime = sums if start is None else self._sums(conn, member_id, None)
        return replace(
            stats, lifetime_units=Decimal(lifetime[3]) / 1000, lifetime_visits=lifetime[2]
        )

    def _tiers_kept(
        self, conn: Connection, member_id: str, today: date
    ) -> tuple[tuple[str, date], ...]:
        """The tiers the member reached and still keeps on `today`: all of them (never), or
        those reached within the last `grace_months` (grace)."""
        policy = self.program.tiers
        rows = conn.execute(
            select(member_tiers.c.tier_id, member_tiers.c.reached_on).where(
                member_tiers.c.member_id == member_id
            )
        ).all()
        kept = []
        for tier_id, reached_on in rows:
            past_grace = rules.whole_months(reached_on, today) >= policy.grace_months
            if policy.downgrade is rules.Downgrade.GRACE and past_grace:
                continue
            kept.append((str(tier_id), reached_on))
        return tuple(sorted(kept))

    def _record_tier_reached(
        self, conn: Connection, member_id: str, after: MemberStats, today: date
    ) -> None:
        """Record the tier the member's statistics reach with this sale, on `today` (a
        programme keeping tiers); written only when it moves the day on."""
        policy = self.program.tiers
        index = rules.qualified_index(policy, after)
        if index == 0:  # the first tier is everyone's
            return
        tier_id = policy.tiers[index].id
        known = dict(after.tiers_kept)
        if known.get(tier_id) == today:
            return
        found = conn.execute(
            select(member_tiers.c.reached_on).where(
                member_tiers.c.member_id == member_id, member_tiers.c.tier_id == tier_id
            )
        ).scalar()
        if found is None:
            conn.execute(
                member_tiers.insert().values(member_id=member_id, tier_id=tier_id, reached_on=today)
            )
        elif found < today:
            conn.execute(
                member_tiers.update()
                .where(member_tiers.c.member_id == member_id, member_tiers.c.tier_id == tier_id)
                .values(reached_on=today)
            )

    def _sums(self, conn: Connection, member_id: str, start: date | None) -> totals.Sums:
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is None:
            return totals.read(conn, member_id, start)
        # the database's (read once per batch) and what the batch staged
        read = pending.stats_read.get((member_id, start))
        if read is None:
            read = pending.stats_read[(member_id, start)] = totals.read(conn, member_id, start)
        staged = pending.staged_totals(member_id, start)
        return (
            read[0] + staged[0],
            read[1] + staged[1],
            read[2] + staged[2],
            read[3] + staged[3],
            read[4] + staged[4],
        )

    def _member_stats(
        self, sums: Any, tenure: int = 0, previous: MemberStats | None = None
    ) -> MemberStats:
        earned, spend, visits, units_milli, segments = sums
        return MemberStats(
            points_in_period=earned,
            spend_in_period=from_minor(spend, self.program.currency),
            visits_in_period=visits,
            units_in_period=Decimal(units_milli) / 1000,
            segments_in_period=segments,
            tenure_months=tenure,
            previous_period=previous,
        )

    def _tenure(self, conn: Connection, member_id: str, enrolled_at: datetime, today: date) -> int:
        """Months of membership as the programme counts them: whole months since the store
        day of enrollment, or calendar months with a sale (the member's month rows)."""
        if self.program.tiers.tenure is rules.TenureCount.MONTHS:
            return rules.whole_months(totals.local_day(enrolled_at, self.zone), today)
        months = set(totals.active_months(conn, member_id, today))
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            months.update(pending.active_months(member_id))
        return len(months)

    def stats_from_transactions(self, conn: Connection, member_id: str, today: date) -> MemberStats:
        """The same statistics summed over the transactions themselves (checks, doctor)."""
        start = rules.period_start(self.program.tiers.period, today)
        where = [transactions.c.member_id == member_id]
        if start is not None:
            where.append(transactions.c.occurred_at >= totals.day_start(start, self.zone))
        is_earn = transactions.c.kind == "earn"
        earned, spend, visits, units_milli, segments = conn.execute(
            select(
                func.coalesce(
                    func.sum(
                        case(
                            (transactions.c.kind.in_(EARNING_KINDS), transactions.c.points), else_=0
                        )
                    ),
                    0,
                ),
                func.coalesce(func.sum(case((is_earn, transactions.c.amount_minor), else_=0)), 0),
                func.coalesce(func.sum(case((is_earn, 1), else_=0)), 0),
                func.coalesce(func.sum(case((is_earn, transactions.c.units_milli), else_=0)), 0),
                func.coalesce(func.sum(case((is_earn, transactions.c.segments), else_=0)), 0),
            ).where(*where)
        ).one()
        return self._member_stats(
            (int(earned), int(spend), int(visits), int(units_milli), int(segments))
        )

    def birthday_used(self, conn: Connection, member_id: str, year: int) -> bool:
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            if pending.granted(member_id, year):
                return True
            known = pending.birthday_read.get((member_id, year))
            if known is None:
                known = pending.birthday_read[(member_id, year)] = self._birthday_row(
                    conn, member_id, year
                )
            return known
        return self._birthday_row(conn, member_id, year)

    def _birthday_row(self, conn: Connection, member_id: str, year: int) -> bool:
        row = conn.execute(
            select(func.count()).where(
                birthday_grants.c.member_id == member_id, birthday_grants.c.year == year
            )
        ).scalar_one()
        return int(row) > 0

    def birthday_available(self, conn: Connection, record: MemberRecord, today: date) -> bool:
        year = rules.birthday_year(record.birthday, today, self.program.birthday.window_days)
        if year is None:
            return False  # most days: no query at all
        return not self.birthday_used(conn, record.id, year)

    def _grant_birthday(
        self, conn: Connection, record: MemberRecord, op_key: str, today: date
    ) -> None:
        """Record this birthday year's reward as given; the primary key refuses a second."""
        year = rules.birthday_year(record.birthday, today, self.program.birthday.window_days)
        if year is None:  # planned inside the window, so this cannot be: refuse, never grant
            raise OpRejected("birthday_used", "no birthday reward is due on this date")
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:  # decided here; the primary key still guards the flush
            if self.birthday_used(conn, record.id, year):
                raise OpRejected(
                    "birthday_used", f"the birthday reward for {year} was already given"
                )
            pending.stage_grant(
                {
                    "member_id": record.id,
                    "year": year,
                    "op_key": op_key,
                    "granted_at": self._now(conn),
                }
            )
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    birthday_grants.insert().values(
                        member_id=record.id, year=year, op_key=op_key, granted_at=self._now(conn)
                    )
                )
        except IntegrityError:
            raise OpRejected(
                "birthday_used", f"the birthday reward for {year} was already given"
            ) from None

    def member_view(self, member_id: str, today: date | None = None) -> MemberView | None:
        today = today or self.today()
        with self.engine.connect() as conn:
            record = self.member(member_id, conn)
            if record is None:
                return None
            stats = self.stats(conn, member_id, today, record.enrolled_at)
            birthday = self.birthday_available(conn, record, today)
            expiring = self.points_expiring(conn, member_id, today + EXPIRING_SOON)
            first = self._first_expiry(conn, member_id, today) if expiring else None
            gate = self._gate_view(conn, member_id)
            used = self._offer_uses(conn, member_id) if self.program.offers else {}
            invited = (
                self._invitations_given(conn, member_id)
                if self.program.membership.invitation
                else None
            )
        view = build_member_view(self.program, record, stats, birthday, expiring)
        if self.program.offers:
            tier = rules.tier_for(self.program.tiers, stats)
            view = replace(view, offers=rules.offers_left(self.program, tier, stats, today, used))
        if invited is not None:
            most = self.program.membership.invitations_per_member
            view = replace(view, invitations_left=max(most - invited, 0))
        if first and view.points_expiring:
            view = replace(view, expiring_on=first)
        return replace(view, points_held=gate[0], gate_remaining=gate[1]) if gate else view

    def _gate_view(self, conn: Connection, member_id: str) -> tuple[int, Decimal] | None:
        """(points held, spend still needed) while the member's gate is closed."""
        spent = self._gate_before(conn, member_id)
        gate = self.program.membership.min_spend
        if spent is None or gate is None:
            return None
        remaining = gate - from_minor(spent, self.program.currency)
        return self._held_points(conn, member_id), remaining

    def _first_expiry(self, conn: Connection, member_id: str, today: date) -> date:
        """The first store day within the window on which some of the member's points
        expire: points due by a day only grow with the day, so a binary search (5 reads)."""
        low, high = today, today + EXPIRING_SOON
        while low < high:
            middle = low + (high - low) // 2
            if self.points_expiring(conn, member_id, middle) > 0:
                high = middle
            else:
                low = middle + timedelta(days=1)
        return low

    # ------------------------------------------------------------ applying operations

    def apply(self, body: dict[str, Any], founder: bool = False) -> dict[str, Any]:
        """Apply one operation body exactly once; returns its result (status applied or
        duplicate). Raises OpRejected (permanent) or OpConflict."""
        outcome = self.apply_many([body], founder=founder)[0]
        if isinstance(outcome, OpRejected):
            raise outcome
        return outcome

    def apply_many(
        self,
        bodies: list[dict[str, Any]],
        allowed_kinds: Collection[str] | None = None,
        terminal_id: str | None = None,
        all_or_nothing: bool = False,
        earnings_today: dict[str, int] | None = None,
        merchant: str | None = None,
        founder: bool = False,
    ) -> list[dict[str, Any] | OpRejected]:
        """Apply a batch in one database transaction (one commit, one fsync): one refused
        operation never undoes or blocks the others. Operations are applied without a
        savepoint each (two round trips fewer per operation): one refused before it wrote
        anything leaves nothing to undo; if one fails after writing (or the database refuses
        a statement), the batch is applied again from the start with a savepoint each.
        `allowed_kinds` limits the operation types this caller may send (a terminal may not
        send partner transfers in). `terminal_id`, when the caller is authenticated, is the
        terminal recorded for each operation (never the body's), and a key another terminal
        applied is refused. Returns, per body, its result or the OpRejected/OpConflict it met.
        `all_or_nothing` (an import): if any operation is refused, nothing is committed (the
        others' results then say what they would have done).
        `earnings_today`, when given, receives the earnings recorded today (the store's day)
        after the batch of the members it earned for, where the batch read them anyway (the
        daily cap's read-ahead); a member missing from it was not read.
        `merchant`: the coalition merchant of the caller's till (the server's record of the
        terminal); None: this ledger's own (in-process).
        `founder`: the operator's own enrollments (a members import, the demo's seed), which
        a programme joined by invitation takes without one; never a till's.
        """
        till = self.merchant if merchant is None else merchant
        prepared: list[tuple[Operation, Claim] | OpRejected] = []
        for body in bodies:
            try:
                op = parse_operation(body)
                if allowed_kinds is not None and op.kind not in allowed_kinds:
                    raise OpRejected("not_allowed", f"a terminal may not send {op.kind} operations")
                claim = Claim(body_hash(body), terminal_id, till, founder and terminal_id is None)
                if self.check is not None:
                    op = self.check(op, body)
            except OpRejected as exc:
                prepared.append(exc)
                continue
            prepared.append((op, claim))
        if not self._passes_in_two(prepared, all_or_nothing):
            return self._apply_retrying(prepared, all_or_nothing, earnings_today)
        # Two transactions on PostgreSQL: the first applies the operations of the members no
        # other batch holds now (it never waits on a member lock, so it is short and holds no
        # one up); the second, the rest, waiting for their members in id order. Concurrent
        # batches over the same members otherwise queue behind one another in convoys, each
        # holding its earlier members while it waits for a later one.
        outcomes = self._apply_retrying(
            prepared, all_or_nothing, earnings_today, free_members_only=True
        )
        deferred = [index for index, outcome in enumerate(outcomes) if outcome is DEFERRED]
        if deferred:
            later = self._apply_retrying(
                [prepared[i] for i in deferred], all_or_nothing, earnings_today
            )
            for index, outcome in zip(deferred, later, strict=True):
                outcomes[index] = outcome
        return outcomes

    def _passes_in_two(
        self, prepared: list[tuple[Operation, Claim] | OpRejected], all_or_nothing: bool
    ) -> bool:
        """Whether a batch is applied in two passes (see apply_many): on PostgreSQL, for a
        batch of several members, not all or nothing, whose keys are each sent once (so
        that of two operations with one key the first in the batch is the one applied)."""
        if all_or_nothing or self.writer.dialect.name != "postgresql":
            return False
        ops = [item[0] for item in prepared if not isinstance(item, OpRejected)]
        return len({op.member_id for op in ops}) > 1 and len({op.key for op in ops}) == len(ops)

    def _apply_retrying(
        self,
        prepared: list[tuple[Operation, Claim] | OpRejected],
        all_or_nothing: bool,
        earnings_today: dict[str, int] | None = None,
        free_members_only: bool = False,
    ) -> list[dict[str, Any] | OpRejected]:
        """Apply prepared operations in one transaction, again with a savepoint each if one
        fails after writing, and again whole after a deadlock or serialisation failure."""
        # Every member an operation reads and then writes, locked in one global order (by
        # id) before any is applied: two batches never wait for each other in a cycle.
        member_ids = sorted(
            {
                member_id
                for item in prepared
                if not isinstance(item, OpRejected)
                for member_id in _members_locked_by(item[0])
            }
        )
        attempt = 0
        savepoints = False
        while True:
            try:
                return self._apply_prepared(
                    prepared,
                    member_ids,
                    savepoints,
                    all_or_nothing,
                    earnings_today,
                    free_members_only,
                )
            except _RolledBack as rolled_back:  # nothing committed; the outcomes say why
                return rolled_back.outcomes
            except (_NeedSavepoints, FlushRefused):
                savepoints = True
            except DBAPIError as exc:
                if not savepoints and isinstance(exc, (IntegrityError, DataError)):
                    savepoints = True  # one operation's statement refused: isolate it
                    continue
                # A deadlock or serialisation failure the order above did not prevent (a
                # unique index two batches both insert into): nothing was committed, so the
                # whole transaction is tried again, after a short jittered pause.
                state = sqlstate(exc)
                if state not in RETRYABLE_SQLSTATES or attempt >= self.max_retries:
                    raise
                attempt += 1
                self.retries += 1
                log.warning(
                    "batch transaction retried (attempt %d) after sqlstate %s", attempt, state
                )
                sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))

    def _lock_members(
        self, conn: Connection, member_ids: list[str], free_only: bool = False
    ) -> dict[str, MemberRecord]:
        """Take the members' row locks in id order (PostgreSQL; SQLite's BEGIN IMMEDIATE
        holds the whole database already) and read their records, one statement per 1,000.
        Members not there yet (enrolled in this batch) are guarded by their primary key.
        `free_only`: only the members no other transaction holds, without waiting."""
        locked: dict[str, MemberRecord] = {}
        statement = (_LOCK_FREE_MEMBERS if free_only else _LOCK_MEMBERS)[conn.dialect.name]
        for start in range(0, len(member_ids), 1000):
            rows = conn.execute(statement, {"ids": member_ids[start : start + 1000]})
            locked.update((row[0], MemberRecord(*row)) for row in rows)
        return locked

    def _known_keys(self, conn: Connection, keys: list[str]) -> dict[str, Any]:
        """The idempotency records already there for these keys, one statement per 1,000."""
        known: dict[str, Any] = {}
        statement = _KNOWN_KEYS[conn.dialect.name]
        for start in range(0, len(keys), 1000):
            rows = conn.execute(statement, {"keys": keys[start : start + 1000]})
            known.update((row.key, row) for row in rows)
        return known

    def _apply_prepared(
        self,
        prepared: list[tuple[Operation, Claim] | OpRejected],
        member_ids: list[str],
        savepoints: bool,
        all_or_nothing: bool = False,
        earnings_today: dict[str, int] | None = None,
        free_members_only: bool = False,
    ) -> list[dict[str, Any] | OpRejected]:
        earned: dict[str, int] = {}
        with self.writer.begin() as conn:
            # The batch's members, read once under their locks: each operation's rules use
            # (and its balance move updates) this copy; an operation that fails drops its
            # member's copy, as its savepoint rolls back what it wrote.
            cache = self._lock_members(conn, member_ids, free_members_only)
            conn.info[MEMBER_CACHE] = cache
            conn.info[BATCH_NOW] = now = utcnow()
            if free_members_only:  # the others' operations wait for the second pass
                prepared = [
                    DEFERRED
                    if not isinstance(item, OpRejected) and item[0].member_id not in cache
                    else item
                    for item in prepared
                ]
            # Without savepoints, the batch's writes are staged in memory and flushed once
            # at the end (set-based: a few statements per batch, not several per operation).
            pending = None if savepoints else BatchWrites()
            if pending is not None:
                conn.info[PENDING] = pending
            try:
                known = self._known_keys(
                    conn, [item[0].key for item in prepared if not isinstance(item, OpRejected)]
                )
                if pending is not None:
                    self._read_ahead(conn, pending, prepared, cache, known)
                outcomes = self._apply_each(conn, prepared, known, cache, savepoints)
                if all_or_nothing and any(isinstance(o, OpRejected) for o in outcomes):
                    raise _RolledBack(outcomes)
                if pending is not None:
                    self._flush(conn, pending)
                    earned = pending.earnings_on(self.today(now))
            finally:
                conn.info.pop(MEMBER_CACHE, None)
                conn.info.pop(PENDING, None)
                conn.info.pop(BATCH_NOW, None)
        if earnings_today is not None:  # committed: told only now
            earnings_today.update(earned)
        return outcomes

    def _apply_each(
        self,
        conn: Connection,
        prepared: list[tuple[Operation, Claim] | OpRejected],
        known: dict[str, Any],
        cache: dict[str, MemberRecord],
        savepoints: bool,
    ) -> list[dict[str, Any] | OpRejected]:
        """Each operation's outcome, in order (see `_apply_prepared`)."""
        outcomes: list[dict[str, Any] | OpRejected] = []
        tried: set[str] = set()  # keys met earlier in this batch
        for item in prepared:
            if isinstance(item, OpRejected):
                outcomes.append(item)
                continue
            op, claim = item
            try:
                if op.key in known:
                    outcomes.append(self._previous_from(known[op.key], op.key, claim))
                    continue
                if op.key in tried:  # the same key twice in one batch
                    previous = self._previous_result(conn, op.key, claim)
                    if previous is not None:
                        outcomes.append(previous)
                        continue
                tried.add(op.key)
                if not savepoints:
                    outcomes.append(self._apply_unguarded(conn, op, claim, cache))
                    continue
                with conn.begin_nested():
                    outcomes.append(self._apply_new(conn, op, claim))
            except OpRejected as exc:
                if savepoints:  # its savepoint rolled back what it wrote
                    cache.pop(op.member_id, None)
                outcomes.append(exc)
            except (ValueError, ArithmeticError, DataError) as exc:
                # A value the database or the arithmetic cannot hold: this operation
                # alone is refused (its savepoint rolled back), never the whole batch.
                if not savepoints:
                    raise  # no savepoint to roll back to: again, with savepoints
                cache.pop(op.member_id, None)
                log.warning("operation refused: %s", type(exc).__name__)
                outcomes.append(OpRejected("bad_request", "a value is out of range"))
            except IntegrityError:
                # Another writer (or this batch) claimed the key, or an identifier,
                # first.
                if not savepoints:
                    raise
                cache.pop(op.member_id, None)
                try:
                    previous = self._previous_result(conn, op.key, claim)
                except OpRejected as exc:
                    outcomes.append(exc)
                    continue
                outcomes.append(
                    previous
                    if previous is not None
                    else OpRejected(
                        "identifier_taken",
                        "this phone or card already belongs to a member",
                    )
                )
            except BaseException:
                cache.pop(op.member_id, None)
                raise
        return outcomes

    def _read_ahead(
        self,
        conn: Connection,
        pending: BatchWrites,
        prepared: list[tuple[Operation, Claim] | OpRejected],
        cache: dict[str, MemberRecord],
        known: dict[str, Any],
    ) -> None:
        """Read once for the whole batch what its operations' rules read per member: the
        tier totals of each sale's period and the points of today (daily cap)."""
        fresh = [
            item[0]
            for item in prepared
            if not isinstance(item, OpRejected)
            and item[0].key not in known
            and item[0].member_id in cache
        ]
        by_start: dict[date | None, set[str]] = {}
        for op in fresh:
            if isinstance(op, SaleOp):
                day = totals.local_day(op.occurred_at, self.zone)
                start = rules.period_start(self.program.tiers.period, day)
                by_start.setdefault(start, set()).add(op.member_id)
        for start, ids in by_start.items():
            found = totals.read_many(conn, sorted(ids), start)
            for member_id in ids:
                pending.stats_read[(member_id, start)] = found.get(member_id, totals.NO_SUMS)
        if self.limits.max_points_per_member_per_day is None:
            return
        earning = sorted({op.member_id for op in fresh if not isinstance(op, (EnrollOp, GiveOp))})
        if not earning:
            return
        today = self.today(self._now(conn))
        credited = totals.read_recorded(conn, earning, today)
        for member_id in earning:
            points, earnings = credited.get(member_id, (0, 0))
            pending.day_read[(member_id, today)] = points
            pending.earnings_read[(member_id, today)] = earnings

    def _flush(self, conn: Connection, pending: BatchWrites) -> None:
        """Write what the batch staged. A row the database refuses (a key another writer
        took meanwhile, a value out of range) sends the batch back to be applied with a
        savepoint per operation; a deadlock or serialisation failure is retried as is."""
        try:
            pending.flush(conn)
        except DBAPIError as exc:
            if sqlstate(exc) in RETRYABLE_SQLSTATES:
                raise
            log.warning("batch flush refused (%s): applied again per operation", type(exc).__name__)
            raise FlushRefused from exc
        except (StatementError, ValueError, ArithmeticError) as exc:
            log.warning("batch flush refused (%s): applied again per operation", type(exc).__name__)
            raise FlushRefused from exc

    def _apply_unguarded(
        self, conn: Connection, op: Operation, claim: Claim, cache: dict[str, MemberRecord]
    ) -> dict[str, Any] | OpRejected:
        """Apply one operation with no savepoint: a refusal before it wrote anything is its
        outcome; after a write (or any database error) the batch needs savepoints."""
        before = conn.info.get(WRITES, 0)
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            pending.begin_op()
        try:
            result = self._apply_new(conn, op, claim)
        except (OpRejected, ValueError, ArithmeticError) as exc:
            if conn.info.get(WRITES, 0) != before:
                raise _NeedSavepoints from None
            if pending is not None:  # what it staged is dropped: nothing to undo
                pending.abort_op()
            else:
                cache.pop(op.member_id, None)
            if isinstance(exc, OpRejected):
                return exc
            log.warning("operation refused: %s", type(exc).__name__)
            return OpRejected("bad_request", "a value is out of range")
        except BaseException:
            if pending is not None:
                pending.abort_op()
            raise
        if pending is not None:
            for member_id, balance in pending.commit_op().items():
                if member_id in cache:
                    cache[member_id] = cache[member_id].with_balance(balance)
        return result

    def _previous_result(self, conn: Connection, key: str, claim: Claim) -> dict[str, Any] | None:
        pending: BatchWrites | None = conn.info.get(PENDING)
        staged = pending.claim(key) if pending is not None else None
        if staged is not None:
            return self._previous_from(staged, key, claim)
        row = conn.execute(
            select(operations.c.body_hash, operations.c.result, operations.c.terminal_id).where(
                operations.c.key == key
            )
        ).first()
        if row is None:
            return None
        return self._previous_from(row, key, claim)

    def _previous_from(self, row: Any, key: str, claim: Claim) -> dict[str, Any]:
        if claim.terminal_id is not None and row.terminal_id != claim.terminal_id:
            # Another terminal's key: refuse without saying what it did, or if bodies match.
            raise OpKeyTaken(key)
        if row.body_hash != claim.digest:
            raise OpConflict(key)
        result: dict[str, Any] = json.loads(row.result)
        result["status"] = "duplicate"
        return result

    def _claim(self, conn: Connection, op: Operation, claim: Claim, result: dict[str, Any]) -> None:
        terminal_id = claim.terminal_id
        if terminal_id is None:  # in-process: the terminal is the one that wrote the body
            terminal_id = getattr(op, "terminal_id", "")
        row = {
            "key": op.key,
            "kind": op.kind,
            "body_hash": claim.digest,
            "result": canonical_json(result),
            "terminal_id": terminal_id,
            "applied_at": self._now(conn),
        }
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            pending.stage_claim(row)
        else:
            conn.execute(operations.insert(), row)

    def _apply_new(self, conn: Connection, op: Operation, claim: Claim) -> dict[str, Any]:
        appliers = {
            SaleOp: self._apply_sale,
            EnrollOp: self._apply_enroll,
            ActionOp: self._apply_action,
            GiveOp: self._apply_give,
            ReceiveOp: self._apply_receive,
        }
        self._check_time(conn, op)
        result: dict[str, Any] = appliers[type(op)](conn, op, claim)  # type: ignore[operator]
        return result

    def _check_time(self, conn: Connection, op: Operation) -> None:
        """The time bounds (Limits.clock_skew, offline_window): a terminal reports what
        happened at its counter lately, never in the future or before the member joined."""
        skew, window = self.limits.clock_skew, self.limits.offline_window
        if skew is None and window is None:
            return
        now = self._now(conn)
        times = [("occurred_at", op.occurred_at)]
        if isinstance(op, EnrollOp):
            times.append(("consent.given_at", op.consent.given_at))
        for field, moment in times:
            if skew is not None and moment > now + skew:
                raise OpRejected(
                    "time_future",
                    f"{field} is later than the server's time plus the allowed clock skew "
                    f"({int(skew.total_seconds())} s)",
                )
            if window is not None and moment < now - window:
                raise OpRejected(
                    "time_too_old",
                    f"{field} is older than the offline window ({window.days} days)",
                )
        if isinstance(op, EnrollOp):
            return
        record = self._locked_member(conn, op.member_id)  # read (and locked) once per batch
        enrolled = record.enrolled_at if record is not None else None
        if enrolled is not None and op.occurred_at < enrolled - (skew or timedelta()):
            raise OpRejected("time_before_enrollment", "occurred_at is before the member enrolled")

    def _locked_member(self, conn: Connection, member_id: str) -> MemberRecord | None:
        """The member's record under its row lock: the batch's copy when there is one."""
        cache: dict[str, MemberRecord] | None = conn.info.get(MEMBER_CACHE)
        if cache is not None and member_id in cache:
            return cache[member_id]
        record = self.member(member_id, conn, lock=True)
        if cache is not None and record is not None:
            cache[member_id] = record
        return record

    def _require_member(self, conn: Connection, member_id: str) -> MemberRecord:
        record = self._locked_member(conn, member_id)
        if record is None:
            raise OpRejected("unknown_member", f"no member {member_id}")
        return record

    def _post(
        self,
        conn: Connection,
        op_key: str | None,
        member_id: str,
        kind: str,
        points: int,
        occurred_at: datetime,
        amount_minor: int = 0,
        reward_id: str | None = None,
        units_milli: int = 0,
        segments: int = 0,
        merchant: str = "",
    ) -> None:
        recorded_at = self._now(conn)
        row = {
            "member_id": member_id,
            "op_key": op_key,
            "kind": kind,
            "points": points,
            "amount_minor": amount_minor,
            "reward_id": reward_id,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
            "units_milli": units_milli,
            "segments": segments,
            "merchant": merchant,
        }
        added = totals.counts(kind, points, amount_minor, units_milli, segments)
        sums = (
            []
            if added is None
            else totals.rows_for(member_id, totals.local_day(occurred_at, self.zone), added)
        )
        recorded = totals.recorded_counts(kind, points)
        if recorded is not None:
            day = totals.local_day(recorded_at, self.zone)
            sums.append(totals.recorded_row(member_id, day, recorded))
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            pending.stage_transaction(row, sums)
            return
        conn.execute(transactions.insert(), row)
        if sums:
            totals.bump(conn, sums)

    def _move_balance(self, conn: Connection, member_id: str, delta: int, spend: int = 0) -> int:
        """Add `delta` to the balance, if it holds `spend` first; returns the new balance."""
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:  # decided on the locked member's balance as the batch moved it
            record = self._require_member(conn, member_id)
            staged = pending.staged_balance(member_id)
            current = record.balance if staged is None else staged
            if current < spend or current + delta < 0:
                raise OpRejected("insufficient_points", "the balance cannot go below zero")
            pending.stage_balance(member_id, delta, current + delta)
            return current + delta
        row = conn.execute(
            members.update()
            .where(
                members.c.id == member_id,
                members.c.balance >= spend,
                members.c.balance + delta >= 0,
            )
            .values(balance=members.c.balance + delta)
            .returning(members.c.balance)
        ).first()
        if row is None:
            raise OpRejected("insufficient_points", "the balance cannot go below zero")
        balance = int(row[0])
        cache: dict[str, MemberRecord] | None = conn.info.get(MEMBER_CACHE)
        if cache is not None and member_id in cache:
            cache[member_id] = cache[member_id].with_balance(balance)
        return balance

    def _plan_redemption(
        self,
        conn: Connection,
        op: SaleOp,
        record: MemberRecord,
        tier: rules.Tier,
        birthday: bool,
    ) -> RedemptionPlan | None:
        request = op.redemption
        if request is None:
            return None
        try:
            if request.blocks is not None:
                return rules.plan_money_blocks(
                    self.program, request.blocks, record.balance, op.purchase.total
                )
            if request.reward_id is not None:
                return rules.plan_reward(
                    self.program,
                    request.reward_id,
                    record.balance,
                    tier,
                    option=request.option,
                    birthday_available=birthday,
                )
        except RulesError as exc:
            raise OpRejected("redemption_refused", str(exc)) from None
        raise OpRejected("bad_request", "redemption names neither a reward nor blocks")

    def _program_at(self, merchant: str) -> Program:
        """The programme as `merchant`'s tills earn under it (its rates over the base)."""
        found = self._merchant_programs.get(merchant)
        if found is None:
            found = rules.program_at_merchant(self.program, merchant)
            if len(self._merchant_programs) < 1000:  # merchants are few; bound it anyway
                self._merchant_programs[merchant] = found
        return found

    def _apply_sale(self, conn: Connection, op: SaleOp, claim: Claim) -> dict[str, Any]:
        limits = self.limits
        if (
            limits.max_lines_per_sale is not None
            and len(op.purchase.lines) > limits.max_lines_per_sale
        ):
            raise OpRejected("limit_lines", f"a sale has at most {limits.max_lines_per_sale} lines")
        if limits.max_sale_amount is not None and op.purchase.total > limits.max_sale_amount:
            raise OpRejected("limit_amount", f"a sale totals at most {limits.max_sale_amount}")
        record = self._require_member(conn, op.member_id)
        today = totals.local_day(op.occurred_at, self.zone)
        stats = self.stats(conn, op.member_id, today, record.enrolled_at)
        tier = rules.tier_for(self.program.tiers, stats)
        birthday = self.birthday_available(conn, record, today)
        plan = self._plan_redemption(conn, op, record, tier, birthday)
        birthday_bonus_due = bool(self.program.birthday.points) and birthday
        spent = plan.discount if plan else Decimal(0)
        # Counted on the member's lifetime totals, read under the member's lock by `stats`.
        at_till = self._program_at(claim.merchant)
        free = rules.free_for_member(at_till, op.purchase, stats, spent)
        if free.value and spent + free.value > op.purchase.total:
            raise OpRejected(
                "not_combinable",
                "redemption: the points spent as money are more than what is left to pay"
                " after the free one",
            )
        offers, offers_refused = self._offers_of_sale(
            conn, op, tier, stats, today, op.purchase.total - free.value - spent
        )
        spent_and_offers = spent + sum((offer.discount for offer in offers), Decimal(0))
        try:
            breakdown = rules.earn_points(
                at_till,
                op.purchase,
                tier,
                birthday_bonus_due=birthday_bonus_due,
                discount=spent_and_offers,
                free=free,
            )
        except RulesError as exc:
            # A line past the programme's most units is a rule's refusal (422), the rest
            # (a discount larger than the sale) a malformed sale.
            code = exc.code if exc.code in UNIT_REFUSALS else "bad_request"
            raise OpRejected(code, str(exc)) from None
        redeemed = plan.points if plan else 0
        self._check_points(breakdown.points, redeemed)
        self._check_member_day(conn, op.member_id, breakdown.points, self._now(conn))
        offers, offers_refused = self._within_member_day(
            conn, op, breakdown.points, offers, offers_refused
        )
        offer_points = sum(offer.points for offer in offers)  # within the caps, each checked
        result: dict[str, Any] = {
            "status": "applied",
            "key": op.key,
            "type": op.kind,
            "member_id": op.member_id,
            "points_earned": breakdown.points + offer_points,
            "points_redeemed": redeemed,
            "reward_id": plan.reward_id if plan else None,
            "discount": str(plan.discount) if plan else "0",
            "tier": tier.id,
        }
        if free.count:  # only then: other programmes' results read as before
            result["free_count"] = free.count
            result["free_value"] = str(free.value)
        if offers:
            result["offers"] = [
                {"offer_id": o.offer_id, "discount": str(o.discount), "points": o.points}
                for o in offers
            ]
        if offers_refused:  # the till applied them; not credited, and why
            result["offers_refused"] = offers_refused
        if self.program_version is not None:
            result["program_version"] = self.program_version
        amount = to_minor(op.purchase.total, self.program.currency)
        base_points = breakdown.points - breakdown.birthday_bonus
        gate = self._gate_before(conn, op.member_id)  # read before this sale is posted
        self._post(
            conn,
            op.key,
            op.member_id,
            "earn",
            base_points,
            op.occurred_at,
            amount,
            units_milli=int(op.purchase.units * 1000),
            segments=op.purchase.unit_lines,
            merchant=claim.merchant,
        )
        birthday_gift = (
            plan is not None
            and plan.reward_id is not None
            and self.program.birthday_reward is not None
            and plan.reward_id == self.program.birthday_reward.id
        )
        if breakdown.birthday_bonus or birthday_gift:
            self._grant_birthday(conn, record, op.key, today)
        if breakdown.birthday_bonus:
            self._post(
                conn,
                op.key,
                op.member_id,
                "birthday",
                breakdown.birthday_bonus,
                op.occurred_at,
                merchant=claim.merchant,
            )
        if plan is not None:
            kind = "birthday" if plan.points == 0 and plan.reward_id else "redeem"
            self._post(
                conn,
                op.key,
                op.member_id,
                kind,
                -plan.points,
                op.occurred_at,
                reward_id=plan.reward_id,
                merchant=claim.merchant,
            )
        for offer in offers:  # one row a use (0 points for money off): the uses are counted
            self._post(
                conn,
                op.key,
                op.member_id,
                "offer",
                offer.points,
                op.occurred_at,
                to_minor(offer.discount, self.program.currency),  # the money off, kept
                reward_id=offer.offer_id,
                merchant=claim.merchant,
            )
        if self.program.tiers.keeps_tiers:
            after = replace(
                stats,
                points_in_period=stats.points_in_period + breakdown.points,
                spend_in_period=stats.spend_in_period + op.purchase.total,
                visits_in_period=stats.visits_in_period + 1,
                units_in_period=stats.units_in_period + op.purchase.units,
                segments_in_period=stats.segments_in_period + op.purchase.unit_lines,
            )
            self._record_tier_reached(conn, op.member_id, after, today)
        credited = breakdown.points + offer_points
        if gate is not None:
            credited += self._hold_or_release(conn, op, gate, credited, amount, result)
        # Redeem against the balance before this sale's earning, as the terminal planned it.
        result["balance"] = self._move_balance(
            conn, op.member_id, credited - redeemed, spend=redeemed
        )
        self._claim(conn, op, claim, result)
        return result

    def _offers_of_sale(
        self,
        conn: Connection,
        op: SaleOp,
        tier: rules.Tier,
        stats: MemberStats,
        today: date,
        money_left: Decimal,
    ) -> tuple[tuple[rules.AppliedOffer, ...], list[dict[str, str]]]:
        """The partner offers the till applied, each checked again here (in the programme,
        open to the member today, a use left, met by the sale), in the programme's order,
        and valued by this ledger. One that fails is not credited (no points, no money off
        on record) and named with its reason; the sale itself applies, so an honest till's
        stale view never loses a sale, and no till's word adds a use. Returns (the offers
        credited, those refused)."""
        if not op.offers:
            return (), []
        used = self._offer_uses(conn, op.member_id)
        order = {offer.id: index for index, offer in enumerate(self.program.offers)}
        applied: list[rules.AppliedOffer] = []
        refused: list[dict[str, str]] = []
        for offer_id in sorted(op.offers, key=lambda o: order.get(o, len(order))):
            offer = self.program.offer(offer_id)
            if offer is None:
                refused.append({"offer_id": offer_id, "code": "unknown_offer"})
                continue
            if not rules.offer_open(self.program, offer, tier, stats, today):
                refused.append({"offer_id": offer_id, "code": "not_open"})
                continue
            if used.get(offer_id, 0) >= offer.max_uses_per_member:
                refused.append({"offer_id": offer_id, "code": "used_up"})
                continue
            gives = rules.offer_gives(offer, op.purchase, money_left)
            if gives is None:
                refused.append({"offer_id": offer_id, "code": "not_met"})
                continue
            applied.append(gives)
            money_left -= gives.discount
        return tuple(applied), refused

    def _within_member_day(
        self,
        conn: Connection,
        op: SaleOp,
        earned: int,
        offers: tuple[rules.AppliedOffer, ...],
        refused: list[dict[str, str]],
    ) -> tuple[tuple[rules.AppliedOffer, ...], list[dict[str, str]]]:
        """Offers' bonus points count toward the points an operation may earn and the
        member's daily cap like any earning: the bonuses past either are not credited
        (named), the sale and its money off still apply."""
        kept: list[rules.AppliedOffer] = []
        bonus = 0
        for offer in offers:
            if offer.points:
                try:
                    self._check_points(earned + bonus + offer.points)
                    self._check_member_day(
                        conn, op.member_id, earned + bonus + offer.points, self._now(conn)
                    )
                except OpRejected as exc:
                    refused = [*refused, {"offer_id": offer.offer_id, "code": exc.code}]
                    continue
                bonus += offer.points
            kept.append(offer)
        return tuple(kept), refused

    def _offer_uses(self, conn: Connection, member_id: str) -> dict[str, int]:
        """How many times the member used each offer (with this batch's, not yet written)."""
        used: dict[str, int] = {
            str(offer_id): int(count)
            for offer_id, count in conn.execute(
                select(transactions.c.reward_id, func.count())
                .where(transactions.c.member_id == member_id, transactions.c.kind == "offer")
                .group_by(transactions.c.reward_id)
            )
        }
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            rows = [*pending.staged_rows(member_id), *pending.op.transactions]
            for row in rows:
                if row["member_id"] == member_id and row["kind"] == "offer":
                    used[row["reward_id"]] = used.get(row["reward_id"], 0) + 1
        return used

    def _gate_before(self, conn: Connection, member_id: str) -> int | None:
        """The member's spend in all (minor units) when the programme holds points until a
        first spend, and the gate is still closed; None otherwise."""
        gate = self.program.membership.min_spend
        if gate is None:
            return None
        spent = self._sums(conn, member_id, None)[1]
        return spent if spent < to_minor(gate, self.program.currency) else None

    def _hold_or_release(
        self,
        conn: Connection,
        op: SaleOp,
        spent_before: int,
        earned: int,
        amount: int,
        result: dict[str, Any],
    ) -> int:
        """Behind a closed gate: hold this sale's points (a 'hold' row takes them back off
        the balance); at the sale that opens it, release all held (a 'release' row). Returns
        the change to the balance."""
        gate = to_minor(self.program.membership.min_spend or Decimal(0), self.program.currency)
        if spent_before + amount < gate:
            if earned:
                self._post(conn, op.key, op.member_id, "hold", -earned, op.occurred_at)
                result["points_held"] = earned
            return -earned
        held = self._held_points(conn, op.member_id)
        if held:
            self._post(conn, op.key, op.member_id, "release", held, op.occurred_at)
            result["points_released"] = held
        return held

    def _credited_past_gate(
        self, conn: Connection, member_id: str, key: str | None, points: int, when: datetime
    ) -> int:
        """Points of an action or a transfer credited now: none behind a closed gate (held
        with the purchases' until it opens), all otherwise."""
        if points <= 0 or self._gate_before(conn, member_id) is None:
            return points
        self._post(conn, key, member_id, "hold", -points, when)
        return 0

    def _held_points(self, conn: Connection, member_id: str) -> int:
        """Points held behind the member's gate and not yet released."""
        kinds = ("hold", "release")
        recorded = conn.execute(
            select(func.coalesce(func.sum(transactions.c.points), 0)).where(
                transactions.c.member_id == member_id, transactions.c.kind.in_(kinds)
            )
        ).scalar_one()
        pending: BatchWrites | None = conn.info.get(PENDING)
        staged = 0
        if pending is not None:
            rows = [*pending.staged_rows(member_id), *pending.op.transactions]
            staged = sum(
                row["points"]
                for row in rows
                if row["member_id"] == member_id and row["kind"] in kinds
            )
        return -(int(recorded) + staged)

    def _apply_enroll(self, conn: Connection, op: EnrollOp, claim: Claim) -> dict[str, Any]:
        if self.member(op.member_id, conn) is not None:
            raise OpRejected("member_exists", f"member {op.member_id} already exists")
        if self._identifier(conn, BLOCKED_CARD_NUMBER, op.card_number) is not None:
            # A lost or stolen card's number stays blocked: nobody joins with it.
            raise OpRejected("card_blocked", "this card was reported lost or stolen and is blocked")
        refusal = rules.enrollment_refusal(
            self.program.membership,
            op.birthday,
            totals.local_day(op.occurred_at, self.zone),
            op.consent.guardian,
        )
        if refusal is not None:
            raise OpRejected(*refusal)
        if self.program.membership.invitation and not claim.founder:
            self._invite(conn, op)
        result = {
            "status": "applied",
            "key": op.key,
            "type": op.kind,
            "member_id": op.member_id,
            "card_number": op.card_number,
            "balance": 0,
        }
        self._claim(conn, op, claim, result)
        conn.execute(
            members.insert().values(
                id=op.member_id,
                first_name=op.first_name,
                last_name=op.last_name,
                phone_last=op.phone_last,
                card_number=op.card_number,
                birthday=op.birthday,
                enrolled_at=op.occurred_at,
                consent_text_id=op.consent.text_id,
                consent_at=op.consent.given_at,
                consent_channel=op.consent.channel,
                marketing=op.consent.marketing,
                # Only where the gate needed it: an adult's enrollment records no guardian.
                guardian_consent=op.consent.guardian
                and rules.enrollment_refusal(
                    self.program.membership,
                    op.birthday,
                    totals.local_day(op.occurred_at, self.zone),
                    False,
                )
                is not None,
                balance=0,
            )
        )
        conn.execute(
            identifiers.insert(),
            [
                {"kind": "phone", "value": op.phone_key, "member_id": op.member_id},
                {"kind": "card_number", "value": op.card_number, "member_id": op.member_id},
            ],
        )
        return result

    def _invite(self, conn: Connection, op: EnrollOp) -> None:
        """A programme joined by invitation: the inviter is a member with an invitation
        left (counted under the inviter's lock); an `invite` row of the inviter's records it."""
        gate = self.program.membership
        if not op.invited_by:
            raise OpRejected("invitation_required", "the programme is joined by invitation")
        # The inviter's lock was taken with the batch's members, in their order (taken here,
        # mid-transaction, it made a cycle with a batch selling to both members).
        if op.invited_by == op.member_id or self._locked_member(conn, op.invited_by) is None:
            raise OpRejected("unknown_inviter", "the inviting member is not a member")
        given = self._invitations_given(conn, op.invited_by)
        if given >= gate.invitations_per_member:
            raise OpRejected(
                "invitations_used_up",
                f"the inviting member has given all {gate.invitations_per_member} invitations",
            )
        self._post(conn, op.key, op.invited_by, "invite", 0, op.occurred_at, reward_id=op.member_id)

    def _invitations_given(self, conn: Connection, member_id: str) -> int:
        """The invitations the member gave (with this batch's, not yet written)."""
        given = int(
            conn.execute(
                select(func.count()).where(
                    transactions.c.member_id == member_id, transactions.c.kind == "invite"
                )
            ).scalar_one()
        )
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:
            given += sum(
                1
                for row in [*pending.staged_rows(member_id), *pending.op.transactions]
                if row["member_id"] == member_id and row["kind"] == "invite"
            )
        return given

    def _apply_action(self, conn: Connection, op: ActionOp, claim: Claim) -> dict[str, Any]:
        self._require_member(conn, op.member_id)
        day = totals.local_day(op.occurred_at, self.zone)
        day_start = totals.day_start(day, self.zone)
        day_end = totals.day_start(day + timedelta(days=1), self.zone)
        done_today = conn.execute(
            select(func.count()).where(
                transactions.c.member_id == op.member_id,
                transactions.c.kind == "action",
                transactions.c.reward_id == op.action,
                transactions.c.occurred_at >= day_start,
                transactions.c.occurred_at < day_end,
            )
        ).scalar_one()
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is not None:  # and the batch's own, not written yet
            done_today += sum(
                1
                for row in pending.staged_rows(op.member_id)
                if row["kind"] == "action"
                and row["reward_id"] == op.action
                and day_start <= row["occurred_at"] < day_end
            )
        try:
            points = rules.action_points(self.program, op.action, int(done_today))
        except RulesError as exc:
            raise OpRejected("action_refused", str(exc)) from None
        self._check_points(points)
        self._check_member_day(conn, op.member_id, points, self._now(conn))
        result: dict[str, Any] = {
            "status": "applied",
            "key": op.key,
            "type": op.kind,
            "member_id": op.member_id,
            "points_earned": points,
            "points_redeemed": 0,
        }
        self._post(
            conn,
            op.key,
            op.member_id,
            "action",
            points,
            op.occurred_at,
            reward_id=op.action,
            merchant=claim.merchant,
        )
        credited = self._credited_past_gate(conn, op.member_id, op.key, points, op.occurred_at)
        if credited != points:
            result["points_held"] = points
        result["balance"] = self._move_balance(conn, op.member_id, credited)
        self._claim(conn, op, claim, result)
        return result

    def _apply_give(self, conn: Connection, op: GiveOp, claim: Claim) -> dict[str, Any]:
        record = self._require_member(conn, op.member_id)
        try:
            plan = rules.plan_give(self.program, op.target_id, op.points, record.balance)
        except RulesError as exc:
            raise OpRejected("give_refused", str(exc)) from None
        if plan.target.kind == "partner" and op.partner_account is None:
            raise OpRejected(
                "give_refused", "a transfer to a partner needs the member's account number there"
            )
        self._check_points(0, plan.points)
        result: dict[str, Any] = {
            "status": "applied",
            "key": op.key,
            "type": op.kind,
            "member_id": op.member_id,
            "points_earned": 0,
            "points_redeemed": plan.points,
            "target_id": plan.target.id,
            "converted": str(plan.converted),
            "unit": plan.target.unit_name,
        }
        if plan.target.kind == "partner":  # where the partner credits the units
            result["partner_account"] = op.partner_account
        kind = "donate" if plan.target.kind == "charity" else "transfer"
        self._post(
            conn,
            op.key,
            op.member_id,
            kind,
            -plan.points,
            op.occurred_at,
            reward_id=plan.target.id,
            merchant=claim.merchant,
        )
        result["balance"] = self._move_balance(conn, op.member_id, -plan.points)
        self._claim(conn, op, claim, result)
        return result

    def _apply_receive(self, conn: Connection, op: ReceiveOp, claim: Claim) -> dict[str, Any]:
        self._require_member(conn, op.member_id)
        try:
            points = rules.plan_receive(self.program, op.partner_id, op.units)
        except RulesError as exc:
            raise OpRejected("receive_refused", str(exc)) from None
        self._post(
            conn,
            op.key,
            op.member_id,
            "transfer_in",
            points,
            op.occurred_at,
            reward_id=op.partner_id,
            merchant=claim.merchant,
        )
        result: dict[str, Any] = {
            "status": "applied",
            "key": op.key,
            "type": op.kind,
            "member_id": op.member_id,
            "points_earned": points,
            "points_redeemed": 0,
            "partner_id": op.partner_id,
            "units": op.units,
        }
        credited = self._credited_past_gate(conn, op.member_id, op.key, points, op.occurred_at)
        if credited != points:
            result["points_held"] = points
        result["balance"] = self._move_balance(conn, op.member_id, credited)
        self._claim(conn, op, claim, result)
        return result

    # ------------------------------------------------------------ partner transfers

    def apply_partner_transfer(
        self,
        partner_id: str,
        reference: str,
        card_number: str,
        units: int,
        daily_cap_points: int,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Credit a partner's inbound transfer, once per (partner, reference): a replay with
        the same body returns the first result (status duplicate), a different body is an
        OpConflict. Refuses past the partner's daily cap (points credited since the store's
        midnight).
        """
        now = now or utcnow()
        digest = body_hash({"card_number": card_number, "units": units})
        with self.writer.begin() as conn:
            if conn.dialect.name == "postgresql":  # the daily cap is per partner, not per row
                conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(hashtext(%(partner)s))", {"partner": partner_id}
                )
            row = conn.execute(
                select(partner_transfers.c.body_hash, partner_transfers.c.result).where(
                    partner_transfers.c.partner_id == partner_id,
                    partner_transfers.c.reference == reference,
                )
            ).first()
            if row is not None:
                if row.body_hash != digest:
                    raise OpConflict(reference)
                previous: dict[str, Any] = json.loads(row.result)
                previous["status"] = "duplicate"
                return previous
            member_id = self._identifier(conn, "card_number", card_number)
            if member_id is None:
                raise OpRejected("unknown_member", "no member with this card number")
            self._require_member(conn, member_id)
            try:
                points = rules.plan_receive(self.program, partner_id, units)
            except RulesError as exc:
                raise OpRejected("receive_refused", str(exc)) from None
            day_start = totals.day_start(self.today(now), self.zone)
            today = conn.execute(
                select(func.coalesce(func.sum(partner_transfers.c.points), 0)).where(
                    partner_transfers.c.partner_id == partner_id,
                    partner_transfers.c.received_at >= day_start,
                )
            ).scalar_one()
            if int(today) + points > daily_cap_points:
                raise OpRejected(
                    "partner_daily_cap",
                    f"over this partner's daily cap of {daily_cap_points} points"
                    f" ({int(today)} credited today)",
                )
            self._check_points(points)
            self._check_member_day(conn, member_id, points, now)
            self._post(conn, None, member_id, "transfer_in", points, now, reward_id=partner_id)
            self._move_balance(
                conn, member_id, self._credited_past_gate(conn, member_id, None, points, now)
            )
            result: dict[str, Any] = {
                "status": "applied",
                "partner_id": partner_id,
                "reference": reference,
                "units": units,
                "points": points,
            }
            conn.execute(
                partner_transfers.insert().values(
                    partner_id=partner_id,
                    reference=reference,
                    body_hash=digest,
                    member_id=member_id,
                    points=points,
                    result=canonical_json(result),
                    received_at=now,
                )
            )
        return result

    def _identifier(self, conn: Connection, kind: str, value: str) -> str | None:
        row = conn.execute(
            select(identifiers.c.member_id).where(
                identifiers.c.kind == kind, identifiers.c.value == value
            )
        ).first()
        return row[0] if row else None

    def _check_points(self, earned: int, spent: int = 0) -> None:
        cap = self.limits.max_points_per_operation
        if cap is not None and max(earned, spent) > cap:
            raise OpRejected("limit_points", f"at most {cap} points per operation")

    def _check_member_day(
        self, conn: Connection, member_id: str, points: int, now: datetime
    ) -> None:
        """Every earning kind counts toward the member's points of the store's day (by the
        server's clock), whatever date the operation carries."""
        cap = self.limits.max_points_per_member_per_day
        if cap is None or points <= 0:
            return
        day, day_start = totals.day_and_start(now, self.zone)
        pending: BatchWrites | None = conn.info.get(PENDING)
        if pending is None:
            today = self._member_day_points(conn, member_id, day)
        else:  # the database's (read once per batch) and what the batch staged
            read = pending.day_read.get((member_id, day))
            if read is None:
                read = pending.day_read[(member_id, day)] = self._member_day_points(
                    conn, member_id, day
                )
            today = read + sum(
                row["points"]
                for row in pending.staged_rows(member_id)
                if row["kind"] in EARNED_KINDS
                and row["points"] > 0
                and row["recorded_at"] >= day_start
            )
        if int(today) + points > cap:
            raise OpRejected(
                "limit_member_day", f"at most {cap} points per member per day ({int(today)} today)"
            )

    def _member_day_points(self, conn: Connection, member_id: str, day: date) -> int:
        """Points credited to the member on the store day `day` (its recorded-day row)."""
        return totals.read_recorded(conn, [member_id], day).get(member_id, (0, 0))[0]

    # ------------------------------------------------------------ administration

    def link_identifier(self, member_id: str, kind: str, value: str) -> None:
        with self.writer.begin() as conn:
            conn.execute(identifiers.insert().values(kind=kind, value=value, member_id=member_id))

    def _expiry_boundary(self, day: date) -> datetime | None:
        """The moment before which earned points have expired by the store day `day` (for
        expiry by inactivity: before which a member's last activity expires them all)."""
        first = rules.expiry_boundary(self.program.expiry, day)
        return None if first is None else totals.day_start(first, self.zone)

    @property
    def _by_inactivity(self) -> bool:
        return self.program.expiry.mode is rules.ExpiryMode.INACTIVITY

    def _inactivity_sums(self) -> tuple[Any, Any]:
        """(the member's last activity, their points): a member whose last purchase,
        reward, action or transfer is before the boundary has all their points due."""
        active = transactions.c.kind.not_in(NOT_ACTIVITY)
        last = func.max(case((active, transactions.c.occurred_at)))
        return last, func.coalesce(func.sum(transactions.c.points), 0)

    def _expiry_sums(self, boundary: datetime) -> tuple[Any, Any]:
        """(points earned before `boundary`, points spent or expired ever): spending and
        earlier expiry use the oldest points first, so what is left of the old is due."""
        old = func.coalesce(
            func.sum(
                case(
                    (
                        and_(transactions.c.points > 0, transactions.c.occurred_at < boundary),
                        transactions.c.points,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        used = func.coalesce(
            func.sum(case((transactions.c.points < 0, -transactions.c.points), else_=0)), 0
        )
        return old, used

    def points_expiring(self, conn: Connection, member_id: str, by: date) -> int:
        """Points of the member that will have expired by the store day `by` (with those due
        already, if expiry has not run yet)."""
        boundary = self._expiry_boundary(by)
        if boundary is None:
            return 0
        if self._by_inactivity:
            return self._inactive_due(conn, member_id, boundary)
        old, used = self._expiry_sums(boundary)
        earned, spent = conn.execute(
            select(old, used).where(transactions.c.member_id == member_id)
        ).one()
        return max(int(earned) - int(spent), 0)

    def points_expiring_total(self, by: date) -> int:
        """Points of every member that will have expired by the store day `by`: the sum of
        `points_expiring` over members, in one grouped read (the console's liability)."""
        boundary = self._expiry_boundary(by)
        if boundary is None:
            return 0
        if self._by_inactivity:
            last, held = self._inactivity_sums()
            per_member = (
                select(last.label("last"), held.label("held"))
                .group_by(transactions.c.member_id)
                .subquery()
            )
            due = select(func.coalesce(func.sum(per_member.c.held), 0)).where(
                per_member.c.last < boundary, per_member.c.held > 0
            )
        else:
            old, used = self._expiry_sums(boundary)
            per_member = (
                select((old - used).label("left")).group_by(transactions.c.member_id).subquery()
            )
            due = select(func.coalesce(func.sum(per_member.c.left), 0)).where(per_member.c.left > 0)
        with self.engine.connect() as conn:
            return int(conn.execute(due).scalar_one())

    def _inactive_due(self, conn: Connection, member_id: str, boundary: datetime) -> int:
        """All the member's points when their last activity is before `boundary`, else 0."""
        last = select(func.max(transactions.c.occurred_at)).where(
            transactions.c.member_id == member_id, transactions.c.kind.not_in(NOT_ACTIVITY)
        )
        held = select(func.coalesce(func.sum(transactions.c.points), 0)).where(
            transactions.c.member_id == member_id
        )
        when = conn.execute(last).scalar()
        points = int(conn.execute(held).scalar_one())
        return points if when is not None and points > 0 and when < boundary else 0

    def expire(self, as_of: datetime, chunk: int = 200) -> list[tuple[str, int]]:
        """Post an 'expire' row for each member with points past the programme's expiry at
        `as_of` (store days); returns (member id, points expired) for each. Idempotent: each
        member's due amount is decided again under the member's lock, so a second run, or
        another process running at once, expires nothing more. On PostgreSQL one process at
        a time runs it (an advisory lock; the others return at once)."""
        boundary = self._expiry_boundary(self.today(as_of))
        if boundary is None:
            return []
        if self._by_inactivity:
            last, held = self._inactivity_sums()
            old, used = case((last < boundary, held), else_=0), held * 0
        else:
            old, used = self._expiry_sums(boundary)
        expired: list[tuple[str, int]] = []
        with self.engine.connect() as guard:
            # The guard's transaction stays open for the run and holds a transaction-level
            # lock (behind a transaction-mode pooler a session lock could outlive it on
            # another client's connection, and expiry would never run again).
            if guard.dialect.name == "postgresql":
                got = guard.exec_driver_sql(
                    "SELECT pg_try_advisory_xact_lock(%(key)s)", {"key": EXPIRY_LOCK}
                ).scalar_one()
                if not got:
                    guard.rollback()
                    log.info("expiry: another process is running it")
                    return []
            try:
                candidates = sorted(
                    row[0]
                    for row in guard.execute(
                        select(transactions.c.member_id)
                        .group_by(transactions.c.member_id)
                        .having(old > used)
                    )
                )
                for first in range(0, len(candidates), chunk):
                    with self.writer.begin() as conn:
                        for member_id in candidates[first : first + chunk]:
                            if self.member(member_id, conn, lock=True) is None:
                                continue
                            if self._by_inactivity:
                                due = self._inactive_due(conn, member_id, boundary)
                            else:
                                earned, spent = conn.execute(
                                    select(old, used).where(transactions.c.member_id == member_id)
                                ).one()
                                due = int(earned) - int(spent)
                            if due <= 0:
                                continue
                            self._post(conn, None, member_id, "expire", -due, as_of)
                            self._move_balance(conn, member_id, -due)
                            expired.append((member_id, due))
            finally:
                guard.rollback()  # ends the guard's transaction: the lock goes with it
        return expired

    def run_expiry(self, as_of: datetime) -> int:
        """Expire what is due at `as_of` (see expire); returns the points expired."""
        return sum(points for _member, points in self.expire(as_of))

    def balance_mismatches(self) -> list[tuple[str, int, int]]:
        """Members whose cached balance differs from the sum of their transactions."""
        sums = (
            select(transactions.c.member_id, func.sum(transactions.c.points).label("total"))
            .group_by(transactions.c.member_id)
            .subquery()
        )
        query = select(members.c.id, members.c.balance, func.coalesce(sums.c.total, 0)).select_from(
            members.outerjoin(sums, and_(sums.c.member_id == members.c.id))
        )
        with self.engine.connect() as conn:
            return [
                (row[0], int(row[1]), int(row[2]))
                for row in conn.execute(query)
                if int(row[1]) != int(row[2])
            ]

    def operation_keys(self) -> Iterator[str]:
        with self.engine.connect() as conn:
            for row in conn.execute(select(operations.c.key)):
                yield row[0]

    def count_transactions(self, op_key: str, kind: str | None = None) -> int:
        where = [transactions.c.op_key == op_key]
        if kind:
            where.append(transactions.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(*where)).scalar_one())


def build_member_view(
    program: Program,
    record: MemberRecord,
    stats: MemberStats,
    birthday_available: bool,
    points_expiring: int = 0,
) -> MemberView:
    tier = rules.tier_for(program.tiers, stats)
    upcoming = rules.next_tier(program.tiers, stats)
    nearest = rules.next_reward(program, record.balance, tier)
    return MemberView(
        member_id=record.id,
        display_name=mask_name(record.first_name, record.last_name),
        phone_hint=mask_tail("0000000000" + record.phone_last, 2) if record.phone_last else "",
        tier_id=tier.id,
        tier_name=tier.name,
        balance=record.balance,
        stats=stats,
        next_tier_name=upcoming[0].name if upcoming else None,
        next_tier_remaining=upcoming[1] if upcoming else None,
        next_reward_name=nearest[0] if nearest else None,
        next_reward_remaining=nearest[1] if nearest else None,
        rewards=rules.reward_offers(program, record.balance, tier, birthday_available),
        birthday_reward=birthday_available,
        card_number=record.card_number,
        points_expiring=min(points_expiring, record.balance),
    )


def purge_operation_keys(ledger: Ledger, older_than: datetime) -> int:
    """Forget idempotency keys past their retention window (longer than any offline period)."""
    with ledger.writer.begin() as conn:
        return int(
            conn.execute(operations.delete().where(operations.c.applied_at < older_than)).rowcount
        )
