"""Small dataclass events and a thread-safe bus between drivers, core and UI.

Handlers run on the publisher's thread; a UI subscribes with a handler that re-posts onto
its own loop (Kivy's Clock), so background threads never touch widgets.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pos_client.domain import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanEvent:
    """What any reader saw: the one event every driver yields."""

    source: str  # driver instance name, e.g. "pcsc:ACS ACR122U 00 00", "sim"
    kind: str  # "nfc", "barcode", "phone", "error", "removed"
    value: str
    raw: bytes = b""
    at: datetime = field(default_factory=utcnow)

    def __repr__(self) -> str:  # values are identifiers: keep them out of logs
        return f"ScanEvent(source={self.source!r}, kind={self.kind!r}, len={len(self.value)})"


# ScanEvent kinds and the identification hint each one carries.
SCAN_HINTS: dict[str, str] = {
    "nfc": "nfc",  # value: card UID in hex
    "ndef": "barcode",  # value: a member number read from the card's NDEF record
    "barcode": "barcode",  # value: the scanned text, AIM prefix included
    "phone": "phone",  # value: digits as typed
    "sun": "sun",  # value: a secure card's URL (its SUN message), verified by the server
}


@dataclass(frozen=True)
class ReaderStatus:
    """A reader came, went or failed; shown in the status bar and by `doctor`."""

    source: str
    state: str  # "connected", "disconnected", "error"
    detail: str = ""
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class CameraFrame:
    """A small copy of what a camera reader sees, for a live preview (RGB rows, top first)."""

    source: str
    width: int
    height: int
    rgb: bytes

    def __repr__(self) -> str:  # a frame may show a member's card: never logged
        return f"CameraFrame(source={self.source!r}, {self.width}x{self.height})"


@dataclass(frozen=True)
class NetworkCommand:
    """From the simulated reader (field tests): switch the backend connection off or on,
    and/or make every call to it slow by `latency_s`; None leaves that as it is."""

    online: bool | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class SyncStatus:
    online: bool
    pending: int
    dead: int
    oldest_pending_age_s: float | None
    last_error: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class OperationSynced:
    key: str
    kind: str
    result: dict[str, Any]


@dataclass(frozen=True)
class OperationDead:
    key: str
    kind: str
    code: str
    error: str


@dataclass(frozen=True)
class SaleRecorded:
    key: str
    member_id: str
    expected_points: int
    redeemed_points: int
    offline: bool


Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._handlers[event_type].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers[event_type]:
                    self._handlers[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: Any) -> None:
        with self._lock:
            handlers = list(self._handlers.get(type(event), ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("event handler failed for %s", type(event).__name__)
