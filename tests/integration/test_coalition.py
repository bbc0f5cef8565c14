"""Coalitions (issue 11, mechanic 5): several merchants share one programme; each till earns
at its merchant's rates, every transaction keeps its merchant, and the settlement of a
period says per merchant what it issued, what became of it and who owes whom; on SQLite and
PostgreSQL, through the ledger, and through real terminals and a real server process."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import func, select

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.schema import members, transactions
from pos_client.ledger.settlement import OPERATOR, settlement_for
from pos_client.operations import RedemptionRequest, SaleOp
from tests.conftest import preset
from tests.integration.ledger_helpers import enroll
from tests.integration.server_helpers import REPO, ServerProcess, http_terminal

D = Decimal
UTC_ZONE = ZoneInfo("UTC")
AT = datetime(2026, 11, 10, 12, tzinfo=UTC)
DANA = "+1 650 253 0001"


def sale(
    member: str, amount: str, category: str = "", at: datetime = AT, spend: int = 0
) -> dict[str, Any]:
    # Points as money: the preset's blocks of 100 points = 1.00.
    spending = RedemptionRequest(blocks=spend // 100, points=spend) if spend else None
    purchase = Purchase((PurchaseLine(D(amount), category, ""),))
    return SaleOp(uuid7(), member, "T", at, purchase, spending).to_body()


class LedgerClock:
    """The ledger's clock, set by the test: when each row is recorded (its period)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = AT
        monkeypatch.setattr("pos_client.ledger.ledger.utcnow", lambda: self.now)


def ledger_at(url: str, merchant: str) -> Ledger:
    """The ledger as a till of `merchant` writes to it (the server's schema, by alembic)."""
    return Ledger(make_engine(url), preset("coalition_points"), merchant=merchant)


def test_each_till_earns_at_its_merchants_rates_and_keeps_its_merchant(database_url: str) -> None:
    fuel, pharmacy = ledger_at(database_url, "fuel"), ledger_at(database_url, "pharmacy")
    operator = ledger_at(database_url, "")
    member = enroll(fuel)
    earned = [
        fuel.apply(sale(member, "60.00", "fuel"))["points_earned"],  # 0.5 a euro
        fuel.apply(sale(member, "10.00", "shop"))["points_earned"],  # 2 in the station shop
        pharmacy.apply(sale(member, "10.00"))["points_earned"],  # 2 a euro
        operator.apply(sale(member, "10.00"))["points_earned"],  # the base rate, 1
    ]
    assert earned == [30, 20, 20, 10]
    with fuel.engine.connect() as conn:
        rows = conn.execute(
            select(transactions.c.merchant, func.sum(transactions.c.points))
            .where(transactions.c.kind == "earn")
            .group_by(transactions.c.merchant)
        ).all()
    assert sorted(rows) == [("", 10), ("fuel", 50), ("pharmacy", 20)]


def test_a_batch_from_the_server_is_applied_at_the_merchant_given_not_the_ledgers(
    database_url: str,
) -> None:
    ledger = ledger_at(database_url, "pharmacy")
    member = enroll(ledger)
    results = ledger.apply_many(
        [sale(member, "10.00"), sale(member, "10.00", "shop")], terminal_id="t", merchant="fuel"
    )
    assert [r["points_earned"] for r in results if isinstance(r, dict)] == [5, 20]


def test_points_earned_at_one_merchant_and_spent_at_another_are_settled_between_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = LedgerClock(monkeypatch)
    grocer, fuel = ledger_at(database_url, "grocer"), ledger_at(database_url, "fuel")
    clock.now = AT - timedelta(days=40)
    member = enroll(grocer)
    grocer.apply(sale(member, "500.00", at=clock.now))  # 500 before the period
    clock.now = AT
    fuel.apply(sale(member, "40.00", "shop"))  # 80 points in the period, fuel's
    fuel.apply(sale(member, "30.00", "fuel", spend=300))  # 300 of grocer's spent at fuel
    grocer.apply(sale(member, "20.00", spend=200))  # the other 200 of grocer's, at home
    coalition = grocer.program.coalition
    assert coalition is not None
    report = settlement_for(
        grocer.engine, coalition, date(2026, 11, 1), date(2026, 11, 30), UTC_ZONE, "EUR"
    )
    by_id = {figure.merchant: figure for figure in report.merchants}
    g, f = by_id["grocer"], by_id["fuel"]
    # Each sale earns on what is left to pay after the points spent as money.
    assert (g.outstanding_at_start, g.issued, g.spent, g.outstanding_at_end) == (500, 18, 500, 18)
    assert (f.issued, f.spent, f.redeemed_here) == (80 + 13, 0, 300)
    (payment,) = report.payments
    assert (payment.payer, payment.payee, payment.amount) == ("grocer", "fuel", D("3.00"))
    with grocer.engine.connect() as conn:
        balances = conn.execute(select(func.sum(members.c.balance))).scalar_one()
    assert sum(figure.outstanding_at_end for figure in report.merchants) == balances


