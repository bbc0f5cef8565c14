"""The status bar: online or not, unsent and dead sales, and how the readers are doing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from pos_client.events import OperationDead, OperationSynced, ReaderStatus, SyncStatus
from pos_client.ports import ReaderPort
from pos_client.queue_service import QueueService
from ui import i18n
from ui.controllers.navigation import Navigator
from ui.controllers.texts import Texts

log = logging.getLogger(__name__)


class StatusShell(Protocol):
    """The app properties the status bar shows."""

    status_online: bool
    status_pending: int
    status_dead: int
    status_readers: str


class StatusController:
    def __init__(
        self,
        shell: StatusShell,
        queue: QueueService,
        readers: Sequence[ReaderPort],
        nav: Navigator,
        texts: Texts,
    ) -> None:
        self._shell = shell
        self._queue = queue
        self._readers = readers
        self._nav = nav
        self._texts = texts
        self.reader_states: dict[str, str] = {}

    def start(self) -> None:
        for reader in self._readers:
            self.reader_states[reader.name] = "ok" if reader.problem() is None else "error"
        self.show_readers()
        self._queue.publish_status()

    def on_sync_status(self, status: SyncStatus) -> None:
        if self._shell.status_online and not status.online:
            self._nav.show_message(self._texts.tr("error.backend"))  # once, when the link drops
        self._shell.status_online = status.online
        self._shell.status_pending = status.pending
        self._shell.status_dead = status.dead

    def reader_name(self, source: str) -> str:
        """Drivers report as "kind:name" ("serial:front"); the status bar keys by name."""
        _kind, _sep, name = source.partition(":")
        known = {reader.name for reader in self._readers}
        return name if name in known else source

    def on_reader_status(self, status: ReaderStatus) -> None:
        state = {"connected": "ok"}.get(status.state, status.state)
        self.reader_states[self.reader_name(status.source)] = state
        self.show_readers()
        if status.state in ("error", "disconnected"):
            log.info("reader %s %s: %s", status.source, status.state, status.detail)
            self._nav.show_message(self._texts.tr("error.card_reader"))

    def on_synced(self, _event: OperationSynced) -> None:
        self._queue.publish_status()

    def on_dead(self, event: OperationDead) -> None:
        log.info("sale %s refused for good: %s (%s)", event.key[-8:], event.code, event.error)
        self._nav.show_message(i18n.dead_message(self._texts.language, event.code))

    def show_readers(self) -> None:
        """The readers' state in the current language (again when the language changes)."""
        self._shell.status_readers = i18n.readers_state(self._texts.language, self.reader_states)
