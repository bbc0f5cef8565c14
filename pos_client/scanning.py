"""From reader events to identified members: the one path every driver's events take.

Drivers publish ScanEvent on the bus from their own threads; the router queues them and
identifies on its own worker thread (a lookup may wait on the backend), then publishes
MemberIdentified or IdentificationFailed for the UI to apply on its clock.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pos_client.checkout import Checkout, MemberNotFound, MemberSession
from pos_client.domain import IdentityKind, utcnow
from pos_client.events import SCAN_HINTS, EventBus, NetworkCommand, ScanEvent
from pos_client.identify import IdentifyError
from pos_client.ports import CardRefused

log = logging.getLogger(__name__)


class NetworkControl(Protocol):
    """What field tests may do to the backend link (the core's NetworkSwitch)."""

    def set_online(self, online: bool) -> None: ...

    def set_latency(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class MemberIdentified:
    source: str
    session: MemberSession
    scanned_at: datetime  # when the reader saw it: for tap-to-screen latency
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class IdentificationFailed:
    """Why a scan found nobody. `message` is the English detail (logs, CLI); screens say
    `code` with `params` in the customer's language (ui.i18n.error_text)."""

    source: str
    reason: str  # "invalid" (bad input), "unknown" (no member), "reader" (card/reader fault)
    message: str
    can_enroll: bool = False  # an unknown phone number: offer to join
    code: str = "invalid"  # a pos_client.errors code: "phone_invalid", "member_not_found"…
    params: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class CardRemoved:
    source: str


class ScanRouter:
    def __init__(
        self,
        checkout: Checkout,
        bus: EventBus,
        network: NetworkControl | None = None,
    ) -> None:
        self.checkout = checkout
        self.bus = bus
        self.network = network
        self._queue: queue.Queue[ScanEvent | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        self._unsubscribe = [
            self.bus.subscribe(ScanEvent, self._queue.put),
            self.bus.subscribe(NetworkCommand, self._network),
        ]
        self._thread = threading.Thread(target=self._run, name="scan-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> ScanRouter:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _network(self, command: NetworkCommand) -> None:
        if self.network is not None:
            if command.online is not None:
                self.network.set_online(command.online)
            if command.latency_s is not None:
                self.network.set_latency(command.latency_s)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                outcome = self.route(event)
            except Exception as exc:  # one bad event must never stop identification
                # No traceback: its frames could hold the scanned value in clear.
                log.error(
                    "scan from %s could not be handled (%s)", event.source, type(exc).__name__
                )
                outcome = IdentificationFailed(
                    event.source, "invalid", "this input could not be handled; try again"
                )
            self.bus.publish(outcome)

    def route(self, event: ScanEvent) -> MemberIdentified | IdentificationFailed | CardRemoved:
        if event.kind == "removed":
            return CardRemoved(event.source)
        if event.kind == "error":
            return IdentificationFailed(event.source, "reader", event.value, code="card_reader")
        hint = SCAN_HINTS.get(event.kind)
        if hint is None:
            return IdentificationFailed(
                event.source, "reader", f"unknown input {event.kind!r}", code="card_reader"
            )
        try:
            identity = self.checkout.parse(event.value, hint)
        except (IdentifyError, ValueError) as exc:
            if not isinstance(exc, IdentifyError):
                exc = IdentifyError(f"cannot read this input ({type(exc).__name__})")
            log.info("unusable input from %s: %s", event.source, exc)
            return IdentificationFailed(
                event.source, "invalid", str(exc), code=exc.code, params=dict(exc.params)
            )
        try:
            session = self.checkout.find(identity, event.raw if event.kind == "sun" else b"")
        except CardRefused as exc:  # a copied or forged secure card, or none checkable now
            log.warning("secure card refused from %s (%s)", event.source, exc.code)
            return IdentificationFailed(event.source, "refused", str(exc), code=exc.code)
        except MemberNotFound:
            log.info("no member for %s from %s", identity.redacted(), event.source)
            return IdentificationFailed(
                event.source,
                "unknown",
                "no member with this card or phone",
                can_enroll=identity.kind is IdentityKind.PHONE,
                code="member_not_found",
            )
        return MemberIdentified(event.source, session, event.at)
