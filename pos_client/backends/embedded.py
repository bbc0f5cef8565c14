"""The ledger in-process, on a local SQLite file: the terminal's default backend."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from pos_client.domain import IdentityKind, MemberView
from pos_client.errors import CardLinkRefused
from pos_client.heartbeat import Heartbeat
from pos_client.ledger import Ledger
from pos_client.operations import OpRejected, StaffAward
from pos_client.pins import PinCheck
from pos_client.ports import BackendUnavailable, CardRefused, OpResult, op_result
from pos_client.program import ProgramDocument
from pos_client.sun import SunKeys, SunRefused

log = logging.getLogger(__name__)
# A refused secure card's reason, as the screens' error code.
REFUSAL_CODES = {"replayed": "card_replayed", "blocked": "card_blocked"}


class EmbeddedBackend:
    def __init__(
        self, ledger: Ledger, card_keys: SunKeys | None = None, terminal_id: str = ""
    ) -> None:
        self.ledger = ledger
        self.terminal_id = terminal_id  # recorded with this till's staff awards
        self.card_keys = card_keys  # the secure cards' keys: this terminal is the store

    def lookup(self, kind: str, value: str) -> MemberView | None:
        if kind == IdentityKind.SECURE_CARD.value:
            return self.tap(value)
        member_id = self.ledger.find_member_id(kind, value)
        return self.ledger.member_view(member_id) if member_id else None

    def tap(self, url: str, uid: bytes | None = None) -> MemberView | None:
        """A secure card's message checked here, as the store server does: verified with
        the card keys, its read counter accepted once, then the member (None: a genuine
        card linked to no one). CardRefused for a copy, a forgery, or without keys."""
        if self.card_keys is None:
            raise CardRefused(
                "this terminal has no secure-card keys (backend.card_keys_file): scan the "
                "card's barcode or enter a phone number",
                "secure_card_offline",
            )
        try:
            member_id = self.ledger.member_by_secure_card(self.card_keys, url, uid)
        except SunRefused as refused:
            log.warning("secure card refused: %s", refused.reason)  # never the card's UID
            code = REFUSAL_CODES.get(refused.reason, "card_refused")
            raise CardRefused(f"card refused: {refused}", code) from None
        return self.ledger.member_view(member_id) if member_id else None

    def member(self, member_id: str) -> MemberView | None:
        return self.ledger.member_view(member_id)

    def card_known(self, uid: bytes) -> bool:
        return self.ledger.card_known(uid)

    def set_pin(self, member_id: str, pin: str, current_pin: str | None = None) -> None:
        self.ledger.set_member_pin(member_id, pin, current_pin)

    def check_pin(self, member_id: str, pin: str) -> PinCheck:
        return self.ledger.check_member_pin(member_id, pin)

    def award(self, award: StaffAward) -> dict[str, Any]:
        return self.ledger.award(award, terminal_id=self.terminal_id, merchant=self.ledger.merchant)

    def pass_link(self, member_id: str) -> str:
        raise OpRejected("passes_off", "wallet passes are made by a store server")

    def link_card(self, url: str, member_id: str) -> bool:
        if self.card_keys is None:
            raise CardRefused(
                "this terminal has no secure-card keys (backend.card_keys_file)", "card_refused"
            )
        try:
            return self.ledger.link_secure_card(self.card_keys, url, member_id)
        except SunRefused as refused:
            log.warning("secure card refused: %s", refused.reason)
            code = REFUSAL_CODES.get(refused.reason, "card_refused")
            raise CardRefused(f"card refused: {refused}", code) from None
        except CardLinkRefused as refused:
            raise CardRefused(str(refused), refused.code) from None

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        try:
            outcomes = self.ledger.apply_many(list(bodies))
        except OperationalError as exc:  # database locked or I/O trouble: try again later
            raise BackendUnavailable(f"ledger unavailable: {exc.orig}") from None
        return [op_result(body, outcome) for body, outcome in zip(bodies, outcomes, strict=True)]

    def fetch_program(self, known_version: str | None) -> ProgramDocument | None:
        """The terminal's own ledger applies its local programme: nothing to fetch."""
        return None

    def ping(self) -> None:
        try:
            with self.ledger.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise BackendUnavailable(f"ledger unavailable: {exc.orig}") from None

    def heartbeat(self, beat: Heartbeat) -> None:
        """The terminal is its own store: there is no fleet page to report to."""

    def close(self) -> None:
        self.ledger.engine.dispose()
