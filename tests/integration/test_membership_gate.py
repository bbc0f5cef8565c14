"""A membership gate (issue 11, mechanic 3): a prospect's purchases are recorded and earn,
but the points are held until the member has spent the programme's minimum in all, then
released by the sale that opens the gate; on SQLite and PostgreSQL, alone and in batches."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, uuid7
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.operations import SaleOp
from pos_client.program import ProgramDocument
from tests.integration.ledger_helpers import enroll

PROGRAM = """
id = "t"
name = "T"
currency = "USD"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[membership]
{membership}
"""
GATED = ProgramDocument.of(PROGRAM.format(membership='min_spend = "100.00"')).parse("t")
AT = datetime(2026, 6, 1, 12, tzinfo=UTC)


def sale(member: str, amount: str) -> dict[str, object]:
    return SaleOp(uuid7(), member, "T", AT, Purchase.of_amount(Decimal(amount))).to_body()


def test_points_are_held_until_the_minimum_is_spent_then_released(database_url: str) -> None:
    ledger = Ledger(make_engine(database_url), GATED)
    member = enroll(ledger)
    first = ledger.apply(sale(member, "30.00"))
    assert (first["points_earned"], first["points_held"], first["balance"]) == (30, 30, 0)
    ledger.apply(sale(member, "30.00"))
    view = ledger.member_view(member)
    assert view is not None
    assert (view.balance, view.points_held, view.gate_remaining) == (0, 60, Decimal("40.00"))
    opening = ledger.apply(sale(member, "50.00"))
    assert (opening["points_released"], opening["balance"]) == (60, 110)
    assert "points_held" not in opening
    after = ledger.member_view(member)
    assert after is not None and (after.points_held, after.gate_remaining) == (0, None)
    later = ledger.apply(sale(member, "10.00"))
    assert "points_released" not in later and later["balance"] == 120
    assert ledger.balance_mismatches() == []


def test_a_batch_crossing_the_gate_releases_once(database_url: str) -> None:
    ledger = Ledger(make_engine(database_url), GATED)
    member = enroll(ledger)
    results = ledger.apply_many([sale(member, "40.00") for _ in range(4)])
    assert [r.get("points_held", 0) for r in results if isinstance(r, dict)] == [40, 40, 0, 0]
    assert [r.get("points_released", 0) for r in results if isinstance(r, dict)] == [0, 0, 80, 0]
    assert [r["balance"] for r in results if isinstance(r, dict)] == [0, 0, 120, 160]
    assert ledger.balance_mismatches() == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amounts=st.lists(st.sampled_from(["0.99", "5.00", "25.00", "60.00"]), max_size=8))
def test_a_gate_never_lets_points_through_before_it_opens(amounts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(make_engine(sqlite_url(Path(folder) / "l.sqlite")), GATED)
        ledger.create_schema()
        member = enroll(ledger)
        spent = Decimal(0)
        earned = 0
        for amount in amounts:
            result = ledger.apply(sale(member, amount))
            spent += Decimal(amount)
            earned += int(result["points_earned"])
            assert result["balance"] == (earned if spent >= 100 else 0)
        ledger.engine.dispose()


def test_a_bad_membership_table_is_refused() -> None:
    for text, problem in (('min_spend = "0"', "min_spend"), ("invite = true", "unknown setting")):
        with pytest.raises(ConfigError, match=problem):
            ProgramDocument.of(PROGRAM.format(membership=text)).parse("t")


ACTIONS = (
    PROGRAM.format(membership='min_spend = "100.00"')
    + """
