"""Strict input (issue 10, item 6, server side): names NFC-normalised with control,
bidi-override, zero-width characters and runs of combining marks refused; amounts ASCII
digits with at most the currency's decimals; keys UUIDs; card numbers with right check
digits; `phone_key` an HMAC hex, never a raw number. Each refused for its operation alone,
with a reason naming the field, and nothing recorded changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import select

from pos_client.domain import uuid7
from pos_client.ledger.schema import members
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, batch, headers, member_id, sale, snapshot


def enrollment(**fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    body: dict[str, Any] = {
        "type": "enroll",
        "key": uuid7(),
        "member_id": uuid7(),
        "first_name": "Zoe",
        "last_name": "Smith",
        "phone_key": "0123456789abcdef" * 4,
        "phone_last": "77",
        "card_number": "2900000009998",
        "birthday": None,
        "consent": {"text_id": "terms", "given_at": now, "channel": "kiosk"},
        "occurred_at": now,
    }
    body.update(fields)
    return body


BAD_NAMES = {
    "bidi override": "\u202eevil",
    "zero width space": "Zo\u200be",
    "zero width joiner": "Zo\u200de",
    "byte order mark": "\ufeffZoe",
    "C1 control": "Zo\u0085e",
    "line separator": "Zo\u2028e",
    "64 combining marks": "Z" + "\u0301" * 64,
    "private use": "Zo\ue000",
    "blank": " ",
    "Hangul filler": "\u3164",
    "Hangul jungseong filler": "\u1160",
    "combining grapheme joiner": "A\u034f",
    "Khmer inherent vowel": "A\u17b4",
    "Braille blank": "\u2800B",
    "no letter": "-'",
}
BAD_AMOUNTS = {
    "spaces": " 10 ",
    "underscore": "1_000",
    "Arabic-Indic digits": "١٠",
    "full-width digits": "１０",
    "three decimals": "10.001",
    "exponent": "1e3",
    "sign": "+10",
    "trailing point": "10.",
    "leading point": ".5",
    "a JSON number": 10,
}
BAD_KEYS = {
    "not a uuid": "not-a-uuid",
    "braces": "{" + uuid7() + "}",
    "no hyphens": uuid7().replace("-", ""),
    "urn": "urn:uuid:" + uuid7(),
    "non-ASCII hex": uuid7()[:-1] + "٣",
    # One key, one spelling: the same key in capitals was applied as a second operation.
    "upper-case hex": uuid7().upper(),
}
BAD_ENROLLMENTS = {
    "card check digit": {"card_number": "2900000009997"},
    "card with Arabic-Indic digits": {"card_number": "290000000999٨"},
    "card with spaces": {"card_number": "2900 0000 0999 8"},
    "raw phone as phone_key": {"phone_key": "+79123456789"},
    "digits as phone_key": {"phone_key": "79123456789"},
    "a number padded to 64 digits as phone_key": {"phone_key": "7" * 64},
    "both a phone and a phone_key": {"phone": "+16502530077"},
    "a birthday in the future": {"birthday": "2990-01-01"},
    "upper-case hex phone_key": {"phone_key": "AB" * 32},
    "short hex phone_key": {"phone_key": "ab" * 31},
    "phone_last not digits": {"phone_last": "x9"},
    **{f"first name {n}": {"first_name": v} for n, v in BAD_NAMES.items()},
    "last name bidi": {"last_name": "Smith\u202e"},
    # A member id is a URL path segment: one with "?" made /v1/members/{id} read another.
    "member id with a query": {"member_id": uuid7() + "?x"},
    "member id with a slash": {"member_id": "a/b"},
    "member id with a space": {"member_id": "a b"},
    "member id not ASCII": {"member_id": "éé"},
    "member id of 65 characters": {"member_id": "a" * 65},
}


def refused_alone(server: ServerProcess, token: str, bad: dict[str, Any]) -> dict[str, Any]:
    """Send the bad operation with a valid sale beside it: the bad one is refused (400)
    with a reason, the sale applied, nothing else recorded."""
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    results = batch(server, token, bad, sale(anna))
    assert results[0]["outcome"] == "rejected" and results[0]["status"] == 400, results[0]
    assert results[1]["outcome"] == "applied"
    after = snapshot(server)
    assert len(after["operations"]) == len(before["operations"]) + 1
    assert {k: v for k, v in after["balances"].items() if k != anna} == {
        k: v for k, v in before["balances"].items() if k != anna
    }
    return results[0]


def test_malformed_amounts_keys_and_enrollments_are_refused_each_alone(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    for name, amount in BAD_AMOUNTS.items():
        bad = sale(anna)
        bad["lines"][0]["amount"] = amount
        result = refused_alone(server, token, bad)
        assert "amount" in result["error"], name
    for name, key in BAD_KEYS.items():
        result = refused_alone(server, token, sale(anna, key=key))
        assert "UUID" in result["error"], name
    for name, fields in BAD_ENROLLMENTS.items():
        result = refused_alone(server, token, enrollment(**fields))
        field = next(iter(fields))
        assert result["error"].startswith(field), (name, result["error"])
        assert len(str(fields[field])) < 3 or str(fields[field]) not in result["error"]
    # Two decimals for EUR, a whole amount, an enrollment with a proper card and key: fine.
    good = [sale(anna, "12.5"), sale(anna, "7"), enrollment()]
    assert [r["outcome"] for r in batch(server, token, *good)] == ["applied"] * 3


def test_names_are_stored_in_nfc(server: ServerProcess) -> None:
    token = server.pair()["token"]
    body = enrollment(first_name="Zoe\u0301", last_name="Nguye\u0302\u0303n")
    assert batch(server, token, body)[0]["outcome"] == "applied"
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        row = conn.execute(
            select(members.c.first_name, members.c.last_name).where(
                members.c.id == body["member_id"]
            )
        ).one()
    ledger.engine.dispose()
    assert tuple(row) == ("Zoé", "Nguyễn")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "+79123456789"),
        ("phone", "79123456789"),
        ("card_number", "2900000009997"),
        ("card_number", "290000000999٨"),
    ],
)
def test_lookups_with_raw_phones_or_bad_card_numbers_are_422s(
    server: ServerProcess, kind: str, value: str
) -> None:
    token = server.pair()["token"]
    response = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": kind, "value": value},
        headers=headers(token),
        timeout=10,
    )
    assert response.status_code == 422
    assert value not in response.text and kind in json.dumps(response.json()["detail"])


BAD_LINE_TEXT = {
    "bidi override": "\u202ewine",
    "zero width space": "wi\u200bne",
    "private use": "wine\ue000",
    "line separator": "wi\u2028ne",
    "combining run": "wi\u0301\u0302\u0303ne",
}


@pytest.mark.parametrize("field", ["category", "sku"])
@pytest.mark.parametrize("case", BAD_LINE_TEXT)
def test_a_sale_line_category_or_sku_of_unprintable_text_is_refused_alone(
    server: ServerProcess, field: str, case: str
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    bad = sale(anna)
    bad["lines"][0][field] = BAD_LINE_TEXT[case]
    result = refused_alone(server, token, bad)
    assert result["error"].startswith(f"lines[0].{field}: "), result["error"]
    assert BAD_LINE_TEXT[case] not in result["error"]


def test_a_sale_line_category_and_sku_of_printable_text_in_any_script_apply(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    body = sale(anna)
    body["lines"][0].update(category="vīns-Zoé 葡萄酒", sku="4006381333931")
    assert batch(server, token, body)[0]["outcome"] == "applied"


def test_an_enrollments_phone_is_refused_with_what_is_wrong_with_it(server: ServerProcess) -> None:
    """A keyless terminal sends the number for the server to key: a number that is none, or
    one sent beside a phone_key, is refused alone naming the phone (it named phone_key, a
    field the terminal had not sent), in a batch and by the single enrollment endpoint."""
    from pos_client.checkout import new_card_number

    token = server.pair()["token"]
    no_key = enrollment(card_number=new_card_number())
    del no_key["phone_key"]
    cases = {
        "not a number": ({**no_key, "phone": "12345"}, "phone: not a valid phone number"),
        "a list": ({**no_key, "phone": ["+447911123456"]}, "phone: not a valid phone number"),
        "beside a phone_key": (
            enrollment(phone="+447911123456", card_number=new_card_number()),
            "phone: send a phone or a phone_key, not both",
        ),
    }
    for name, (body, reason) in cases.items():
        result = refused_alone(server, token, body)
        assert result["error"] == reason + (
            " (E.164: + and digits)" if "valid" in reason else ""
        ), name
        single = requests.post(
            server.url + "/v1/members",
            json={**body, "key": uuid7()},
            headers=headers(token),
            timeout=10,
        )
        assert single.status_code == 400 and single.json()["detail"].startswith(reason), name
    assert "+447911123456" not in server.log_path.read_text()


BAD_UNITS = {
    "negative": "-1",
    "exponent": "1e3",
    "a JSON number": 12,
    "four decimals": "1.2345",
    "eight digits": "10000000",
    "Arabic-Indic digits": "١٢",
    "spaces": " 12",
    "NaN": "NaN",
    "empty": "",
}


def test_malformed_units_of_a_sale_line_are_refused_each_alone(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    for name, units in BAD_UNITS.items():
        bad = sale(anna)
        bad["lines"][0]["units"] = units
        result = refused_alone(server, token, bad)
        assert result["error"].startswith("lines[0].units"), (name, result["error"])


@pytest.fixture
def airline_server(database_url: str, tmp_path: Any) -> Any:
    """A server on the airline preset (a fixture: stopped even when the test fails)."""
    from tests.security.conftest import running_server

    yield from running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM="airline_miles")


def test_airline_miles_over_http_earn_by_distance_and_refuse_an_impossible_segment(
    airline_server: ServerProcess,
) -> None:
    server = airline_server
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    flights = [sale(anna, "450.00"), sale(anna, "90.00"), sale(anna, "90.00")]
    flights[0]["lines"][0].update(units="3858", category="business")
    flights[1]["lines"][0]["units"] = "90"
    flights[2]["lines"][0]["units"] = "12001"  # longer than any segment
    results = batch(server, token, *flights)
    assert [r["result"]["points_earned"] for r in results[:2]] == [7716, 125]
    assert results[2]["status"] == 422 and "12000" in results[2]["error"]
    answer = requests.get(
        f"{server.url}/v1/members/{anna}", headers=headers(token), timeout=10
    ).json()
    assert answer["stats"]["units_in_period"] == "3948"
    assert answer["stats"]["segments_in_period"] == 2


def test_units_on_a_programme_without_them_are_refused_and_change_nothing(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    bad = sale(anna)
    bad["lines"][0]["units"] = "5"  # category_tiers earns by no units
    (result,) = batch(server, token, bad)
    assert (result["status"], result["code"]) == (422, "units_not_earned")
    assert result["error"].startswith("lines[0].units")
    assert snapshot(server) == before


def test_the_age_gate_holds_over_http_whatever_a_till_claims(
    database_url: str, tmp_path: Any
) -> None:
    """A till claiming a guardian for a ten-year-old, or sending no birthday, is refused
    (422 with the reason); a minor with a guardian joins."""
    from tests.security.conftest import running_server

    program = tmp_path / "adults.toml"
    program.write_text(
        'id = "adults"\nname = "Adults"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\n'
        'id = "m"\nname = "M"\n[membership]\nmin_age = 18\nguardian_from_age = 13\n'
    )
    for server in running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program)):
        token = server.pair()["token"]
        before = snapshot(server)
        ten = enrollment(birthday="2016-01-01", card_number="2900000010000")
        ten["consent"]["guardian"] = True
        results = batch(server, token, enrollment(), ten)
        assert [(r["status"], r["code"]) for r in results] == [
            (422, "birthday_required"),
            (422, "too_young"),
        ]
        assert snapshot(server) == before
        alone = requests.post(
            server.url + "/v1/members",
            json=ten | {"key": uuid7()},
            headers=headers(token),
            timeout=10,
        )
        assert (alone.status_code, alone.json()["code"]) == (422, "too_young")
        for odd in ({"birthday": "20100601"}, {"birthday": 20100601}):
            (malformed,) = batch(server, token, enrollment(**odd, card_number="2900000010024"))
            assert (malformed["status"], malformed["error"]) == (
                400,
                "birthday: expected YYYY-MM-DD",
            )
        loose = enrollment(birthday="2010-06-01", card_number="2900000010024")
        loose["consent"]["guardian"] = "true"
        assert batch(server, token, loose)[0]["error"] == "consent.guardian: true or false"
        assert snapshot(server) == before
        minor = enrollment(birthday="2010-06-01", card_number="2900000010017")
        minor["consent"]["guardian"] = True
        (joined,) = batch(server, token, minor)
        assert joined["outcome"] == "applied", joined


def test_joining_by_invitation_holds_over_http_whatever_a_till_claims(
    database_url: str, tmp_path: Any
) -> None:
    """A till's enrollment without an inviter, or naming no member, is refused (422); one
    naming a member with invitations left joins."""
    from tests.security.conftest import running_server

    program = tmp_path / "club.toml"
    program.write_text(
        'id = "club"\nname = "Club"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\n'
        'id = "m"\nname = "M"\n[membership]\ninvitation = true\n'
    )
    for server in running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program)):
        token = server.pair()["token"]
        anna = member_id(server, ANNA.card_number)  # seeded by the operator
        before = snapshot(server)
        nobody = enrollment(invited_by="no-such-member", card_number="2900000010000")
        results = batch(server, token, enrollment(), nobody)
        assert [(r["status"], r["code"]) for r in results] == [
            (422, "invitation_required"),
            (422, "unknown_inviter"),
        ]
        assert snapshot(server) == before
        (joined,) = batch(server, token, enrollment(invited_by=anna, card_number="2900000010017"))
        assert joined["outcome"] == "applied", joined
