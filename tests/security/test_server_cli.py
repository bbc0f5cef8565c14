"""The server's CLI and files against hostile input (issue 10, hostile input, items 5 and
6): terminal names are printable text of 1 to 80 characters and printed safely, arguments
that are no UTF-8 are refused without a traceback, the default database is never used
silently, and the database, its -wal and -shm and the phone key file are 0600, whatever
the umask."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from loyalty_server.cli import migrate
from loyalty_server.schema import terminals
from pos_client.ledger import make_engine
from tests.conftest import REPO
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, batch, member_id, sale


def server_cli(
    tmp_path: Path, *args: str | bytes, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`loyalty-server ARGS` as a user runs it, in `tmp_path`."""
    environment = {k: v for k, v in os.environ.items() if k != "LOYALTY_SERVER_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "loyalty_server.cli", *args],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite store, named in the environment as a store names it."""
    url = f"sqlite+pysqlite:///{tmp_path}/store.sqlite"
    migrate(url)
    return {
        "LOYALTY_SERVER_DATABASE_URL": url,
        "LOYALTY_SERVER_PHONE_KEY_FILE": str(tmp_path / "store-phone.key"),
    }


def terminal_names(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        names = list(conn.execute(select(terminals.c.name)).scalars())
    engine.dispose()
    return names


BAD_NAMES = {
    "ANSI escape": "Desk \x1b[31mRED\x1b[0m",
    "bidi override": "Desk \u202e1",
    "zero width space": "De\u200bsk",
    "empty": "",
    "spaces only": "   ",
    "81 characters": "D" * 81,
    "5,000 characters": "D" * 5000,
}


@pytest.mark.parametrize("case", BAD_NAMES)
def test_terminal_add_refuses_a_name_that_is_no_printable_text_of_1_to_80(
    tmp_path: Path, store: dict[str, str], case: str
) -> None:
    result = server_cli(tmp_path, "terminal", "add", BAD_NAMES[case], env=store)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "terminal name" in result.stderr and "Traceback" not in result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "\u202e" not in result.stdout + result.stderr
    assert terminal_names(store["LOYALTY_SERVER_DATABASE_URL"]) == []


def test_a_refused_long_name_is_echoed_cut_to_40_characters(
    tmp_path: Path, store: dict[str, str]
) -> None:
    result = server_cli(tmp_path, "terminal", "add", "D" * 39 + "E" * 4961, env=store)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "terminal name '" + "D" * 39 + "E…': at most 80 characters" in result.stderr
    assert "EE" not in result.stderr and len(result.stderr) < 200, result.stderr


def test_terminal_add_takes_a_name_of_80_characters_in_any_script(
    tmp_path: Path, store: dict[str, str]
) -> None:
    names = ["Kase 1 — Rīga", "D" * 80]
    for name in names:
        result = server_cli(tmp_path, "terminal", "add", name, env=store)
        assert result.returncode == 0, result.stderr
        assert f"({name})" in result.stdout
    assert sorted(terminal_names(store["LOYALTY_SERVER_DATABASE_URL"])) == sorted(names)


def test_revoking_an_id_that_is_no_utf8_is_no_terminal_and_no_traceback(
    tmp_path: Path, store: dict[str, str]
) -> None:
    for command in (["terminal", "revoke"], ["partner", "revoke"]):
        result = subprocess.run(
            [sys.executable, "-m", "loyalty_server.cli", *command, b"\xff\x1b[2J"],
            cwd=tmp_path,
            env={**os.environ, **store, "PYTHONPATH": str(REPO)},
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert b"Traceback" not in result.stderr
        assert b"\\xff\\x1b[2J" in result.stderr and b"\x1b" not in result.stderr


def test_a_command_without_a_database_url_says_it_uses_the_default(tmp_path: Path) -> None:
    result = server_cli(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    default = tmp_path / "loyalty-server.sqlite"
    assert f"using the default database {default}" in result.stderr
    assert default.exists()
    # Named: nothing said.
    named = server_cli(
        tmp_path, "migrate", "--database-url", f"sqlite+pysqlite:///{tmp_path}/named.sqlite"
    )
    assert named.returncode == 0 and "default database" not in named.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_servers_database_and_key_files_are_private_under_a_loose_umask(
    tmp_path: Path,
) -> None:
    with umask(0o022):
        # A database made before (0644 under this umask), and one the CLI makes.
        older = f"sqlite+pysqlite:///{tmp_path}/older.sqlite"
        migrate(older)
        assert mode(tmp_path / "older.sqlite") == 0o644
        made = server_cli(
            tmp_path, "migrate", "--database-url", f"sqlite+pysqlite:///{tmp_path}/new.sqlite"
        )
        assert made.returncode == 0, made.stderr
        assert mode(tmp_path / "new.sqlite") == 0o600
        server = ServerProcess(older, tmp_path)
        server.seed()
        server.key_file.chmod(0o644)
        server.start()
    try:
        token = server.pair()["token"]
        anna = member_id(server, ANNA.card_number)
        assert batch(server, token, sale(anna, "1.00"))[0]["outcome"] == "applied"
        assert requests.get(server.url + "/v1/health", timeout=5).status_code == 401
        files = [tmp_path / f"older.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
        files.append(server.key_file)
        assert all(path.exists() for path in files), files
        assert {str(path.name): mode(path) for path in files} == {
            str(path.name): 0o600 for path in files
        }
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


UNMIGRATED_COMMANDS = {
    "terminal add": ("terminal", "add", "Desk 1"),
    "terminal revoke": ("terminal", "revoke", "0190f3a4-0000-7000-8000-000000000000"),
    "partner add": ("partner", "add", "sky-miles"),
    "partner revoke": ("partner", "revoke", "sky-miles"),
    "purge": ("purge",),
    "expire": ("expire",),
}


@pytest.mark.parametrize("state", ["no file", "empty file"])
@pytest.mark.parametrize("command", UNMIGRATED_COMMANDS)
def test_every_command_on_an_unmigrated_database_says_what_to_run(
    tmp_path: Path, command: str, state: str
) -> None:
    database = tmp_path / "store.sqlite"
    if state == "empty file":
        database.write_bytes(b"")
    url = f"sqlite+pysqlite:///{database}"
    done = server_cli(tmp_path, *UNMIGRATED_COMMANDS[command], "--database-url", url)
    assert done.returncode == 2, done.stderr
    assert "loyalty-server migrate" in done.stderr
    assert all(line.startswith("loyalty-server: ") for line in done.stderr.splitlines()), (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    # Nothing was made on the way: no file where there was none, no table where it was empty.
    if state == "no file":
        assert not database.exists()
    else:
        with sqlite3.connect(database) as conn:
            assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
        conn.close()


REFUSALS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "a bad terminal name": (("terminal", "add", " Desk"), {}),
    "an unknown terminal": (("terminal", "revoke", "no-such-terminal"), {}),
    "no such partner in the programme": (("partner", "add", "no-such-partner"), {}),
    "an unknown partner": (("partner", "revoke", "no-such-partner"), {}),
    "a bad --as-of": (("expire", "--as-of", "tomorrow"), {}),
    "a missing members file": (("member", "import", "missing.csv"), {}),
    "a members file with bad rows": (("member", "import", "bad.csv"), {}),
    "a bad worker count": (("serve", "--no-migrate"), {"LOYALTY_SERVER_WORKERS": "0"}),
    "a bad batch concurrency": (("serve", "--no-migrate"), {"LOYALTY_SERVER_BATCHES_AT_ONCE": "0"}),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_every_refusal_of_the_server_cli_starts_with_its_name(
    tmp_path: Path, store: dict[str, str], case: str
) -> None:
    (tmp_path / "bad.csv").write_text(
        "first_name,last_name,phone,card_number\nAnna,K,not a phone,\nBob,S,,\n"
    )
    args, env = REFUSALS[case]
    result = server_cli(tmp_path, *args, env={**store, **env})
    assert result.returncode in (1, 2), result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("loyalty-server: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "two"])
def test_serve_refuses_a_batch_concurrency_below_one_and_says_which_setting(
    tmp_path: Path, store: dict[str, str], value: str
) -> None:
    done = server_cli(
        tmp_path, "serve", "--port", "0", env={**store, "LOYALTY_SERVER_BATCHES_AT_ONCE": value}
    )
    assert done.returncode != 0
    assert "LOYALTY_SERVER_BATCHES_AT_ONCE" in done.stderr
    assert "Traceback" not in done.stderr
