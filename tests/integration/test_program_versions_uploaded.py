"""Programme versions uploaded while the server runs: stored with their activation time,
listed, cancelled while scheduled, and served (with their ETag, and applied to sales) from
that time on by every worker process."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine

from loyalty_server.cli import migrate
from loyalty_server.program_versions import (
    ActiveProgram,
    ProgramSourceError,
    VersionRefused,
    active_version,
    add_version,
    cancel_version,
    list_versions,
    make_snapshot,
)
from loyalty_server.terminals import add_terminal
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.program import ProgramDocument, program_version
from pos_client.rules import Program
from tests.conftest import CONFIG_DIR, REPO
from tests.integration.server_helpers import ServerProcess, http_terminal

PRESET = CONFIG_DIR / "programs" / "category_tiers.toml"
COALITION = CONFIG_DIR / "programs" / "coalition_points.toml"
CARD = DEMO_MEMBERS[1].card_number
TEN = Purchase.of_amount(Decimal("10.00"))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def with_rate(rate: int) -> str:
    text = PRESET.read_text()
    assert "\nrate = 1\n" in text
    return text.replace("\nrate = 1\n", f"\nrate = {rate}\n", 1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = sqlite_url(tmp_path / "server.sqlite")
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


BASE = ProgramDocument.of(PRESET.read_text())


# ------------------------------------------------------------------ the module


def test_versions_are_stored_listed_activated_and_cancelled(engine: Engine) -> None:
    soon, later = NOW + timedelta(hours=1), NOW + timedelta(days=30)
    first = add_version(engine, with_rate(2), "anna", soon, NOW)
    second = add_version(engine, with_rate(3).encode(), "ben", later, NOW)
    assert first.version == program_version(with_rate(2).encode())
    assert active_version(engine, NOW, BASE) == BASE
    at_soon = active_version(engine, soon, BASE)
    assert at_soon == ProgramDocument(first.version, with_rate(2))
    assert active_version(engine, later + timedelta(days=1), BASE).version == second.version
    rows = list_versions(engine, soon + timedelta(minutes=1), BASE)
    assert [(r.version, r.status, r.uploaded_by) for r in rows] == [
        (BASE.version, "past", None),
        (first.version, "active", "anna"),
        (second.version, "scheduled", "ben"),
    ]
    assert rows[0].is_base and not rows[1].is_base
    with pytest.raises(VersionRefused, match="already active"):
        cancel_version(engine, first.version, soon)
    cancel_version(engine, second.version, soon)
    with pytest.raises(VersionRefused, match="no uploaded version"):
        cancel_version(engine, second.version, soon)
    assert [r.status for r in list_versions(engine, NOW, BASE)] == ["active", "scheduled"]


@pytest.mark.parametrize(
    ("activate_at", "says"),
    [
        (NOW - timedelta(minutes=2), "in the past"),
        (NOW + timedelta(days=366), "more than a year ahead"),
        (datetime(2026, 7, 1, 12, 0), "without a time zone"),
    ],
)
def test_activation_times_out_of_bounds_are_refused(
    engine: Engine, activate_at: datetime, says: str
) -> None:
    with pytest.raises(VersionRefused, match=says):
        add_version(engine, with_rate(2), "anna", activate_at, NOW)
    assert len(list_versions(engine, NOW, BASE)) == 1


def test_a_moment_ago_counts_as_now(engine: Engine) -> None:
    stored = add_version(engine, with_rate(2), "anna", NOW - timedelta(seconds=30), NOW)
    assert active_version(engine, NOW, BASE).version == stored.version


def test_the_same_text_twice_or_the_same_moment_is_refused(engine: Engine) -> None:
    at = NOW + timedelta(hours=1)
    add_version(engine, with_rate(2), "anna", at, NOW)
    with pytest.raises(VersionRefused, match="already stored"):
        add_version(engine, with_rate(2), "ben", at + timedelta(hours=1), NOW)
    with pytest.raises(VersionRefused, match="that very moment"):
        add_version(engine, with_rate(3), "ben", at, NOW)


@pytest.mark.parametrize("who", ["", " ", "x" * 33, "anna\x1b[2J"])
def test_an_uploaders_name_must_be_one(engine: Engine, who: str) -> None:
    with pytest.raises(VersionRefused, match="uploaded_by"):
        add_version(engine, with_rate(2), who, NOW, NOW)


def test_an_invalid_programme_is_refused_with_the_files_message(engine: Engine) -> None:
    with pytest.raises(ProgramSourceError, match=r"^upload\.toml: not valid TOML"):
        add_version(engine, "[earn\n", "anna", NOW, NOW, label="upload.toml")


def test_a_coalition_that_drops_a_paired_merchant_is_refused(engine: Engine) -> None:
    source = COALITION.read_text()
    add_terminal(engine, "till", 600, merchant="fuel")
    without = source.replace('id = "fuel"', 'id = "petrol"')
    with pytest.raises(VersionRefused, match=r"merchant\(s\) fuel, whose terminals are paired"):
        add_version(engine, without, "anna", NOW, NOW)
    with pytest.raises(VersionRefused, match="fuel"):  # no coalition at all
        add_version(engine, with_rate(2), "anna", NOW, NOW)
    add_version(engine, source, "anna", NOW, NOW)


def test_active_program_switches_at_the_activation_and_rereads_every_few_seconds(
    engine: Engine,
) -> None:
    clock = [NOW]
    ticks = [0.0]
    built: list[str] = []

    def ledger_for(document: ProgramDocument, program: Program) -> Ledger:
        built.append(document.version)
        return Ledger(engine, program, program_version=document.version)

    base = make_snapshot(BASE, BASE.parse("base"), ledger_for(BASE, BASE.parse("base")))
    programs = ActiveProgram(
        engine,
        base,
        ledger_for,
        refresh_s=5,
        clock=lambda: clock[0],
        monotonic=lambda: ticks[0],
    )
    assert programs.snapshot() is base
    stored = add_version(engine, with_rate(4), "anna", NOW + timedelta(seconds=2), NOW)
    clock[0] += timedelta(seconds=3)
    ticks[0] += 3
    assert programs.snapshot() is base  # not read again yet: within 5 s
    ticks[0] += 2
    snap = programs.snapshot()  # 5 s on: read, and the version is in force
    assert snap.document.version == stored.version
    assert snap.etag == f'"{stored.version}"' and snap.body["version"] == stored.version
    assert snap.program.earn.rate == 4 and snap.ledger.program is snap.program
    assert snap.ledger.program_version == stored.version
    # Known ahead: the next activation switches at its time, not 5 s later.
    later = add_version(engine, with_rate(6), "anna", clock[0] + timedelta(seconds=1), clock[0])
    assert programs.refresh() is snap  # an upload's refresh: known, not yet active
    clock[0] += timedelta(seconds=1)
    assert programs.snapshot().document.version == later.version
    assert built == [BASE.version, stored.version, later.version]
    assert programs.base is base


def test_active_program_keeps_the_rules_in_force_when_the_database_is_unreadable(
    tmp_path: Path,
) -> None:
    engine = make_engine(sqlite_url(tmp_path / "not-migrated.sqlite"))
    program = BASE.parse("base")
    base = make_snapshot(BASE, program, Ledger(engine, program))
    programs = ActiveProgram(engine, base, lambda d, p: Ledger(engine, p))
    assert programs.snapshot() is base
    engine.dispose()


# ------------------------------------------------------------------ a real server


def store(tmp_path: Path, workers: int = 1) -> ServerProcess:
    program = tmp_path / "store.toml"
    program.write_text(with_rate(3))
    url = sqlite_url(tmp_path / "server.sqlite")
    migrate(url)
    server = ServerProcess(url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program))
    server.workers = workers
    server.seed()
    server.start()
    return server


def etags(server: ServerProcess, headers: dict[str, str], count: int = 1) -> set[str]:
    return {
        requests.get(server.url + "/v1/program", headers=headers, timeout=10).headers["ETag"]
        for _ in range(count)
    }


def wait_for(server: ServerProcess, headers: dict[str, str], tag: str, within_s: float) -> float:
    """Seconds until /v1/program answers with `tag` (fails past `within_s`)."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if etags(server, headers) == {tag}:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"the server did not switch to {tag} within {within_s} s")


