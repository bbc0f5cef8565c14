"""Secure cards (issue 12) against a live server on loopback: a genuine NTAG 424 DNA message
identifies its member once; the same message again (a replay, or a copy of the card), an
altered or spliced one, and one that is no card's are refused with a clear status, recorded
as security events for the store, and change nothing recorded. The keys are AN12196's
all-zero test keys, so the published messages are genuine ones."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from loyalty_server.schema import security_events
from pos_client.demo import DEMO_MEMBERS
from pos_client.ledger.card_counters import last_counter
from tests.conftest import REPO
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, headers, member_id, snapshot
from tests.security.conftest import running_server

UID = "04958CAA5C5E80"
GENUINE = (
    "https://loyalty.example/c?picc_data=FD91EC264309878BE6345CBE53BADF40"
    "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6"
)
FORGED = GENUINE.replace("ECC1E7F6C6C73BF6", "ECC1E7F6C6C73BF7")
UNREADABLE = GENUINE.replace("FD91EC26", "FD91EC27")
MALFORMED = "https://loyalty.example/c?picc_data=FD91&cmac=ECC1E7F6C6C73BF6"


def write_keys(folder: Path, mode: int = 0o600) -> Path:
    path = folder / "card-keys.toml"
    path.write_text(
        f'meta_read_key = "{"0" * 32}"\nfile_read_key = "{"0" * 32}"\ndiversify = false\n'
    )
    path.chmod(mode)
    return path


@pytest.fixture
def card_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    keys = write_keys(tmp_path)
    yield from running_server(database_url, tmp_path, LOYALTY_SERVER_SUN_KEYS_FILE=str(keys))


def tap(server: ServerProcess, token: str, url: str) -> requests.Response:
    return requests.post(
        server.url + "/v1/cards/tap", json={"url": url}, headers=headers(token), timeout=30
    )


def events(server: ServerProcess) -> list[tuple[str, str | None]]:
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(security_events.c.kind, security_events.c.card).order_by(security_events.c.id)
        ).all()
    ledger.engine.dispose()
    return [(kind, card) for kind, card in rows]


def test_a_genuine_card_identifies_its_member_once_and_its_replay_is_refused(
    card_server: ServerProcess,
) -> None:
    token = card_server.pair()["token"]
    ledger = card_server.ledger()
    ledger.link_identifier(member_id(card_server, ANNA.card_number), "card_uid", UID)
    ledger.engine.dispose()
    before = snapshot(card_server)
    answer = tap(card_server, token, GENUINE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["member_id"] == member_id(card_server, ANNA.card_number)
    replayed = tap(card_server, token, GENUINE)
    assert replayed.status_code == 409
    assert "already used" in replayed.json()["detail"]
    assert events(card_server) == [("replayed", UID)]
    assert last_counter(card_server.ledger().engine, bytes.fromhex(UID)) == 8
    assert snapshot(card_server) == before  # a tap identifies; it records no sale
    log = card_server.log_path.read_text()
    assert UID not in log.upper() and "security event at terminal" in log


@pytest.mark.parametrize(
    ("url", "status", "kind"),
    [(FORGED, 403, "forged"), (UNREADABLE, 403, "unreadable"), (MALFORMED, 400, "malformed")],
)
def test_an_altered_or_foreign_message_is_refused_and_recorded(
    card_server: ServerProcess, url: str, status: int, kind: str
) -> None:
    token = card_server.pair()["token"]
    before = snapshot(card_server)
    answer = tap(card_server, token, url)
    assert answer.status_code == status, answer.text
    assert events(card_server) == [(kind, None)]
    assert last_counter(card_server.ledger().engine, bytes.fromhex(UID)) is None
    assert snapshot(card_server) == before
    # The genuine message is still good: a refused forgery spent nothing of the card.
    assert tap(card_server, token, GENUINE).status_code == 404  # genuine, linked to no one


def test_a_genuine_card_linked_to_no_member_is_a_clear_404(card_server: ServerProcess) -> None:
    token = card_server.pair()["token"]
    answer = tap(card_server, token, GENUINE)
    assert answer.status_code == 404
    assert answer.json()["detail"] == "a genuine card, linked to no member"


def test_a_server_without_card_keys_says_so(server: ServerProcess) -> None:
    answer = tap(server, server.pair()["token"], GENUINE)
    assert answer.status_code == 403
    assert "not set up" in answer.json()["detail"]


def test_a_tap_needs_a_terminal_token(card_server: ServerProcess) -> None:
    answer = requests.post(card_server.url + "/v1/cards/tap", json={"url": GENUINE}, timeout=30)
    assert answer.status_code == 401
    assert events(card_server) == []


@pytest.mark.parametrize(
    ("content", "mode", "reason"),
    [
        (None, 0o644, "readable by others; chmod 600"),
        ('meta_read_key = "00"\nfile_read_key = "00"\n', 0o600, "meta_read_key must be 32 hex"),
        ("not toml [", 0o600, "not a TOML file of card keys"),
        (
            f'meta_read_key = "{"0" * 32}"\nfile_read_key = "{"0" * 32}"\n',
            0o600,
            "system_identifier",
        ),
    ],
)
def test_a_bad_card_key_file_stops_the_server_with_its_reason(
    tmp_path: Path, content: str | None, mode: int, reason: str
) -> None:
    keys = write_keys(tmp_path, mode)
    if content is not None:
        keys.write_text(content)
        keys.chmod(mode)
    server = ServerProcess(f"sqlite+pysqlite:///{tmp_path}/s.sqlite", tmp_path)
    result = subprocess.run(
        [*server.command("serve", "--port", "0"), "--workers", "1"],
        cwd=REPO,
        env={**os.environ, "LOYALTY_SERVER_SUN_KEYS_FILE": str(keys)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "0" * 32 not in result.stderr  # never a key's value
    assert sys.executable  # the server ran under this interpreter


def test_the_store_reviews_refused_cards_from_the_command_line(card_server: ServerProcess) -> None:
    token = card_server.pair()["token"]
    assert tap(card_server, token, GENUINE).status_code == 404  # genuine, accepted once
    assert tap(card_server, token, GENUINE).status_code == 409  # its copy
    assert tap(card_server, token, FORGED).status_code == 403
    result = subprocess.run(
        card_server.command("security-events", "--days", "1"),
        cwd=REPO,
        env={**os.environ, "LOYALTY_SERVER_CONFIG_DIR": str(REPO / "config")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert "forged" in lines[0] and "card unknown" in lines[0]  # newest first
    assert "replayed" in lines[1] and "card ...5E80" in lines[1]
    assert lines[-1] == "2 security event(s) in the last 1 day(s)"
    assert UID not in result.stdout  # the last digits only


# ---------------------------------------------------------------- at the terminal


def test_a_terminal_identifies_a_member_by_a_secure_card_and_refuses_its_copy(
    card_server: ServerProcess, tmp_path: Path
) -> None:
    """A terminal on the store server (the real HTTP backend), a secure card's message as
    its PC/SC driver gives it: the member is found; the same message again, a forged one,
    and any while the server cannot be reached are refused with their codes; the offline
    member cache never keeps a message."""
    from pos_client.domain import IdentityKind
    from pos_client.events import ScanEvent
    from pos_client.scanning import IdentificationFailed, MemberIdentified, ScanRouter
    from tests.integration.server_helpers import http_terminal

    ledger = card_server.ledger()
    anna = member_id(card_server, ANNA.card_number)
    ledger.link_identifier(anna, "card_uid", UID)
    ledger.engine.dispose()
    terminal = http_terminal(card_server, tmp_path / "till")
    try:
        router = ScanRouter(terminal.checkout, terminal.bus)

        def route(url: str) -> object:
            return router.route(ScanEvent("pcsc:Virtual PCD", "sun", url))

        found = route(GENUINE)
        assert isinstance(found, MemberIdentified), found
        assert found.session.view.member_id == anna and found.session.online
        assert found.session.identity.kind is IdentityKind.SECURE_CARD
        assert terminal.checkout.spend_refusal(found.session) is None  # a proven card spends
        copied = route(GENUINE)
        assert isinstance(copied, IdentificationFailed) and copied.code == "card_replayed"
        forged = route(FORGED)
        assert isinstance(forged, IdentificationFailed) and forged.code == "card_refused"
        not_sun = route("https://loyalty.example/c?picc_data=00&cmac=00")
        assert isinstance(not_sun, IdentificationFailed) and not_sun.code == "card_reader"
        assert terminal.outbox.cached_member_by_id(anna) is None  # nothing cached under a URL
        card_server.stop()
        offline = route(GENUINE)
        assert isinstance(offline, IdentificationFailed)
        assert offline.code == "secure_card_offline"
    finally:
        terminal.close()
    assert events(card_server) == [("replayed", UID), ("forged", None)]


def genuine(counter: int) -> str:
    """A message of the test card (AN12196's zero keys) at `counter`."""
    from pos_client.sun import card_url

    return card_url("https://loyalty.example/c", bytes(16), bytes(16), bytes.fromhex(UID), counter)


def link(server: ServerProcess, token: str, url: str, member: str) -> requests.Response:
    return requests.post(
        server.url + "/v1/cards/link",
        json={"url": url, "member_id": member},
        headers=headers(token),
        timeout=30,
    )


def test_a_genuine_card_is_linked_once_and_never_moved_to_another_member(
    card_server: ServerProcess,
) -> None:
    token = card_server.pair()["token"]
    anna = member_id(card_server, ANNA.card_number)
    other = member_id(card_server, DEMO_MEMBERS[1].card_number)
    answer = link(card_server, token, genuine(20), anna)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"member_id": anna, "linked": True}
    assert tap(card_server, token, genuine(21)).json()["member_id"] == anna
    assert link(card_server, token, genuine(22), anna).json() == {
        "member_id": anna,
        "linked": False,
    }
    moved = link(card_server, token, genuine(23), other)
    assert moved.status_code == 409 and "another member" in moved.json()["detail"]
    assert events(card_server) == [("link_refused", UID)]
    # The refusal spent nothing: the same message still identifies Anna.
    assert tap(card_server, token, genuine(23)).json()["member_id"] == anna
    assert tap(card_server, token, genuine(24)).json()["member_id"] == anna
    # Linked as a secure card, its UID alone (a copy on any tag) finds no one.
    bare = requests.post(
        card_server.url + "/v1/members/lookup",
        json={"kind": "card_uid", "value": UID},
        headers=headers(token),
        timeout=30,
    )
    assert bare.status_code == 404
    # A message already used (by a tap) links nothing: a replay.
    replayed = link(card_server, token, genuine(24), anna)
    assert replayed.status_code == 409 and "already used" in replayed.json()["detail"]


