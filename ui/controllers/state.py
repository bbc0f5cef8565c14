"""State the controllers share: the customer at the terminal now, and the last activity."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pos_client.checkout import MemberSession, Receipt


@dataclass
class Customer:
    """Who is at the terminal: the identified member, a phone typed to enroll, a receipt."""

    session: MemberSession | None = None
    pending_phone: str = ""
    last_receipt: Receipt | None = None

    def forget(self) -> None:
        """The member leaves: nothing of them stays on screen."""
        self.session = None
        self.pending_phone = ""


class Activity:
    """When someone last touched, typed, scanned or moved between screens."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last = clock()

    def touch(self) -> None:
        self.last = self._clock()

    def idle_for(self) -> float:
        return self._clock() - self.last
