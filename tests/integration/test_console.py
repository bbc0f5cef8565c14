"""The store console over HTTP against the server as a real process, on SQLite and
PostgreSQL: sign-in, sessions, CSRF, roles, the audit log, and each page's data."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase, uuid7
from pos_client.operations import SaleOp
from tests.conftest import REPO
from tests.console_client import ConsoleUser, add_user, error_of
from tests.integration.server_helpers import ServerProcess

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
PAGES = ("/", "/members", "/terminals", "/flags", "/audit", "/exports")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path, LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY="3")
    process.seed()
    process.start()
    add_user(process, "maria", "manager")
    add_user(process, "otto", "auditor")
    yield process
    process.stop()


def signed_in(server: ServerProcess, name: str = "maria") -> ConsoleUser:
    user = ConsoleUser(server)
    assert user.log_in(name).status_code == 303
    return user


def member_id_of(server: ServerProcess, card_number: str) -> str:
    ledger = server.ledger()
    found = ledger.find_member_id("card_number", card_number)
    ledger.engine.dispose()
    assert found
    return found


def balance_of(server: ServerProcess, member_id: str) -> int:
    ledger = server.ledger()
    record = ledger.member(member_id)
    ledger.engine.dispose()
    assert record is not None
    return record.balance


def audit_rows(user: ConsoleUser) -> list[list[str]]:
    page = user.get("/audit").text
    body = page.split('<table id="audit">', 1)[1].split("</table>", 1)[0]
    rows = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    return [row for row in rows if len(row) == 6]  # not the header, nor "Nothing yet."


def sell(server: ServerProcess, member_id: str, amount: str, count: int = 1) -> None:
    token = server.pair("till")["token"]
    operations = [
        SaleOp(
            uuid7(), member_id, "T", datetime.now(UTC), Purchase.of_amount(Decimal(amount))
        ).to_body()
        for _ in range(count)
    ]
    requests.post(
        server.url + "/v1/operations/batch",
        json={"operations": operations},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).raise_for_status()


def test_every_page_needs_a_session_and_answers_with_strict_headers(
    server: ServerProcess,
) -> None:
    stranger = ConsoleUser(server)
    for page in (*PAGES, "/members/x", "/exports/members.csv"):
        answer = stranger.get(page, allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    user = signed_in(server)
    cookie = next(c for c in user.http.cookies if c.name == "console_session")
    assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
    raw = user.log_in("maria").headers["set-cookie"]
    assert "HttpOnly" in raw and "SameSite=strict" in raw
    for page in PAGES:
        answer = user.get(page)
        assert answer.status_code == 200, page
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert 'id="signed-in-as">maria' in answer.text
    # A forged or tampered cookie is no session.
    forged = ConsoleUser(server)
    forged.http.cookies.set("console_session", cookie.value[:-2] + "xx", path="/console")
    assert forged.get("/", allow_redirects=False).status_code == 303


def test_wrong_passwords_lock_the_account_even_for_the_right_one(server: ServerProcess) -> None:
    user = ConsoleUser(server)
    for _ in range(4):
        answer = user.log_in("maria", "not the password")
        assert answer.status_code == 403 and error_of(answer) == "Wrong name or password."
    locked = user.log_in("maria", "still not it")
    assert "locked until" in error_of(locked)
    assert "locked until" in error_of(user.log_in("maria"))  # the right password, refused
    assert "(UTC)" in error_of(locked)
    assert user.get("/", allow_redirects=False).status_code == 303
    # An unknown name is answered like a wrong password (no list of accounts).
    assert error_of(user.log_in("nobody", "whatever at all")) == "Wrong name or password."
    other = signed_in(server, "otto")
    locks = [row for row in audit_rows(other) if row[2] == "locked"]
    assert [row[1] for row in locks] == ["maria"]  # once, when it locked


def test_a_form_without_its_csrf_token_changes_nothing(server: ServerProcess) -> None:
    user = signed_in(server)
    member = member_id_of(server, ANNA.card_number)
    before = balance_of(server, member)
    refused = user.post(
        f"/members/{member}/adjust",
        {"points": 100, "reason": "goodwill", "key": uuid7()},
        csrf=False,
    )
    assert refused.status_code == 403 and "not sent by the console" in error_of(refused)
    wrong = user.post(
        f"/members/{member}/adjust",
        {"points": 100, "reason": "goodwill", "key": uuid7(), "csrf": "x" * 43},
        csrf=False,
    )
    assert wrong.status_code == 403
    # Another session's token is no good either.
    other = signed_in(server)
    stolen = other.csrf()
    assert (
        user.post(
            f"/members/{member}/adjust",
            {"points": 100, "reason": "goodwill", "key": uuid7(), "csrf": stolen},
            csrf=False,
        ).status_code
        == 403
    )
    # Nor is a login form's post without its cookie's token.
    bare = requests.post(
        server.url + "/console/login",
        data={"name": "maria", "password": "correct horse battery", "login_csrf": "x"},
        timeout=10,
        allow_redirects=False,
    )
    assert bare.status_code == 403
    assert balance_of(server, member) == before
    assert not [row for row in audit_rows(user) if row[2] == "adjust"]


def test_an_auditor_reads_everything_and_changes_nothing(server: ServerProcess) -> None:
    auditor = signed_in(server, "otto")
    member = member_id_of(server, ANNA.card_number)
    before = balance_of(server, member)
    for page in (*PAGES, f"/members/{member}"):
        assert auditor.get(page).status_code == 200
    assert "adjust-form" not in auditor.get(f"/members/{member}").text
    changes: list[tuple[str, dict[str, Any]]] = [
        (f"/members/{member}/adjust", {"points": 5, "reason": "goodwill", "key": uuid7()}),
        (f"/members/{member}/block", {"reason": "lost card"}),
        (f"/members/{member}/link", {"kind": "card_uid", "value": "0A0B0C0D", "reason": "new"}),
        ("/terminals", {"name": "Till 9"}),
    ]
    for path, form in changes:
        answer = auditor.post(path, form)
        assert answer.status_code == 403, path
        assert "auditor" in error_of(answer)
    assert balance_of(server, member) == before
    assert "Till 9" not in auditor.get("/terminals").text
    assert [row[2] for row in audit_rows(auditor)] == ["sign-in"]
    # Searching is reading: an auditor may.
    found = auditor.post("/members", {"by": "card", "value": ANNA.card_number}, page="/members")
    assert ANNA.last_name in found.text


def test_a_manager_adjusts_points_once_with_a_reason_in_the_audit_log(
    server: ServerProcess,
) -> None:
    user = signed_in(server)
    member = member_id_of(server, ANNA.card_number)
    before = balance_of(server, member)
    page = f"/members/{member}"
    key = re.search(r'name="key" value="([^"]+)"', user.get(page).text)
    assert key
    form = {"points": 250, "reason": "birthday voucher not applied", "key": key.group(1)}
    assert user.post(f"{page}/adjust", form, page=page).status_code == 303
    again = user.post(f"{page}/adjust", form, page=page)  # sent twice
    assert again.status_code == 303 and again.headers["location"].endswith("notice=already")
    assert "nothing changed" in user.get(again.headers["location"].removeprefix("/console")).text
    assert balance_of(server, member) == before + 250
    shown = user.get(page + "?notice=adjusted").text
    assert re.search(r'id="balance">[^<]*' + f"{before + 250:,}".replace(",", "\u202f"), shown)
    assert "Points adjusted." in shown
    entries = [row for row in audit_rows(user) if row[2] == "adjust"]
    assert len(entries) == 1
    assert entries[0][1] == "maria" and entries[0][5] == "birthday voucher not applied"
    assert "+250 points" in entries[0][4]
    # No reason, a zero, or a balance below zero: refused, nothing moves.
    for bad in (
        {"points": 5, "reason": "", "key": uuid7()},
        {"points": 0, "reason": "nothing", "key": uuid7()},
        {"points": -(before + 10_000), "reason": "take all", "key": uuid7()},
        {"points": "12.5", "reason": "fraction", "key": uuid7()},
    ):
        answer = user.post(f"{page}/adjust", bad, page=page)
        assert answer.status_code == 422 and error_of(answer), bad
    assert balance_of(server, member) == before + 250


def test_members_are_found_by_card_by_name_and_digits_and_by_whole_phone(
    server: ServerProcess,
) -> None:
    user = signed_in(server)
    by_card = user.post("/members", {"by": "card", "value": BOB.card_number}, page="/members")
    assert "Smith" in by_card.text and "Karenina" not in by_card.text
    by_uid = user.post("/members", {"by": "card", "value": ANNA.card_uid.lower()}, page="/members")
    assert "Karenina" in by_uid.text
    digits = user.post(
        "/members",
        {"by": "name", "first_name": "anna", "value": ANNA.phone[-4:]},
        page="/members",
    )
    assert "Karenina" in digits.text and "Smith" not in digits.text
    wrong = user.post(
        "/members", {"by": "name", "first_name": "Bob", "value": ANNA.phone[-2:]}, page="/members"
    )
    assert "No member found." in wrong.text
    phone = user.post("/members", {"by": "phone", "value": BOB.phone}, page="/members")
    assert "Smith" in phone.text
    bad = user.post("/members", {"by": "phone", "value": "12345"}, page="/members")
    assert "country code" in error_of(bad)
    server.stop()
    log = server.log_path.read_text()
    assert BOB.phone not in log and BOB.phone[1:] not in log and BOB.card_number not in log


def test_blocking_and_linking_cards_is_audited_and_a_taken_card_is_refused(
    server: ServerProcess,
) -> None:
    user = signed_in(server)
    member = member_id_of(server, ANNA.card_number)
    page = f"/members/{member}"
    assert user.post(f"{page}/block", {"reason": "reported stolen"}, page=page).status_code == 303
    shown = user.get(page).text
    assert "(blocked)" in shown and ANNA.card_uid not in shown  # masked: last 4 only
    assert f"blocked card number {'•' * 9}{ANNA.card_number[-4:]}" in shown
    # The stolen card's barcode identifies nobody now, at the console or at a till.
    gone = user.post("/members", {"by": "card", "value": ANNA.card_number}, page="/members")
    assert "No member found." in gone.text
    token = server.pair("till")["token"]
    looked_up = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "card_number", "value": ANNA.card_number},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert looked_up.status_code == 404
    # Nor does anybody join with it at a till.
    from tests.integration.ledger_helpers import enroll_body

    joined = requests.post(
        server.url + "/v1/operations/batch",
        json={"operations": [enroll_body(str(uuid7()), "ab" * 32, card=ANNA.card_number)]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["results"][0]
    assert joined.get("code") == "card_blocked", str(joined)[-300:]
    assert (
        user.post(
            f"{page}/link",
            {"kind": "card_uid", "value": "0a 0b 0c 0d", "reason": "new card"},
            page=page,
        ).status_code
        == 303
    )
    assert "card UID ••••0C0D" in user.get(page).text
    bob = member_id_of(server, BOB.card_number)
    taken = user.post(
        f"/members/{bob}/link",
        {"kind": "card_uid", "value": "0A0B0C0D", "reason": "mistake"},
        page=page,
    )
    assert taken.status_code == 409
    blocked_again = user.post(
        f"/members/{bob}/link",
        {"kind": "card_uid", "value": ANNA.card_uid, "reason": "found it"},
        page=page,
    )
    assert blocked_again.status_code == 409
    wrong_digit = ANNA.card_number[:-1] + str((int(ANNA.card_number[-1]) + 1) % 10)
    assert "check digit" in error_of(
        user.post(
            f"{page}/link",
            {"kind": "card_number", "value": wrong_digit, "reason": "typo"},
            page=page,
        )
    )
    relinked = user.post(
        f"{page}/link",
        {"kind": "card_number", "value": ANNA.card_number, "reason": "found it"},
        page=page,
    )
    assert relinked.status_code == 409  # a blocked number stays blocked
    spaced = " ".join(BOB.card_number[i : i + 4] for i in range(0, 13, 4))
    assert "Smith" in user.post("/members", {"by": "card", "value": spaced}, "/members").text
    for bad in ("xyz", "0A0B0C", "0A" * 11):
        assert (
            user.post(
                f"{page}/link", {"kind": "card_uid", "value": bad, "reason": "r" * 5}, page=page
            ).status_code
            == 422
        )
    actions = [row[2] for row in audit_rows(user)]
    assert actions.count("block-cards") == 1 and actions.count("link-card") == 1


def test_flags_are_approved_or_reversed_as_audited_operations(server: ServerProcess) -> None:
    user = signed_in(server)
    anna = member_id_of(server, ANNA.card_number)
    bob = member_id_of(server, BOB.card_number)
    sell(server, anna, "10.00", 4)
    sell(server, bob, "20.00", 4)
    page = user.get("/flags").text
    assert f'data-member="{anna}"' in page and f'data-member="{bob}"' in page
    today = re.search(rf"/console/flags/{anna}/([0-9-]+)/approve", page)
    assert today
    day = today.group(1)
    before = balance_of(server, bob)
    assert (
        user.post(
            f"/flags/{anna}/{day}/approve", {"reason": "a family's shopping"}, page="/flags"
        ).status_code
        == 303
    )
    assert (
        user.post(
            f"/flags/{bob}/{day}/reverse", {"reason": "split purchases"}, page="/flags"
        ).status_code
        == 303
    )
    after = balance_of(server, bob)
    assert after < before
    again = user.post(f"/flags/{bob}/{day}/reverse", {"reason": "twice"}, page="/flags")
    assert again.status_code == 409 and balance_of(server, bob) == after
    rows = audit_rows(user)
    assert [row[2] for row in rows[:2]] == ["flag-reverse", "flag-approve"]
    assert rows[0][5] == "split purchases" and f"-{before - after} points" in rows[0][4]
    assert (
        user.post(
            f"/flags/{anna}/2001-01-01/approve", {"reason": "no such"}, page="/flags"
        ).status_code
        == 404
    )


def test_pairing_renaming_and_revoking_terminals(server: ServerProcess) -> None:
    user = signed_in(server)
    answer = user.post("/terminals", {"name": "Front till"}, page="/terminals")
    code = re.search(r'id="pairing-code">([A-Z0-9]+)<', answer.text)
    assert code and "<svg" in answer.text and f"{server.url} {code.group(1)}" in answer.text
    paired = requests.post(
        server.url + "/v1/terminals/pair", json={"code": code.group(1)}, timeout=10
    )
    assert paired.status_code == 200
    terminal_id, token = paired.json()["terminal_id"], paired.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(server.url + "/v1/program", headers=auth, timeout=10).status_code == 200
    path = f"/terminals/{terminal_id}"
    assert (
        user.post(f"{path}/rename", {"name": "Till by the door"}, "/terminals").status_code == 303
    )
    assert 'data-terminal="Till by the door"' in user.get("/terminals").text
    assert user.post(f"{path}/rename", {"name": " "}, "/terminals").status_code == 422
    again = user.post("/terminals", {"name": "Till by the door"}, page="/terminals")
    assert again.status_code == 409  # a reload of the pairing form makes no second till
    assert user.post(f"{path}/revoke", {"reason": "stolen"}, "/terminals").status_code == 303
    assert requests.get(server.url + "/v1/program", headers=auth, timeout=10).status_code == 401
    actions = [row[2] for row in audit_rows(user)]
    assert {"add-terminal", "rename-terminal", "revoke-terminal"} <= set(actions)


def test_signing_out_ends_the_session_for_a_copied_cookie_too(server: ServerProcess) -> None:
    user = signed_in(server)
    copy = ConsoleUser(server)
    copy.http.cookies.update(user.http.cookies)
    assert copy.get("/").status_code == 200
    assert user.post("/logout", {}).status_code == 303
    assert copy.get("/", allow_redirects=False).status_code == 303


def test_exports_are_csv_a_spreadsheet_cannot_run(server: ServerProcess) -> None:
    user = signed_in(server)
    anna = member_id_of(server, ANNA.card_number)
    ledger = server.ledger()
    with ledger.writer.begin() as conn:
        from pos_client.ledger.schema import members

        conn.execute(members.update().where(members.c.id == anna).values(last_name="=HYPERLINK(1)"))
    ledger.engine.dispose()
    sell(server, anna, "12.00")
    table = list(csv.reader(io.StringIO(user.get("/exports/members.csv").text)))
    assert table[0][:2] == ["member_id", "first_name"] and len(table) == 1 + len(DEMO_MEMBERS)
    assert [row[2] for row in table if row[0] == anna] == ["'=HYPERLINK(1)"]
    today = datetime.now(UTC).date().isoformat()
    tx = list(
        csv.reader(
            io.StringIO(user.get(f"/exports/transactions.csv?start={today}&end={today}").text)
        )
    )
    assert any(row[2] == anna and row[3] == "earn" for row in tx[1:])
    assert user.get("/exports/transactions.csv?start=2020-01-01&end=2026-01-01").status_code == 422
    liability = list(csv.reader(io.StringIO(user.get("/exports/liability.csv").text)))
    assert (
        liability[0] == ["store_day", "outstanding_points", "money_value"] and len(liability) == 31
    )
    assert [row[2] for row in audit_rows(user)].count("export") == 3


def test_the_dashboard_counts_today_and_its_liability_ends_at_the_balances(
    server: ServerProcess,
) -> None:
    anna = member_id_of(server, ANNA.card_number)
    sell(server, anna, "100.00", 2)
    user = signed_in(server)
    page = user.get("/").text
    assert page.count("<svg") == 2
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        from sqlalchemy import func, select

        from pos_client.ledger.schema import members

        total = int(conn.execute(select(func.sum(members.c.balance))).scalar_one())
    ledger.engine.dispose()
    outstanding = re.search(r'id="liability">.*?class="big">([^<]+)<', page, re.S)
    assert outstanding and int(outstanding.group(1).replace("\u202f", "")) == total
    liability = list(csv.reader(io.StringIO(user.get("/exports/liability.csv").text)))
    assert int(liability[-1][1]) == total
    sales_today = re.search(r"Sales with loyalty</div>\s*<div class=\"big\">([^<]+)<", page)
    assert sales_today and int(sales_today.group(1)) >= 2


def program_text(rate: int = 5) -> str:
    source = (REPO / "config/programs/category_tiers.toml").read_text()
    return source.replace("rate = 1\n", f"rate = {rate}\n", 1)


def upload(user: ConsoleUser, text: str, when: str) -> requests.Response:
    return user.http.post(
        user.base + "/program/preview",
        data={"csrf": user.csrf("/program"), "activate_at": when},
        files={"file": ("spring.toml", text.encode(), "application/toml")},
        timeout=30,
    )


def test_a_programme_upload_is_checked_previewed_scheduled_and_served_to_terminals(
    server: ServerProcess,
) -> None:
    import time

    user = signed_in(server)
    token = server.pair("till")["token"]
    auth = {"Authorization": f"Bearer {token}"}
    first = requests.get(server.url + "/v1/program", headers=auth, timeout=10)
    zone_now = datetime.now(UTC)  # the server's zone is UTC here
    soon = (zone_now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    broken = upload(user, "id = 3\n", soon)
    assert broken.status_code == 422 and "spring.toml" in error_of(broken)
    binary = upload(user, 'id = "x"\x00\n', soon)
    assert binary.status_code == 422 and error_of(binary)
    preview = upload(user, program_text(5), soon)
    assert preview.status_code == 200, error_of(preview)
    changes = re.search(r'<ul id="changes">(.*?)</ul>', preview.text, re.S)
    assert changes and "5" in changes.group(1)
    source = re.search(r'<input type="hidden" name="source" value="([^"]+)">', preview.text)
    version_shown = re.search(r"Preview of version <code>([0-9a-f]+)</code>", preview.text)
    assert source and version_shown
    activate = user.post(
        "/program/activate",
        {"source": source.group(1), "activate_at": soon, "reason": "spring"},
        page="/program",
    )
    assert activate.status_code == 303, error_of(activate)
    page = user.get("/program?notice=scheduled").text
    assert f'data-version="{version_shown.group(1)}"><td><code>' in page  # as previewed
    assert re.search(r'<td class="status">scheduled</td>', page) and "is scheduled" in page
    past = upload(user, program_text(6), "2020-01-01T00:00")
    assert past.status_code == 422 and "in the past" in error_of(past)
    assert audit_rows(user)[0][2] == "program-upload"
    # The terminal's programme changes at the activation time, not before.
    assert (
        requests.get(server.url + "/v1/program", headers=auth, timeout=10).json()["version"]
        == first.json()["version"]
    )
    deadline = time.monotonic() + 90
    version = first.json()["version"]
    while version == first.json()["version"] and time.monotonic() < deadline:
        time.sleep(1)
        version = requests.get(server.url + "/v1/program", headers=auth, timeout=10).json()[
            "version"
        ]
    assert version != first.json()["version"]
    assert re.search(r'id="active-version">' + version, user.get("/program").text)


def test_an_unknown_name_locks_like_an_account_and_a_new_password_ends_old_sessions(
    server: ServerProcess,
) -> None:
    stranger = ConsoleUser(server)
    answers = [error_of(stranger.log_in("ghost", f"guess number {i}")) for i in range(5)]
    assert answers[:4] == ["Wrong name or password."] * 4
    assert "locked until" in answers[4]  # as an account's fifth wrong password
    user = signed_in(server)
    assert user.get("/").status_code == 200
    add_user(server, "maria", "manager", "a brand new passphrase")
    assert user.get("/", allow_redirects=False).status_code == 303


def test_phone_searches_are_bounded_and_logged_and_a_used_form_key_stays_its_own(
    server: ServerProcess,
) -> None:
    auditor = signed_in(server, "otto")
    answers = [
        auditor.post("/members", {"by": "phone", "value": f"+3712000{i:04d}"}, "/members")
        for i in range(11)
    ]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    manager = signed_in(server)
    searches = [row for row in audit_rows(manager) if row[2] == "search"]
    assert len(searches) == 10 and {row[1] for row in searches} == {"otto"}
    assert all("+371" not in " ".join(row) for row in searches)
    anna = member_id_of(server, ANNA.card_number)
    bob = member_id_of(server, BOB.card_number)
    key = uuid7()
    first = manager.post(f"/members/{anna}/adjust", {"points": 3, "reason": "one", "key": key})
    assert first.status_code == 303
    before = balance_of(server, bob)
    other = manager.post(f"/members/{bob}/adjust", {"points": 999, "reason": "two", "key": key})
    assert other.status_code == 409 and balance_of(server, bob) == before
    letters = manager.post(f"/members/{bob}/adjust", {"points": "1e3", "reason": "x" * 5})
    assert letters.status_code == 422 and "(points)" in error_of(letters)
    assert 'id="signed-in-as">maria' in letters.text  # the menu stays on an error page
    # Its language links lead to a page one can read (not the form's POST-only address).
    switched = manager.get(f"/language?to=ru&next=/console/members/{bob}/adjust")
    assert switched.status_code == 200 and switched.url.endswith("/console/")
    kept = manager.get(f"/language?to=en&next=/console/members/{bob}")
    assert kept.url.endswith(f"/console/members/{bob}")


def test_hostile_programme_uploads_and_times_are_refused_or_read_exactly(
    server: ServerProcess,
) -> None:
    from loyalty_server.program_versions import stored_versions
    from pos_client.ledger import make_engine

    user = signed_in(server)
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    deep = upload(user, "a = " + "[" * 5000 + "]" * 5000 + "\n", later)
    assert deep.status_code == 422
    dotted = "[earn.category_rates" + ".a" * 1000 + "]\n" + program_text(8)
    assert upload(user, dotted, later).status_code == 422
    bidi = user.post(
        f"/members/{member_id_of(server, BOB.card_number)}/adjust",
        {"points": 5, "reason": "\u202eevil reason", "key": uuid7()},
    )
    assert bidi.status_code == 422
    soon = datetime.now(UTC) + timedelta(hours=3)
    offset = soon.astimezone(timezone(timedelta(hours=5)))
    text = offset.strftime("%Y-%m-%dT%H:%M:%S+05:00")
    preview = upload(user, program_text(7), text)
    assert preview.status_code == 200, error_of(preview)
    source = re.search(r'<input type="hidden" name="source" value="([^"]+)">', preview.text)
    when = re.search(r'<input type="hidden" name="activate_at" value="([^"]+)">', preview.text)
    assert source and when
    done = user.post(
        "/program/activate",
        {"source": source.group(1), "activate_at": when.group(1), "reason": "with an offset"},
        "/program",
    )
    assert done.status_code == 303
    engine = make_engine(server.database_url)
    stored = stored_versions(engine)
    engine.dispose()
    assert [v.activate_at for v in stored] == [soon.replace(microsecond=0)]
    server.stop()
    assert "RecursionError" not in server.log_path.read_text()
