"""Oracles a terminal's token should not open (second review, items 2 and 3): enrollments
refused as `identifier_taken` count against the per-terminal phone-lookup limit, and a $0
sale with no redemption (which answered any member's balance, unlimited) is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import requests

from pos_client.domain import Purchase, uuid7
from pos_client.operations import RedemptionRequest, SaleOp
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, BOB, batch, headers, member_id, sale, snapshot
from tests.security.test_strict_input import enrollment

PHONE_LOOKUPS_PER_MINUTE = 30  # the default; the suite does not change it


def enrolling(phone: str) -> dict[str, object]:
    """An enrollment as a keyless terminal sends it: the number, keyed by the server."""
    body = enrollment(card_number="")
    del body["phone_key"], body["card_number"]
    from pos_client.checkout import new_card_number

    return {**body, "phone": phone, "card_number": new_card_number()}


def test_enrollments_refused_as_taken_count_against_the_phone_lookup_limit(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    before = snapshot(server)
    # A batch probing 40 phones (here all Anna's): 30 answers, then the lookups' 429.
    results = batch(server, token, *[enrolling(ANNA.phone) for _ in range(40)])
    codes = [(r["status"], r["code"]) for r in results]
    assert codes[:PHONE_LOOKUPS_PER_MINUTE] == [(422, "identifier_taken")] * 30, codes
    assert codes[PHONE_LOOKUPS_PER_MINUTE:] == [(429, "rate_limited")] * 10, codes
    assert results[-1]["outcome"] == "retry" and "phone lookups" in results[-1]["error"]
    assert snapshot(server) == before
    # The same limit as lookups: this terminal's phone lookups are spent too, and a single
    # enrollment is answered as a lookup would be.
    lookup = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "phone_number", "value": BOB.phone},
        headers=headers(token),
        timeout=10,
    )
    assert lookup.status_code == 429
    single = requests.post(
        server.url + "/v1/members", json=enrolling(BOB.phone), headers=headers(token), timeout=10
    )
    assert single.status_code == 429 and "phone lookups" in single.json()["detail"]
    # Another terminal is not slowed down by this one, and a new member still joins.
    other = server.pair("other")["token"]
    assert batch(server, other, enrolling(ANNA.phone))[0]["code"] == "identifier_taken"
    assert batch(server, other, enrolling("+447911123456"))[0]["outcome"] == "applied"


def test_a_zero_sale_without_redemption_is_refused_and_answers_no_balance(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    two_zero_lines = sale(anna, "0", lines=[{"amount": "0.00"}, {"amount": "0"}])
    results = batch(server, token, sale(anna, "0"), sale(anna, "0.00"), two_zero_lines)
    for result in results:
        assert (result["status"], result["code"]) == (400, "bad_request"), result
        assert "no amount and no redemption" in result["error"]
        assert result["result"] is None
    # (No lines at all was refused already: a sale has 1 to 500 lines.)
    assert batch(server, token, sale(anna, "0", lines=[]))[0]["result"] is None
    # Refused before the member is looked at: an unknown member gets the same answer.
    assert batch(server, token, sale(uuid7(), "0"))[0]["code"] == "bad_request"
    assert snapshot(server) == before


def test_a_cashiers_reward_redemption_with_nothing_to_pay_still_applies(
    server: ServerProcess,
) -> None:
    """What pos_client.checkout sends for a reward redeemed on its own: a $0 purchase with the
    redemption (Checkout.redeem); it records the redemption, so it is no read."""
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    balance = server.ledger().member(anna).balance  # type: ignore[union-attr]
    op = SaleOp(
        uuid7(),
        anna,
        "T",
        datetime.now(UTC),
        Purchase.of_amount(Decimal(0)),
        RedemptionRequest(reward_id="gift-card-25", points=5000),
    )
    [result] = batch(server, token, op.to_body())
    assert result["outcome"] == "applied", result
    assert result["result"]["points_redeemed"] == 5000
    assert result["result"]["balance"] == balance - 5000