@pytest.mark.parametrize(
    ("url", "member", "status"),
    [
        (FORGED, "anna", 403),
        (MALFORMED, "anna", 400),
        (GENUINE, "no-such-member", 404),
        (GENUINE, "../members/x", 422),
        (GENUINE, "", 422),
        (GENUINE + "&x=" + "A" * 600, "anna", 422),
    ],
)
def test_a_link_that_proves_nothing_or_names_no_member_changes_nothing(
    card_server: ServerProcess, url: str, member: str, status: int
) -> None:
    token = card_server.pair()["token"]
    anna = member_id(card_server, ANNA.card_number)
    before = snapshot(card_server)
    answer = link(card_server, token, url, anna if member == "anna" else member)
    assert answer.status_code == status, answer.text
    assert snapshot(card_server) == before
    assert last_counter(card_server.ledger().engine, bytes.fromhex(UID)) is None
    assert tap(card_server, token, GENUINE).status_code == 404  # still linked to no one


def test_the_terminals_http_backend_links_and_hears_refusals(card_server: ServerProcess) -> None:
    from pos_client.backends.http import HttpBackend
    from pos_client.ports import CardRefused

    backend = HttpBackend(card_server.url, card_server.pair()["token"])
    try:
        anna = member_id(card_server, ANNA.card_number)
        other = member_id(card_server, DEMO_MEMBERS[1].card_number)
        assert backend.link_card(genuine(30), anna) is True
        assert backend.link_card(genuine(31), anna) is False
        with pytest.raises(CardRefused, match="another member"):
            backend.link_card(genuine(32), other)
        with pytest.raises(CardRefused, match="already used"):
            backend.link_card(genuine(31), anna)
        view = backend.lookup("secure_card", genuine(33))
        assert view is not None and view.member_id == anna
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("uid", "status"),
    [
        ("04000000000001", 403),  # another card's UID beside this card's message: an emulator
        ("04958caa5c5e80", 422),  # not upper-case hex as read
        ("04958CAA5C5E", 422),  # no UID length
        ("X" * 14, 422),
    ],
)
def test_a_message_beside_a_uid_it_does_not_prove_is_refused_unspent(
    card_server: ServerProcess, uid: str, status: int
) -> None:
    token = card_server.pair()["token"]
    ledger = card_server.ledger()
    ledger.link_identifier(member_id(card_server, ANNA.card_number), "card_uid", UID)
    ledger.engine.dispose()
    answer = requests.post(
        card_server.url + "/v1/cards/tap",
        json={"url": GENUINE, "uid": uid},
        headers=headers(token),
        timeout=30,
    )
    assert answer.status_code == status, answer.text
    assert last_counter(card_server.ledger().engine, bytes.fromhex(UID)) is None
    if status == 403:
        assert events(card_server) == [("forged", UID)]
    proved = requests.post(
        card_server.url + "/v1/cards/tap",
        json={"url": GENUINE, "uid": UID},
        headers=headers(token),
        timeout=30,
    )
    assert proved.status_code == 200, proved.text


