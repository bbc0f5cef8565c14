"""`loyalty-server member import` (second review, item 1), run as the store runs it: every
row checked as the API checks an enrollment, all or nothing, each bad row named by its line
and reason without its phone; generated card numbers valid and unique; an unmigrated
database answered with what to run, no traceback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from loyalty_server import strict
from pos_client.ledger.schema import members
from tests.conftest import REPO
from tests.integration.server_helpers import ServerProcess

HEADER = "first_name,last_name,phone,card_number,birthday\n"
GOOD = "Ivan,Petrov,+7 912 000 11 22,2900000000100,1980-02-03\n"
BAD_ROWS = {
    # line: (row, reason printed)
    3: ("Evil,\u202eRow,+7 912 000 11 23,,\n", "line 3: last_name: control, invisible"),
    4: ("Zo\u200be,Smith,+7 912 000 11 24,,\n", "line 4: first_name: control, invisible"),
    5: ("\u3164,Smith,+7 912 000 11 25,,\n", "line 5: first_name: control, invisible"),
    6: ("Card,Wrong,+7 912 000 11 26,2900000000101,\n", "line 6: card_number: the check digit"),
    7: ("Future,Kid,+7 912 000 11 27,,2999-01-01\n", "line 7: birthday: in the future"),
    8: ("Bad,Phone,+7 912 000,,\n", "line 8: phone: not a valid phone number"),
    9: ("Twice,Phone,+7 912 000 11 22,,\n", "line 9: the same phone as line 2"),
    10: ("Twice,Card,+7 912 000 11 30,2900000000100,\n", "line 10: card_number: the same"),
    11: ("Bad,Date,+7 912 000 11 31,,03/02/1980\n", "line 11: birthday: expected a date"),
}


def run(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server.command(*args),
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def count_members(server: ServerProcess) -> int:
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(members)).scalar_one())
    ledger.engine.dispose()
    return count


def test_a_file_with_bad_rows_imports_nothing_and_names_each_bad_row(
    database_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "members.csv"
    csv_file.write_text(HEADER + GOOD + "".join(row for row, _ in BAD_ROWS.values()))
    server = ServerProcess(database_url, tmp_path)
    result = run(server, "member", "import", str(csv_file), "--region", "RU")
    assert result.returncode == 1, result
    assert "imported 0 member(s)" in result.stdout
    for _row, reason in BAD_ROWS.values():
        assert reason in result.stderr, result.stderr
    assert "line 2:" not in result.stderr
    assert "Traceback" not in result.stderr
    # Never a phone in clear, whatever digits of it.
    for digits in ("9120001122", "0001122", "9120001130", "912000"):
        assert digits not in re.sub(r"\D", "", result.stderr + result.stdout), digits
    assert count_members(server) == 0
    # The good row alone imports; again, it is refused as already a member's.
    csv_file.write_text(HEADER + GOOD)
    assert run(server, "member", "import", str(csv_file), "--region", "RU").returncode == 0
    assert server.ledger().find_member_id("card_number", "2900000000100") is not None
    again = run(server, "member", "import", str(csv_file), "--region", "RU")
    assert again.returncode == 1 and "line 2: this phone already belongs to a member" in (
        again.stderr
    )
    assert count_members(server) == 1


def test_generated_card_numbers_are_valid_gs1_and_unique(database_url: str, tmp_path: Path) -> None:
    rows = 400  # generated in far less than a millisecond each: uuid7()[:13] repeated
    csv_file = tmp_path / "members.csv"
    csv_file.write_text(
        HEADER + "".join(f"Member{chr(97 + i % 26)},Lee,+7 912 1{i:06d},,\n" for i in range(rows))
    )
    server = ServerProcess(database_url, tmp_path)
    result = run(server, "member", "import", str(csv_file), "--region", "RU")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"imported {rows} member(s)" in result.stdout
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        cards = [row[0] for row in conn.execute(select(members.c.card_number))]
    ledger.engine.dispose()
    assert len(cards) == rows == len(set(cards))
    for card in cards:
        assert len(card) == 13 and card.startswith("29"), card
        assert strict.card_number_problem(card) is None, card


def test_a_file_that_is_no_utf8_csv_is_refused_whole(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "Jos\u00e9,Lee,+7 912 000 11 22,,\n").encode("latin-1"))
    no_phone = tmp_path / "no_phone.csv"
    no_phone.write_text("first_name,last_name\nAnna,Lee\n")
    for path, reason in ((latin1, "not UTF-8 text"), (no_phone, "first_name and phone")):
        result = run(server, "member", "import", str(path))
        assert result.returncode == 1 and reason in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert count_members(server) == 0


def test_admin_commands_on_an_unmigrated_database_say_what_to_run(tmp_path: Path) -> None:
    csv_file = tmp_path / "members.csv"
    csv_file.write_text(HEADER + GOOD)
    missing = tmp_path / "nowhere.sqlite"
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for database, said in ((missing, "no database at"), (empty, "has no loyalty schema")):
        url = f"sqlite+pysqlite:///{database}"
        server = ServerProcess(url, tmp_path)
        for command in (("member", "import", str(csv_file)), ("terminal", "add", "Desk 1")):
            result = run(server, *command)
            assert result.returncode == 2, result
            assert said in result.stderr and "Traceback" not in result.stderr, result.stderr
            assert f"run: loyalty-server migrate --database-url '{url}'" in result.stderr or (
                f"run first: loyalty-server migrate --database-url '{url}'" in result.stderr
            )
        if database == missing:
            assert not missing.exists()  # nothing created where there was nothing
        # What it says to run works, and then so does the command.
        assert run(server, "migrate").returncode == 0
        assert run(server, "terminal", "add", "Desk 1").returncode == 0


def test_card_numbers_in_the_docs_have_right_check_digits() -> None:
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]:
        for number in re.findall(r"(?<![0-9])2[0-9]{12}(?![0-9])", doc.read_text()):
            assert strict.card_number_problem(number) is None, f"{doc.name}: {number}"
