"""`loyalty-server` on bad ground, through the real CLI: database URLs it cannot use (a
typo, a driver it lacks, nobody listening, libpq's `postgres://` spelling) get one line and
never a traceback or the URL's password; `serve --no-migrate` refuses a schema it would
serve wrongly; servers started at once on a fresh PostgreSQL database migrate one after
another (an outside review saw one die with a 33-frame IntegrityError)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason

PG_REASON = postgres_unavailable_reason()


def server_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loyalty_server.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("bogus://host/db", "the database URL is not one this server reads"),
        ("not a url:secret", "the database URL is not one this server reads"),
        ("postgresql://someone:secret@127.0.0.1:1/db", "cannot open the database"),
        ("postgres://someone:secret@127.0.0.1:1/db", "cannot open the database"),
        ("postgresql://someone:secret@127.0.0.1:notaport/db", "not one this server reads"),
        ("postgresql://someone:secret@[::1/db", "not one this server reads"),
        ("postgresql+psycopg2://someone:secret@127.0.0.1/db", "driver that is not installed"),
        ("mysql://someone:secret@127.0.0.1/db", "driver that is not installed"),
    ],
)
@pytest.mark.parametrize("command", [("migrate",), ("terminal", "add", "desk"), ("expire",)])
def test_a_database_it_cannot_use_is_one_line_without_the_password(
    url: str, said: str, command: tuple[str, ...]
) -> None:
    result = server_cli(*command, "--database-url", url)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "secret" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], result.stderr


def test_serve_without_migrating_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'fresh.sqlite'}"
    result = server_cli("serve", "--no-migrate", "--port", "1", "--database-url", url)
    assert result.returncode == 2
    assert "to create it, run: loyalty-server migrate" in result.stderr


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    if PG_REASON is not None:
        pytest.skip(PG_REASON)
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


def test_migrations_started_at_once_run_one_after_another(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "loyalty_server.cli", "migrate", "--database-url", url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err for _out, err in outputs]
    check = server_cli("terminal", "add", "desk", "--database-url", url)  # needs the schema
    assert check.returncode == 0, check.stderr


def test_several_workers_with_a_bad_programme_is_one_line_naming_the_file(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'store.sqlite'}"
    (tmp_path / "bad.toml").write_text("not = [toml")
    (tmp_path / "dir.toml").mkdir()
    for program, said in (
        (tmp_path / "bad.toml", "not valid TOML"),
        (tmp_path / "missing.toml", "cannot read"),
        (tmp_path / "dir.toml", "cannot read"),
    ):
        result = server_cli(
            "serve",
            "--workers",
            "2",
            "--port",
            "1",
            "--database-url",
            url,
            "--program",
            str(program),
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert str(program) in result.stderr and said in result.stderr


def test_a_database_from_a_newer_release_is_named_so(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite+pysqlite:///{tmp_path / 'store.sqlite'}"
    assert server_cli("migrate", "--database-url", url).returncode == 0
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    for command in (("serve", "--no-migrate", "--port", "1"), ("terminal", "add", "desk")):
        result = server_cli(*command, "--database-url", url)
        assert result.returncode == 2, result.stderr
        assert "newer schema (revision 0099_from_the_future)" in result.stderr
    migrated = server_cli("migrate", "--database-url", url)
    assert migrated.returncode == 2 and "Traceback" not in migrated.stderr
    assert "the database's schema" in migrated.stderr


def test_a_percent_encoded_password_migrates(postgres: PostgresCluster) -> None:
    url = postgres.new_database().replace("://postgres@", "://postgres:p%40ss%25@", 1)
    result = server_cli("migrate", "--database-url", url)  # trust auth: the password unused
    assert result.returncode == 0, result.stderr
    assert "p%40ss" not in result.stderr