def test_one_message_from_two_terminals_at_once_is_accepted_once(
    card_server: ServerProcess,
) -> None:
    """Two tills send the same message at the same moment (a card and its clone, in two
    lanes): for each message, one is answered with the member, the other refused."""
    import threading

    tokens = [card_server.pair("lane-1")["token"], card_server.pair("lane-2")["token"]]
    ledger = card_server.ledger()
    ledger.link_identifier(member_id(card_server, ANNA.card_number), "card_uid", UID)
    ledger.engine.dispose()
    outcomes = []
    for counter in range(40, 52):
        url = genuine(counter)
        start = threading.Barrier(2)
        codes: list[int] = []

        def lane(
            token: str, url: str = url, start: threading.Barrier = start, codes: list[int] = codes
        ) -> None:
            start.wait()
            codes.append(tap(card_server, token, url).status_code)

        threads = [threading.Thread(target=lane, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        outcomes.append(sorted(codes))
    assert outcomes == [[200, 409]] * 12
    assert last_counter(card_server.ledger().engine, bytes.fromhex(UID)) == 51
    assert [kind for kind, _card in events(card_server)] == ["replayed"] * 12


def test_a_throttled_card_check_is_a_refusal_not_offline(database_url: str, tmp_path: Path) -> None:
    """A terminal over its lookup rate is answered 429: that is the server refusing, not
    the server gone, so the terminal must not fall back to its offline acceptance (which
    takes a card verified before by its UID alone, unverified)."""
    from pos_client.backends.http import HttpBackend
    from pos_client.ports import BackendUnavailable, CardRefused

    keys = write_keys(tmp_path)
    for server in running_server(
        database_url,
        tmp_path,
        LOYALTY_SERVER_SUN_KEYS_FILE=str(keys),
        LOYALTY_SERVER_LOOKUPS_PER_MINUTE="2",
    ):
        backend = HttpBackend(server.url, server.pair()["token"])
        try:
            outcomes = []
            for counter in range(60, 64):
                try:
                    backend.tap(genuine(counter))
                    outcomes.append("answered")
                except CardRefused:
                    outcomes.append("refused")
                except BackendUnavailable:
                    outcomes.append("offline")
        finally:
            backend.close()
        assert outcomes[:2] == ["answered", "answered"]
        assert "refused" in outcomes[2:] and "offline" not in outcomes


def test_a_card_reported_lost_is_blocked_and_its_taps_refused_as_security_events(
    card_server: ServerProcess,
) -> None:
    token = card_server.pair()["token"]
    anna = member_id(card_server, ANNA.card_number)
    assert link(card_server, token, genuine(70), anna).status_code == 200
    blocked = subprocess.run(
        card_server.command("card", "block", ANNA.card_number, "--card", UID[-4:]),
        cwd=REPO,
        env=card_server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.strip().endswith(UID[-4:]) and UID not in blocked.stdout
    refused = tap(card_server, token, genuine(71))
    assert refused.status_code == 410 and "lost or stolen" in refused.json()["detail"]
    assert link(card_server, token, genuine(72), anna).status_code == 410
    assert [kind for kind, _card in events(card_server)] == ["blocked", "blocked"]
    assert {card for _kind, card in events(card_server)} == {UID}
    runs = [
        subprocess.run(
            card_server.command("card", "block", ANNA.card_number),
            cwd=REPO,
            env=card_server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for _ in range(2)
    ]
    # All her cards: the demo's plain tag is left, then none.
    assert runs[0].returncode == 0 and runs[0].stdout.strip().endswith("6C80")
    assert runs[1].returncode == 1 and "no card of this member" in runs[1].stderr


def test_the_server_says_whether_a_uid_is_known_and_nothing_more(
    card_server: ServerProcess,
) -> None:
    token = card_server.pair()["token"]

    def known(uid: object) -> requests.Response:
        return requests.post(
            card_server.url + "/v1/cards/known",
            json={"uid": uid},
            headers=headers(token),
            timeout=30,
        )

    assert known(UID).json() == {"known": False}
    assert tap(card_server, token, genuine(80)).status_code == 404  # tapped: now known
    assert known(UID).json() == {"known": True}
    assert known(ANNA.card_uid).json() == {"known": True}  # a demo tag, linked
    for hostile in (UID.lower(), UID[:-1], "Z" * 14, 14, None, "04" * 11):
        assert known(hostile).status_code == 422
