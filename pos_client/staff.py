"""Staff access: a PIN with a lockout after repeated failures. Pure, clock injected.

The lockout survives a restart when the guard is given a state file: otherwise pulling the
plug would reset the count and give a guesser three more tries every boot.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from pos_client.files import write_private_atomically

log = logging.getLogger(__name__)

# The PIN shipped in config/default.toml: fine for a demo, never for a customer-facing kiosk.
DEFAULT_PIN = "2468"


@dataclass(frozen=True)
class PinResult:
    ok: bool
    locked_for_s: float = 0.0
    attempts_left: int = 0


MAX_LOCKOUT_S = 3600.0  # the longest one lockout lasts, however many came before


class PinGuard:
    """Staff PIN attempts: after `max_attempts` wrong PINs, a lockout that doubles with each
    lockout in a row (60 s, 120 s, 240 s ... at most an hour) until a right PIN: an unattended
    kiosk's 4-digit PIN takes months to guess, not days. Kept across restarts."""

    def __init__(
        self,
        pin: str,
        max_attempts: int,
        lockout_s: float,
        clock: Callable[[], float] = time.time,
        state_path: Path | None = None,
    ) -> None:
        self._pin = pin
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s
        self.clock = clock
        self.state_path = state_path
        self.failures = 0
        self.lockouts = 0  # lockouts in a row since the last right PIN
        self.locked_until = 0.0
        self._load()

    def lockout_length(self) -> float:
        doubled = float(self.lockout_s) * float(2 ** min(self.lockouts, 32))
        return min(doubled, max(MAX_LOCKOUT_S, float(self.lockout_s)))

    def locked_for(self) -> float:
        return max(0.0, self.locked_until - self.clock())

    def check(self, attempt: str) -> PinResult:
        remaining = self.locked_for()
        if remaining > 0:
            return PinResult(False, remaining, 0)
        if hmac.compare_digest(attempt.encode(), self._pin.encode()):
            self.failures = self.lockouts = 0
            self._save()
            return PinResult(True, 0.0, self.max_attempts)
        self.failures += 1
        if self.failures >= self.max_attempts:
            length = self.lockout_length()
            self.failures = 0
            self.lockouts += 1
            self.locked_until = self.clock() + length
            self._save()
            return PinResult(False, length, 0)
        self._save()
        return PinResult(False, 0.0, self.max_attempts - self.failures)

    def _load(self) -> None:
        if self.state_path is None:
            return
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            failures = int(state["failures"])
            locked_until = float(state["locked_until"])
            lockouts = int(state.get("lockouts", 0))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged file must not unlock: treat it as a fresh lockout.
            log.warning("staff lock state unreadable; locking for %s s", self.lockout_s)
            self.locked_until = self.clock() + self.lockout_s
            return
        now = self.clock()
        self.failures = min(max(failures, 0), self.max_attempts - 1)
        self.lockouts = min(max(lockouts, 0), 32)
        # Bounded: a clock set backwards or an edited file cannot lock staff out for days.
        self.locked_until = min(locked_until, now + self.lockout_length())

    def _save(self) -> None:
        if self.state_path is None:
            return
        state = {
            "failures": self.failures,
            "lockouts": self.lockouts,
            "locked_until": self.locked_until,
        }
        try:
            write_private_atomically(self.state_path, json.dumps(state))
        except OSError as exc:  # a full disk must not crash the staff screen
            log.warning("could not save the staff lock state: %s", exc)

    def kiosk_problem(self) -> str | None:
        """Why this PIN may not guard a kiosk (see kiosk_pin_problem), or None."""
        return kiosk_pin_problem("kiosk", self._pin)

    def __repr__(self) -> str:
        return "PinGuard(<pin hidden>)"


STATE_FILE = "staff-lock.json"


def pin_guard(pin: str, max_attempts: int, lockout_s: float, data_dir: Path) -> PinGuard:
    """The terminal's guard, its lockout kept in the data folder across restarts."""
    return PinGuard(pin, max_attempts, lockout_s, state_path=data_dir / STATE_FILE)


def guessable(pin: str) -> bool:
    """The PINs a passer-by tries first: one digit repeated, or a run up or down."""
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return len(steps) == 1 and steps <= {-1, 0, 1}


def kiosk_pin_problem(mode: str, pin: str) -> str | None:
    """Why this terminal must not run as a kiosk, or None: a kiosk faces customers."""
    if mode != "kiosk":
        return None
    if pin == DEFAULT_PIN:
        return (
            "config key 'admin.pin': a kiosk must not run with the default staff PIN "
            f"({len(DEFAULT_PIN)} digits from config/default.toml); set admin.pin or "
            "POS_CLIENT__ADMIN__PIN to a PIN of your own"
        )
    if guessable(pin):
        return (
            "config key 'admin.pin': a kiosk must not run with a PIN anyone would try first "
            "(one digit repeated, or digits in a run like 1234); choose another"
        )
    return None


MODE_FILE = "terminal-mode.json"
MODES = ("cashier", "kiosk")


class ModeStore:
    """The mode staff last switched this terminal to, kept in its data folder so that a
    restart does not undo it. A missing file means "as configured"; a damaged one is
    logged and ignored (the configured mode is used), never a reason not to start."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, configured: str) -> str:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            mode = state["mode"]
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}")
        except FileNotFoundError:
            return configured
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "the saved terminal mode (%s) is unreadable (%s); using the configured mode %s",
                self.path.name,
                exc,
                configured,
            )
            return configured
        return str(mode)

    def save(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        try:
            write_private_atomically(self.path, json.dumps({"mode": mode}))
        except OSError as exc:  # a full disk must not crash the staff screen
            log.warning("could not save the terminal mode: %s", exc)


def mode_store(data_dir: Path) -> ModeStore:
    return ModeStore(data_dir / MODE_FILE)