def test_expired_points_leave_their_issuers_outstanding_and_cost_nobody(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = LedgerClock(monkeypatch)
    pharmacy = ledger_at(database_url, "pharmacy")
    clock.now = datetime(2022, 1, 5, tzinfo=UTC)
    member = enroll(pharmacy)
    pharmacy.apply(sale(member, "50.00", at=clock.now))  # 100 points
    clock.now = AT
    assert pharmacy.run_expiry(AT) == 100  # 36 months later
    coalition = pharmacy.program.coalition
    assert coalition is not None
    report = settlement_for(
        pharmacy.engine, coalition, date(2026, 11, 1), date(2026, 11, 30), UTC_ZONE, "EUR"
    )
    figure = next(f for f in report.merchants if f.merchant == "pharmacy")
    assert (figure.outstanding_at_start, figure.expired, figure.outstanding_at_end) == (100, 100, 0)
    assert report.payments == []


def test_a_period_is_refused_backwards_or_longer_than_the_report_reads(database_url: str) -> None:
    ledger = ledger_at(database_url, "")
    coalition = ledger.program.coalition
    assert coalition is not None
    for start, end in ((date(2026, 2, 1), date(2026, 1, 1)), (date(2020, 1, 1), date(2026, 1, 1))):
        with pytest.raises(ValueError):
            settlement_for(ledger.engine, coalition, start, end, UTC_ZONE, "EUR")


# ------------------------------------------------------------- a real server and tills


@pytest.fixture
def coalition_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    from tests.security.conftest import running_server

    yield from running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM="coalition_points")


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server.command(*args), cwd=REPO, env=server.env, capture_output=True, text=True
    )


def paired_at(server: ServerProcess, name: str, merchant: str) -> dict[str, str]:
    """A till registered with `loyalty-server terminal add --merchant`, paired over HTTP."""
    added = cli(server, "terminal", "add", name, "--merchant", merchant)
    assert added.returncode == 0, added.stderr
    assert f"merchant {merchant}" in added.stdout
    code = added.stdout.split("pairing code: ")[1].split()[0]
    answer = requests.post(server.url + "/v1/terminals/pair", json={"code": code}, timeout=10)
    answer.raise_for_status()
    data: dict[str, str] = answer.json()
    return data


