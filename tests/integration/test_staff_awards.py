"""Staff awards with approval (issue 11, mechanic 8), through the ledger on SQLite and
PostgreSQL: a staff member's own PIN gives an award; above the programme's size another
staff member's PIN approves it; every award is in the audit trail with both names; wrong
PINs lock; nothing a till claims gets past the ledger's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pos_client.domain import uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.ledger import Limits
from pos_client.ledger.schema import transactions
from pos_client.ledger.staff_awards import add_staff, awards_since, remove_staff
from pos_client.operations import OpConflict, OpRejected, StaffAward
from pos_client.program import ProgramDocument
from tests.integration.ledger_helpers import enroll

PROGRAM = ProgramDocument.of(
    'id = "s"\nname = "S"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\nid = "m"\n'
    'name = "M"\n[staff_awards]\nmax_points = 1000\napproval_over = 200\n'
).parse("s")
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def award(member: str, points: int, **fields: object) -> StaffAward:
    values: dict[str, object] = {
        "key": uuid7(),
        "member_id": member,
        "points": points,
        "reason": "a suggestion for the shop",
        "staff_id": "ana",
        "staff_pin": "4826",
    }
    values.update(fields)
    return StaffAward(**values)  # type: ignore[arg-type]


def refused(ledger: Ledger, given: StaffAward) -> str:
    with pytest.raises(OpRejected) as caught:
        ledger.award(given, "till-1", now=NOW)
    return caught.value.code


@pytest.fixture
def ledger(database_url: str) -> Ledger:
    ledger = Ledger(make_engine(database_url), PROGRAM, Limits(max_points_per_member_per_day=900))
    add_staff(ledger.writer, "ana", "Ana", "4826")
    add_staff(ledger.writer, "ben", "Ben", "7391")
    return ledger


def test_an_award_is_given_once_by_its_key_and_kept_in_the_audit_trail(ledger: Ledger) -> None:
    member = enroll(ledger)
    given = award(member, 150)
    first = ledger.award(given, "till-1", now=NOW)
    assert (first["status"], first["balance"], first["approver_id"]) == ("applied", 150, None)
    again = ledger.award(given, "till-1", now=NOW)
    assert again["status"] == "duplicate"
    with pytest.raises(OpConflict):
        ledger.award(award(member, 151, key=given.key), "till-1", now=NOW)
    (record,) = awards_since(ledger.engine, NOW - timedelta(days=1))
    assert (record.member_id, record.points, record.staff_id, record.terminal_id) == (
        member,
        150,
        "ana",
        "till-1",
    )
    assert ledger.balance_mismatches() == []


def test_a_large_award_needs_another_staff_members_pin(ledger: Ledger) -> None:
    member = enroll(ledger)
    assert refused(ledger, award(member, 500)) == "approval_required"
    assert refused(ledger, award(member, 500, approver=("ana", "4826"))) == "approver_refused"
    assert refused(ledger, award(member, 500, approver=("ben", "0000"))) == "approver_refused"
    done = ledger.award(award(member, 500, approver=("ben", "7391")), "till-1", now=NOW)
    assert (done["status"], done["approver_id"]) == ("applied", "ben")
    assert [r.approver_id for r in awards_since(ledger.engine, NOW)] == ["ben"]


def test_what_a_till_cannot_award(ledger: Ledger) -> None:
    member = enroll(ledger)
    assert refused(ledger, award(member, 1001, approver=("ben", "7391"))) == "award_over_limit"
    assert refused(ledger, award(member, 0)) == "bad_request"
    assert refused(ledger, award(member, 10, reason="\u202egoodwill")) == "bad_request"
    assert refused(ledger, award(member, 10, reason=" ")) == "bad_request"
    assert refused(ledger, award(member, 10, staff_id="nobody")) == "staff_refused"
    assert refused(ledger, award("no-such-member", 10)) == "unknown_member"
    ledger.award(award(member, 200), "till-1", now=NOW)
    ledger.award(award(member, 600, approver=("ben", "7391")), "till-1", now=NOW)
    over_the_day = award(member, 150, approver=("ben", "7391"))
    assert refused(ledger, over_the_day) == "limit_member_day"  # 900 a day
    with ledger.engine.connect() as conn:
        kinds = conn.execute(select(transactions.c.kind, transactions.c.points)).all()
    assert sorted(kinds) == [("award", 200), ("award", 600)]


def test_wrong_pins_lock_a_staff_member_and_a_removed_one_awards_nothing(ledger: Ledger) -> None:
    member = enroll(ledger)
    for _ in range(5):
        assert refused(ledger, award(member, 10, staff_pin="1111")) == "staff_refused"
    with pytest.raises(OpRejected, match="locked"):
        ledger.award(award(member, 10), "till-1", now=NOW)  # even the right PIN, for now
    assert remove_staff(ledger.writer, "ben")
    assert refused(ledger, award(member, 10, staff_id="ben", staff_pin="7391")) == "staff_refused"
    assert awards_since(ledger.engine, NOW - timedelta(days=1)) == []


def test_a_programme_without_staff_awards_awards_nothing(database_url: str) -> None:
    plain = ProgramDocument.of(
        'id = "p"\nname = "P"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\nid = "m"\nname = "M"\n'
    ).parse("p")
    ledger = Ledger(make_engine(database_url), plain)
    add_staff(ledger.writer, "ana", "Ana", "4826")
    member = enroll(ledger)
    assert refused(ledger, award(member, 10)) == "no_staff_awards"


def test_splitting_an_award_needs_the_approval_all_the_same(ledger: Ledger) -> None:
    member = enroll(ledger)
    ledger.award(award(member, 150), "till-1", now=NOW)
    assert refused(ledger, award(member, 100)) == "approval_required"  # 250 today unapproved
    approved = ledger.award(award(member, 100, approver=("ben", "7391")), "till-1", now=NOW)
    assert approved["approver_id"] == "ben"
    tomorrow = NOW + timedelta(days=1)
    assert ledger.award(award(member, 150), "till-1", now=tomorrow)["status"] == "applied"


def test_an_approver_given_is_always_checked_and_repeats_are_exact(ledger: Ledger) -> None:
    member = enroll(ledger)
    assert refused(ledger, award(member, 50, approver=("ana", "4826"))) == "approver_refused"
    assert refused(ledger, award(member, 50, approver=("ben", "0000"))) == "approver_refused"
    given = award(member, 50)
    ledger.award(given, "till-1", now=NOW)
    assert ledger.award(given, "till-1", now=NOW)["status"] == "duplicate"
    for other in (
        award(member, 50, key=given.key, reason="another reason"),
        award(member, 50, key=given.key, approver=("ben", "7391")),
    ):
        with pytest.raises(OpConflict):
            ledger.award(other, "till-1", now=NOW)
    with pytest.raises(OpConflict):
        ledger.award(given, "till-2", now=NOW)  # another till's key: not read back
    assert refused(ledger, award(member, 10, staff_pin="abcd")) == "bad_request"


def test_two_staff_members_never_share_a_pin(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="another staff member has this PIN"):
        add_staff(ledger.writer, "dan", "Dan", "4826")
