"""`pos-client doctor` levels: OK, WARN (shown, exit 0) and BAD (exit non-zero), through the
real CLI on real files, against a real store server process where one is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, HeadlessTerminal
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


def test_doctor_beside_a_running_terminal_does_not_open_its_serial_scanner(
    tmp_path: Path,
) -> None:
    from pos_client.demo import DEMO_MEMBERS

    data = tmp_path / "data"
    master, slave = os.openpty()
    config = tmp_path / "desk.toml"
    config.write_text(
        f'[[readers]]\nkind = "serial"\nname = "desk"\nport = "{os.ttyname(slave)}"\n'
        '[[readers]]\nkind = "simulated"\nname = "sim"\n'
    )
    base = [sys.executable, "-m", "pos_client.cli", "--config", str(config), "--data-dir"]
    seeded = subprocess.run([*base, str(data), "seed-demo"], cwd=REPO, capture_output=True)
    assert seeded.returncode == 0
    terminal = HeadlessTerminal(
        "--config", str(config), "--data-dir", str(data), env={"POS_CLIENT__ADMIN__PIN": "97531"}
    )
    try:
        terminal.expect("running", timeout=30)
        result = doctor(data, "--config", str(config), POS_CLIENT__ADMIN__PIN="97531")
        (desk,) = [line for line in result.stdout.splitlines() if " reader desk:" in line]
        assert desk.startswith("ok ") and "in use by a terminal running" in desk, result.stdout
        assert "not opened" in desk
        (sim,) = [line for line in result.stdout.splitlines() if " reader sim:" in line]
        assert "in use" in sim and result.returncode == 0, result.stdout
        os.write(master, f"{DEMO_MEMBERS[1].card_number}\r".encode())
        assert "via serial:desk" in terminal.expect("member Bob S.", timeout=30)  # still its own
    finally:
        returncode = terminal.stop(20)
        os.close(master)
        os.close(slave)
    assert returncode == 0
    after = doctor(data, "--config", str(config), POS_CLIENT__ADMIN__PIN="97531")
    assert "in use" not in after.stdout  # stopped: probed again


def test_sales_waiting_over_an_hour_are_a_warning_and_dead_ones_a_problem(
    tmp_path: Path,
) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from pos_client.bootstrap import build_terminal
    from pos_client.demo import DEMO_MEMBERS, seed_demo_members
    from pos_client.domain import Purchase, PurchaseLine, utcnow
    from tests.conftest import make_settings

    data = tmp_path / "data"
    with build_terminal(make_settings(data)) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        session = terminal.checkout.identify(DEMO_MEMBERS[0].card_number, "barcode")
        two_hours_ago = utcnow() - timedelta(hours=2)
        terminal.checkout.clock = lambda: two_hours_ago
        terminal.checkout.earn(session, Purchase((PurchaseLine(Decimal("10.00"), "grocery"),)))
    result = doctor(data, POS_CLIENT__ADMIN__PIN="97531")
    (queue_row,) = [line for line in result.stdout.splitlines() if " outbox queue:" in line]
    assert queue_row.startswith("WARN") and "over an hour" in queue_row, result.stdout
    assert result.returncode == 0 and "no problems, 1 warning(s)" in result.stdout
    with build_terminal(make_settings(data)) as terminal:
        (entry,) = terminal.outbox.entries()
        terminal.outbox.mark_dead(entry.key, "refused", "refused by the backend")
    dead = doctor(data, POS_CLIENT__ADMIN__PIN="97531")
    assert any(line.startswith("BAD outbox queue") for line in dead.stdout.splitlines())
    assert dead.returncode == 1


def test_a_printer_out_of_paper_is_bad_and_paper_low_a_warning(tmp_path: Path) -> None:
    from tests.escpos_test_printer import LoopbackPrinter

    with LoopbackPrinter() as printer:
        config = tmp_path / "till.toml"
        config.write_text(
            f'[[printers]]\nkind = "network"\nname = "front"\nhost = "127.0.0.1"\n'
            f"port = {printer.port}\n"
        )
        args = ("--config", str(config))
        ready = doctor(tmp_path / "data", *args, POS_CLIENT__ADMIN__PIN="97531")
        printer.paper_out()
        out = doctor(tmp_path / "data", *args, POS_CLIENT__ADMIN__PIN="97531")
        printer.paper_low()
        low = doctor(tmp_path / "data", *args, POS_CLIENT__ADMIN__PIN="97531")
    (row,) = rows(ready, "ok  printer front:")
    assert f"network 127.0.0.1:{printer.port}" in row and row.endswith("ready")
    assert ready.returncode == 0, ready.stdout
    assert rows(out, "BAD printer front:")[0].endswith("paper out") and out.returncode != 0
    assert rows(low, "WARN printer front:")[0].endswith("paper low") and low.returncode == 0


def test_a_bad_printer_table_is_named_by_its_config_key(tmp_path: Path) -> None:
    config = tmp_path / "till.toml"
    config.write_text('[[printers]]\nkind = "network"\nport = 9100\n')
    result = doctor(tmp_path / "data", "--config", str(config), POS_CLIENT__ADMIN__PIN="97531")
    (row,) = rows(result, "BAD printers:")
    assert "'printers[0]'" in row and "'host'" in row
    assert "Traceback" not in result.stderr
