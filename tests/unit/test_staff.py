"""The staff PIN guard: lockout after repeated failures, kept across restarts."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from pos_client.staff import (
    DEFAULT_PIN,
    MODE_FILE,
    PinGuard,
    kiosk_pin_problem,
    mode_store,
    pin_guard,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_three_wrong_pins_lock_and_the_lock_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    guard = PinGuard("1357", 3, 60, clock)
    assert guard.check("0000").attempts_left == 2
    assert guard.check("0000").attempts_left == 1
    locked = guard.check("0000")
    assert not locked.ok and locked.locked_for_s == 60
    assert not guard.check("1357").ok  # the right PIN, but locked
    clock.now += 61
    assert guard.check("1357").ok


def test_each_lockout_in_a_row_doubles_up_to_an_hour_even_across_restarts(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    state = tmp_path / "staff-lock.json"
    lengths = []
    for _ in range(8):
        guard = PinGuard("1357", 3, 60, clock, state)  # a restart between lockouts
        results = [guard.check("0000") for _ in range(3)]
        lengths.append(results[-1].locked_for_s)
        clock.now += results[-1].locked_for_s + 1
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert PinGuard("1357", 3, 60, clock, state).check("1357").ok  # a right PIN resets it
    guard = PinGuard("1357", 3, 60, clock, state)
    assert [guard.check("0000") for _ in range(3)][-1].locked_for_s == 60


def test_the_lockout_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "staff-lock.json"
    guard = PinGuard("1357", 3, 60, clock, state)
    for _ in range(3):
        guard.check("0000")
    restarted = PinGuard("1357", 3, 60, clock, state)
    result = restarted.check("1357")
    assert not result.ok and 59 < result.locked_for_s <= 60
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_failures_short_of_a_lockout_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "staff-lock.json"
    PinGuard("1357", 3, 60, clock, state).check("0000")
    PinGuard("1357", 3, 60, clock, state).check("0000")
    third = PinGuard("1357", 3, 60, clock, state).check("0000")
    assert third.locked_for_s == 60


def test_a_damaged_state_file_locks_rather_than_unlocks(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "staff-lock.json"
    state.write_bytes(b"\xff\x00not json")
    result = PinGuard("1357", 3, 60, clock, state).check("1357")
    assert not result.ok and result.locked_for_s == 60


def test_an_edited_far_future_lock_is_bounded_by_the_lockout(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "staff-lock.json"
    state.write_text('{"failures": 99, "locked_until": 1e18}')
    guard = PinGuard("1357", 3, 60, clock, state)
    assert guard.locked_for() == 60
    clock.now += 61
    assert guard.check("1357").ok


def test_the_terminal_guard_keeps_its_state_in_the_data_folder(tmp_path: Path) -> None:
    guard = pin_guard("1357", 1, 60, tmp_path)
    guard.check("0000")
    assert (tmp_path / "staff-lock.json").exists()
    assert not pin_guard("1357", 1, 60, tmp_path).check("1357").ok


def test_a_kiosk_with_the_default_pin_is_refused_and_a_cashier_is_not() -> None:
    problem = kiosk_pin_problem("kiosk", DEFAULT_PIN)
    assert problem is not None and "admin.pin" in problem and DEFAULT_PIN not in problem
    assert kiosk_pin_problem("kiosk", "97531") is None
    assert kiosk_pin_problem("cashier", DEFAULT_PIN) is None


def test_a_kiosk_refuses_pins_a_passer_by_tries_first() -> None:
    for pin in ("0000", "1111", "1234", "4321", "123456", "9876"):
        problem = kiosk_pin_problem("kiosk", pin)
        assert problem is not None and "try first" in problem, pin
    for pin in ("7391", "97531", "1357", "2580"):
        assert kiosk_pin_problem("kiosk", pin) is None, pin


def test_the_mode_store_keeps_the_switched_mode_0600_and_ignores_a_damaged_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = mode_store(tmp_path)
    assert store.load("cashier") == "cashier"  # nothing saved: as configured
    store.save("kiosk")
    assert store.load("cashier") == "kiosk"
    assert stat.S_IMODE((tmp_path / MODE_FILE).stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        store.save("admin")
    for damaged in ('{"mode": "kio', '{"mode": "superuser"}', "[]", ""):
        (tmp_path / MODE_FILE).write_text(damaged, encoding="utf-8")
        with caplog.at_level(logging.WARNING, logger="pos_client.staff"):
            caplog.clear()
            assert store.load("cashier") == "cashier"
        assert "using the configured mode cashier" in caplog.text
