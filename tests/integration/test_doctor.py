"""`pos-client doctor` levels: OK, WARN (shown, exit 0) and BAD (exit non-zero), through the
real CLI on real files, against a real store server process where one is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.server_helpers import ServerProcess


@pytest.fixture
def store_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(f"sqlite+pysqlite:///{tmp_path / 'store.sqlite'}", tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def doctor(data: Path, *config: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pos_client.cli", *config, "--data-dir", str(data), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def rows(result: subprocess.CompletedProcess[str], prefix: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(prefix)]


def test_a_simulated_reader_on_a_terminal_paired_to_a_store_server_is_a_warning(
    store_server: ServerProcess, tmp_path: Path
) -> None:
    data = tmp_path / "terminal"
    data.mkdir()
    (data / "terminal.token").write_text(store_server.pair("desk")["token"] + "\n")
    config = tmp_path / "desk.toml"
    config.write_text(
        f'[backend]\nkind = "http"\nurl = "{store_server.url}"\n'
        '[[readers]]\nkind = "simulated"\nname = "sim"\n'
    )
    result = doctor(data, "--config", str(config), POS_CLIENT__ADMIN__PIN="97531")
    assert "Traceback" not in result.stderr
    assert not rows(result, "BAD"), result.stdout
    assert rows(result, "ok  backend: http: reachable")
    (warning,) = rows(result, "WARN")
    assert warning.startswith("WARN simulated reader:") and store_server.url in warning
    assert "'readers[0].kind'" in warning  # the config key to change
    assert result.returncode == 0  # a warning alone: the terminal works
    assert "no problems, 1 warning(s)" in result.stdout


def test_the_same_simulated_reader_on_an_embedded_field_test_terminal_is_fine(
    tmp_path: Path,
) -> None:
    result = doctor(tmp_path / "data", POS_CLIENT__ADMIN__PIN="97531")
    assert result.returncode == 0, result.stdout
    assert not rows(result, "WARN") and not rows(result, "BAD"), result.stdout
    assert rows(result, "ok  reader sim:") and "all checks passed" in result.stdout


def test_warnings_beside_a_problem_still_fail_and_are_counted_apart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "outbox.sqlite").write_bytes(b"garbage" * 500)  # BAD
    result = doctor(data, POS_CLIENT__ADMIN__PIN="2468")  # the default PIN: WARN
    assert result.returncode == 1
    assert any("outbox" in line for line in rows(result, "BAD"))
    assert [line.split(":")[0] for line in rows(result, "WARN")] == ["WARN staff PIN"]
    assert "1 problem(s), 1 warning(s)" in result.stdout


def test_a_guessable_cashier_pin_is_a_warning_and_a_guessable_kiosk_pin_is_bad(
    tmp_path: Path,
) -> None:
    cashier = doctor(tmp_path / "c", POS_CLIENT__ADMIN__PIN="1234")
    assert cashier.returncode == 0 and rows(cashier, "WARN staff PIN"), cashier.stdout
    kiosk = doctor(
        tmp_path / "k",
        "--config",
        str(REPO / "config" / "examples" / "kiosk.toml"),
        POS_CLIENT__ADMIN__PIN="1234",
    )
    assert kiosk.returncode == 1 and rows(kiosk, "BAD staff PIN"), kiosk.stdout