def test_tills_of_two_merchants_earn_spend_and_settle_through_the_server(
    coalition_server: ServerProcess, tmp_path: Path
) -> None:
    server = coalition_server
    fuel_pairing = paired_at(server, "Pump 3", "fuel")
    grocer_pairing = paired_at(server, "Lane 1", "grocer")
    # The fuel till's own config says pharmacy (rate 2): the server's record of it wins.
    with http_terminal(
        server,
        tmp_path / "fuel",
        answer=fuel_pairing,
        program="coalition_points",
        terminal__merchant="pharmacy",
    ) as fuel:
        session = fuel.checkout.enroll(DANA, "Dana", consent=True)  # joins at the pump
        # A new member's welcome offer (StarCinema's 2.00 off) applies by itself.
        receipt = fuel.checkout.earn(session, Purchase.of_amount(D("402.00")))
        assert receipt.cash_due == D("400.00")
        assert receipt.expected_points == 800  # its preview at its own (wrong) pharmacy's 2
        fuel.sync.drain()
        assert fuel.outbox.stats().unsent == 0
        (earned,) = [e for e in fuel.outbox.entries(limit=5) if e.kind == "sale"]
        assert earned.result is not None and earned.result["points_earned"] == 200  # fuel's 0.5
        assert earned.result["offers"] == [
            {"offer_id": "cinema-welcome", "discount": "2.00", "points": 0}
        ]
    with http_terminal(
        server,
        tmp_path / "grocer",
        answer=grocer_pairing,
        program="coalition_points",
        terminal__merchant="grocer",
    ) as grocer:
        session = grocer.checkout.identify(DANA)
        assert session.view.balance == 200
        assert [o.offer_id for o in session.view.offers] == ["beanbar-bonus"]  # welcome used
        preview = grocer.checkout.preview(session, Purchase.of_amount(D("10.00")))
        assert preview.points == 10  # the grocer's rate, 1 a euro
        plan = grocer.checkout.plan_redemption(session, blocks=2, purchase_total=D("10.00"))
        assert plan.points == 200 and plan.discount == D("2.00")
        grocer.checkout.earn(session, Purchase.of_amount(D("10.00")), plan)
        grocer.sync.drain()
        assert grocer.outbox.stats().unsent == 0
    today = datetime.now(UTC).date()
    period = ("--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1)))
    shown = cli(server, "settlement", *period)
    assert shown.returncode == 0, shown.stderr
    rows = {row["merchant"]: row for row in csv.DictReader(io.StringIO(shown.stdout))}
    assert list(rows) == [OPERATOR, "fuel", "grocer", "pharmacy"]
    assert (rows["fuel"]["issued"], rows["fuel"]["spent"], rows["fuel"]["owes"]) == (
        "200",
        "200",
        "2.40",  # 200 of fuel's points at 0.012
    )
    assert (rows["grocer"]["redeemed_here"], rows["grocer"]["owed"]) == ("200", "2.40")
    assert rows["grocer"]["outstanding_at_end"] == "8"  # earned on the 8.00 left to pay
    payments = cli(server, "settlement", *period, "--payments")
    assert payments.stdout.splitlines()[1:] == ["fuel,grocer,200,0,2.40"]

    # The same report through the API, a merchant seeing only its own.
    def token_of(*who: str) -> str:
        issued = cli(server, "merchant", "token", *who)
        assert issued.returncode == 0, issued.stderr
        return issued.stdout.split("no longer works): ")[1].split()[0]

    def settlement(token: str) -> requests.Response:
        return requests.get(
            server.url + "/v1/settlement",
            params={"from": period[1], "to": period[3]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    first = token_of("grocer")
    grocer_token = token_of("grocer")  # a new one: the first stops working
    assert settlement(first).status_code == 401
    answer = settlement(grocer_token)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [m["merchant"] for m in report["merchants"]] == ["grocer"]
    assert report["merchants"][0]["owed"] == "2.40" and report["merchants"][0]["issued"] == 8
    assert report["payments"] == [
        {
            "payer": "fuel",
            "payee": "grocer",
            "payer_points_at_payee": 200,
            "payee_points_at_payer": 0,
            "amount": "2.40",
        }
    ]
    everyone = settlement(token_of("--operator")).json()
    assert [m["merchant"] for m in everyone["merchants"]] == [
        OPERATOR,
        "fuel",
        "grocer",
        "pharmacy",
    ]
    assert settlement(fuel_pairing["token"]).status_code == 401  # a till's token reads nothing


def test_the_server_warns_of_tills_of_a_merchant_its_programme_no_longer_names(
    database_url: str, tmp_path: Path
) -> None:
    source = (REPO / "config" / "programs" / "coalition_points.toml").read_text()
    without_pharmacy = source[: source.index('[[coalition.merchants]]\nid = "pharmacy"')]
    without_pharmacy += source[source.index("[tiers]") :]
    path = tmp_path / "coalition_without_pharmacy.toml"
    path.write_text(without_pharmacy)
    server = ServerProcess(database_url, tmp_path, LOYALTY_SERVER_PROGRAM=str(path))
    assert cli(server, "migrate").returncode == 0
    server.pairing_code("Counter 2", merchant="pharmacy")  # on record from before
    server.start()
    try:
        answer = requests.get(server.url + "/v1/health", timeout=10)
        assert answer.status_code == 401  # up
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "1 terminal(s) on record as merchant 'pharmacy'" in log
    assert "Traceback" not in log