def test_a_version_added_with_the_cli_is_served_and_applied_from_its_time(
    tmp_path: Path,
) -> None:
    server = store(tmp_path)
    try:
        headers = {"Authorization": f"Bearer {server.pair('reader')['token']}"}
        old = f'"{program_version(with_rate(3).encode())}"'
        assert etags(server, headers) == {old}
        upload = tmp_path / "next.toml"
        upload.write_text(with_rate(5))
        activate_at = datetime.now(UTC) + timedelta(seconds=2)
        added = subprocess.run(
            [
                *server.command("program", "add", str(upload)),
                "--activate-at",
                activate_at.isoformat(),
                "--as",
                "anna",
            ],
            cwd=REPO,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        new_version = program_version(with_rate(5).encode())
        assert f"version {new_version} (category_tiers) activates at" in added.stdout
        assert "Earning: 5 points per 1 USD spent (was 3 points per 1 USD spent)." in added.stdout
        if datetime.now(UTC) < activate_at - timedelta(seconds=0.3):
            assert etags(server, headers) == {old}  # not yet
        listed = subprocess.run(
            server.command("program", "list"),
            cwd=REPO,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0 and new_version in listed.stdout
        wait_for(server, headers, f'"{new_version}"', within_s=10)
        assert datetime.now(UTC) >= activate_at
        body = requests.get(server.url + "/v1/program", headers=headers, timeout=10).json()
        assert body["version"] == new_version and body["earn"]["rate"] == "5"
        assert body["source"] == with_rate(5)
        with http_terminal(server, tmp_path / "desk") as terminal:
            terminal.sync.drain()
            assert terminal.checkout.program_version == new_version
            session = terminal.checkout.identify(CARD)
            receipt = terminal.checkout.earn(session, TEN)
            terminal.sync.drain()
            entry = terminal.outbox.get(receipt.key)
            assert entry is not None and entry.result is not None
            result = entry.result
            assert result["program_version"] == new_version
            assert result["points_earned"] == 50  # $10 at the new 5 a dollar
        cancelled = subprocess.run(
            server.command("program", "cancel", new_version),
            cwd=REPO,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cancelled.returncode == 2
        assert "already active" in cancelled.stderr and cancelled.stderr.count("\n") == 1
    finally:
        server.stop()


def test_two_workers_both_switch_at_the_activation(tmp_path: Path) -> None:
    server = store(tmp_path, workers=2)
    try:
        headers = {"Authorization": f"Bearer {server.pair('reader')['token']}"}
        old = f'"{program_version(with_rate(3).encode())}"'
        assert etags(server, headers, 12) == {old}
        engine = make_engine(server.database_url)
        # Uploaded more than the refresh interval ahead: every worker knows its time.
        activate_at = datetime.now(UTC) + timedelta(seconds=7)
        stored = add_version(engine, with_rate(5), "anna", activate_at, datetime.now(UTC))
        engine.dispose()
        time.sleep(5.5)
        if datetime.now(UTC) < activate_at - timedelta(seconds=0.5):
            assert etags(server, headers, 12) == {old}
        wait_for(server, headers, f'"{stored.version}"', within_s=10)
        seen_at = datetime.now(UTC)
        assert activate_at <= seen_at < activate_at + timedelta(seconds=3)  # at its time
        # Every answer, whichever worker gives it, is the new version.
        assert etags(server, headers, 24) == {f'"{stored.version}"'}
    finally:
        server.stop()