[[actions]]
id = "check"
name = "Check"
points = 50
"""
)


def test_points_of_actions_are_held_behind_the_gate_too(database_url: str) -> None:
    from pos_client.operations import ActionOp

    ledger = Ledger(make_engine(database_url), ProgramDocument.of(ACTIONS).parse("t"))
    member = enroll(ledger)
    action = ActionOp(
        key=uuid7(), member_id=member, action="check", terminal_id="T", occurred_at=AT
    )
    held = ledger.apply(action.to_body())
    assert (held["points_earned"], held["points_held"], held["balance"]) == (50, 50, 0)
    opening = ledger.apply(sale(member, "100.00"))
    assert (opening["points_released"], opening["balance"]) == (50, 150)
    assert ledger.balance_mismatches() == []


ADULTS = ProgramDocument.of(
    PROGRAM.format(membership="min_age = 18\nguardian_from_age = 13")
).parse("adults")


def test_the_age_gate_refuses_enrollments_a_till_sends_and_records_a_guardian(
    database_url: str,
) -> None:
    from datetime import date

    from sqlalchemy import select

    from pos_client.ledger.schema import members
    from pos_client.operations import OpRejected
    from tests.integration.ledger_helpers import enroll_body

    ledger = Ledger(make_engine(database_url), ADULTS)
    joined = datetime(2026, 11, 25, 12, tzinfo=UTC)  # the helpers' enrollment time
    refused = []
    for member, birthday, guardian in (
        ("none", None, False),  # no birthday at all
        ("ten", date(2016, 1, 1), True),  # a guardian cannot consent for a ten-year-old
        ("minor", date(2010, 1, 1), False),  # sixteen, no guardian
    ):
        body = enroll_body(member, f"p-{member}", birthday)
        body["consent"]["guardian"] = guardian  # type: ignore[index]
        try:
            ledger.apply(body)
        except OpRejected as exc:
            refused.append(exc.code)
    assert refused == ["birthday_required", "too_young", "guardian_required"]
    minor = enroll_body("minor", "p-minor", date(2010, 1, 1))
    minor["consent"]["guardian"] = True  # type: ignore[index]
    ledger.apply(minor)
    adult = enroll_body("adult", "p-adult", date(2008, 11, 25))  # eighteen that day
    adult["consent"]["guardian"] = True  # type: ignore[index]  # not needed: not recorded
    ledger.apply(adult)
    with ledger.engine.connect() as conn:
        rows = dict(conn.execute(select(members.c.id, members.c.guardian_consent)).all())
    assert rows == {"minor": True, "adult": False}
    assert joined.date() == date(2026, 11, 25)


CLUB = ProgramDocument.of(
    PROGRAM.format(membership="invitation = true\ninvitations_per_member = 2")
).parse("club")


def test_joining_by_invitation_needs_a_member_with_an_invitation_left(
    database_url: str,
) -> None:
    from pos_client.operations import OpRejected
    from tests.integration.ledger_helpers import enroll_body

    ledger = Ledger(make_engine(database_url), CLUB)
    ledger.apply(enroll_body("anna", "p-anna"), founder=True)  # the operator's own
    refused = []
    for member, inviter in (("x1", ""), ("x2", "nobody"), ("x3", "x3")):
        body = enroll_body(member, f"p-{member}")
        if inviter:
            body["invited_by"] = inviter
        try:
            ledger.apply(body)
        except OpRejected as exc:
            refused.append(exc.code)
    assert refused == ["invitation_required", "unknown_inviter", "unknown_inviter"]
    invited = []
    for index in range(3):  # in one batch: two invitations, the third refused
        body = enroll_body(f"guest{index}", f"p-guest{index}")
        body["invited_by"] = "anna"
        invited.append(body)
    results = ledger.apply_many(invited)
    assert [r["status"] if isinstance(r, dict) else r.code for r in results] == [
        "applied",
        "applied",
        "invitations_used_up",
    ]
    view = ledger.member_view("anna")
    assert view is not None and view.invitations_left == 0
    # A till's batch is never the operator's, whatever it asks.
    outsider = enroll_body("outsider", "p-outsider")
    (outcome,) = ledger.apply_many([outsider], terminal_id="till-1", founder=True)
    assert isinstance(outcome, OpRejected) and outcome.code == "invitation_required"
    assert ledger.balance_mismatches() == []


def test_inviting_someone_is_not_the_inviters_own_activity(database_url: str) -> None:
    from pos_client.ledger.ledger import NOT_ACTIVITY
    from tests.integration.ledger_helpers import enroll_body

    source = PROGRAM.format(membership="invitation = true") + (
        '[expiry]\nmode = "inactivity"\nmonths = 12\n'
    )
    ledger = Ledger(make_engine(database_url), ProgramDocument.of(source).parse("club"))
    ledger.apply(enroll_body("anna", "p-anna"), founder=True)
    ledger.apply(sale("anna", "50.00") | {"occurred_at": "2025-01-10T12:00:00+00:00"})
    guest = enroll_body("guest", "p-guest")
    guest["invited_by"] = "anna"
    ledger.apply(guest)  # late in 2026: no purchase of anna's since January 2025
    expired = dict(ledger.expire(datetime(2026, 11, 26, tzinfo=UTC)))
    assert expired == {"anna": 50} and "invite" in NOT_ACTIVITY
