"""Staff access: a PIN with a lockout after repeated failures. Pure, clock injected."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PinResult:
    ok: bool
    locked_for_s: float = 0.0
    attempts_left: int = 0


class PinGuard:
    def __init__(
        self,
        pin: str,
        max_attempts: int,
        lockout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pin = pin
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s
        self.clock = clock
        self.failures = 0
        self.locked_until = 0.0

    def locked_for(self) -> float:
        return max(0.0, self.locked_until - self.clock())

    def check(self, attempt: str) -> PinResult:
        remaining = self.locked_for()
        if remaining > 0:
            return PinResult(False, remaining, 0)
        if hmac.compare_digest(attempt.encode(), self._pin.encode()):
            self.failures = 0
            return PinResult(True, 0.0, self.max_attempts)
        self.failures += 1
        if self.failures >= self.max_attempts:
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
            return PinResult(False, self.lockout_s, 0)
        return PinResult(False, 0.0, self.max_attempts - self.failures)

    def __repr__(self) -> str:
        return "PinGuard(<pin hidden>)"
