from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from pos_client.domain import Consent, Purchase, PurchaseLine, uuid7
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.operations import ActionOp, EnrollOp, RedemptionRequest, SaleOp
from tests.conftest import preset

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_ledger(path: Path, program: str = "category_tiers") -> Ledger:
    ledger = Ledger(make_engine(sqlite_url(path)), preset(program))
    ledger.create_schema()
    return ledger


def enroll_body(
    member_id: str = "m1",
    phone_key: str = "p1",
    birthday: date | None = None,
    card: str | None = None,
) -> dict[str, object]:
    return EnrollOp(
        key=uuid7(),
        member_id=member_id,
        first_name="Anna",
        last_name="Karenina",
        phone_key=phone_key,
        phone_last="89",
        card_number=card or f"card-{member_id}",
        consent=Consent("terms", NOW, "test"),
        occurred_at=NOW,
        birthday=birthday,
    ).to_body()


def enroll(
    ledger: Ledger,
    member_id: str = "m1",
    phone_key: str = "p1",
    birthday: date | None = None,
    card: str | None = None,
) -> str:
    ledger.apply(enroll_body(member_id, phone_key, birthday, card))
    return member_id


def sale_body(
    member_id: str,
    amount: str,
    category: str = "",
    *,
    key: str | None = None,
    at: datetime = NOW,
    redemption: RedemptionRequest | None = None,
) -> dict[str, object]:
    return SaleOp(
        key=key or uuid7(),
        member_id=member_id,
        terminal_id="T",
        occurred_at=at,
        purchase=Purchase((PurchaseLine(Decimal(amount), category),)),
        redemption=redemption,
    ).to_body()


def action_body(member_id: str, action: str, at: datetime = NOW) -> dict[str, object]:
    return ActionOp(
        key=uuid7(), member_id=member_id, action=action, terminal_id="T", occurred_at=at
    ).to_body()
