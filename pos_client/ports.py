"""The core's ports.

`Backend`: what the terminal needs from a loyalty backend, embedded or remote.
`RunningTerminalPort`: what a front end (the Kivy app) needs from a running terminal; the
composition root's `RunningTerminal` satisfies it, so the UI never imports the bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pos_client.domain import MemberView
from pos_client.operations import OpConflict, OpRejected, StaffAward

if TYPE_CHECKING:
    from pos_client.checkout import Checkout
    from pos_client.events import EventBus
    from pos_client.heartbeat import Heartbeat
    from pos_client.pins import PinCheck
    from pos_client.printing import PrintService
    from pos_client.program import ProgramDocument
    from pos_client.queue_service import QueueService
    from pos_client.rules import Program
    from pos_client.settings import Settings


class BackendUnavailable(Exception):
    """The backend cannot be reached now (timeout, refused, 5xx): retry later."""


class CardRefused(Exception):
    """A secure card's message the backend refused (forged, unreadable, replayed: a copy),
    or one that cannot be checked now (offline). `code` names it for the screen."""

    def __init__(self, message: str, code: str = "card_refused") -> None:
        super().__init__(message)
        self.code = code


class BackendServerError(BackendUnavailable):
    """The backend answered a batch with a server error (5xx). It may be down, or one
    operation in the batch may be what it fails on: the sync worker finds out which."""


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # applied before; `result` is the first result
    REJECTED = "rejected"  # permanent: dead letter, shown to staff
    CONFLICT = "conflict"  # key reused with another body: dead letter
    RETRY = "retry"  # transient for this one operation

    @property
    def done(self) -> bool:
        return self in (Outcome.APPLIED, Outcome.DUPLICATE)

    @property
    def permanent_failure(self) -> bool:
        return self in (Outcome.REJECTED, Outcome.CONFLICT)


@dataclass(frozen=True)
class OpResult:
    key: str
    outcome: Outcome
    result: dict[str, Any] | None = None
    code: str | None = None
    error: str | None = None


def op_result(body: dict[str, Any], outcome: dict[str, Any] | OpRejected) -> OpResult:
    """What the ledger said of one operation, as the port's result."""
    key = str(body.get("key", ""))
    if isinstance(outcome, OpConflict):
        return OpResult(key, Outcome.CONFLICT, code=outcome.code, error=outcome.message)
    if isinstance(outcome, OpRejected):
        return OpResult(key, Outcome.REJECTED, code=outcome.code, error=outcome.message)
    status = Outcome.DUPLICATE if outcome.get("status") == "duplicate" else Outcome.APPLIED
    return OpResult(key, status, result=outcome)


class Backend(Protocol):
    def lookup(self, kind: str, value: str) -> MemberView | None:
        """Find a member by identifier kind and stored value (HMAC for phones)."""

    def member(self, member_id: str) -> MemberView | None: ...

    def tap(self, url: str, uid: bytes | None = None) -> MemberView | None:
        """A secure card's message checked: the member, None for a genuine card linked to
        no one. `uid`: the UID the reader saw, which the message must prove. CardRefused
        for a copy, a forgery or an emulator; BackendUnavailable offline."""

    def card_known(self, uid: bytes) -> bool:
        """A card with this UID is known to the store (linked, tapped, blocked)."""

    def set_pin(self, member_id: str, pin: str, current_pin: str | None = None) -> None:
        """Set the member's PIN (one set already: with `current_pin`). ValueError: a PIN
        that cannot be one, or no such member; PinRefused: the current PIN is needed, or
        wrong; BackendUnavailable offline."""

    def check_pin(self, member_id: str, pin: str) -> PinCheck:
        """A PIN given for the member (counted: the fifth wrong one in a row locks it)."""

    def award(self, award: StaffAward) -> dict[str, Any]:
        """A staff award, checked and applied by the backend's ledger (online only: the
        PINs are checked there, never queued). OpRejected with the refusal's code;
        BackendUnavailable offline."""

    def link_card(self, url: str, member_id: str) -> bool:
        """Link the secure card that answered with `url` to a member (True: linked now;
        False: it already was). CardRefused for a copy or forgery, or a card that is
        another member's, or no such member; BackendUnavailable offline."""

    def pass_link(self, member_id: str) -> str:
        """A short-lived link to the member's wallet passes, for the phone to open (shown as
        a QR code). OpRejected `passes_off` where there are none (an embedded ledger, a
        server without pass keys) or `unknown_member`; BackendUnavailable offline."""

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        """Apply operations in order, each on its own; one result per body.
        Raises BackendUnavailable if the batch as a whole could not be delivered."""

    def fetch_program(self, known_version: str | None) -> ProgramDocument | None:
        """The programme the backend applies, or None when it is `known_version` or the
        backend has none to hand out. Raises BackendUnavailable, or ValueError for an
        answer that is not a programme document."""

    def ping(self) -> None:
        """Return if the backend answers; raise BackendUnavailable otherwise."""

    def heartbeat(self, beat: Heartbeat) -> None:
        """Report the terminal's state (its outbox, readers, version) for the store's fleet
        page; a backend with no fleet does nothing. Raises BackendUnavailable when it
        could not be delivered or was refused (the caller logs it and goes on)."""

    def close(self) -> None: ...


class ReaderPort(Protocol):
    """An open reader, as a front end shows it (drivers.base.Reader has more)."""

    @property
    def name(self) -> str: ...

    def describe(self) -> str:
        """One line: what it is and how it is doing."""
        ...

    def problem(self) -> str | None:
        """What is wrong with this reader now, or None when it works."""
        ...


class TerminalPort(Protocol):
    """The core services a front end uses; never the outbox or the backend themselves."""

    @property
    def settings(self) -> Settings: ...

    @property
    def program(self) -> Program: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def checkout(self) -> Checkout: ...

    @property
    def queue(self) -> QueueService: ...


class RunningTerminalPort(Protocol):
    """A terminal with its readers open: what the UI is built over."""

    @property
    def terminal(self) -> TerminalPort: ...

    @property
    def readers(self) -> Sequence[ReaderPort]: ...

    @property
    def printing(self) -> PrintService | None:
        """The receipt printers' service; None when no printer is configured."""
        ...
