"""The status bar: online or not, unsent and dead sales, and how the readers are doing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pos_client.events import OperationDead, OperationSynced, ReaderStatus, SyncStatus
from pos_client.ports import ReaderPort
from pos_client.queue_service import QueueService
from ui.controllers.navigation import Navigator
from ui.controllers.texts import Texts


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
        self._show_readers()
        self._queue.publish_status()

    def on_sync_status(self, status: SyncStatus) -> None:
        if self._shell.status_online and not status.online:
            self._nav.show_message(self._texts.tr("error.backend"))  # once, when the link drops
        self._shell.status_online = status.online
        self._shell.status_pending = status.pending
        self._shell.status_dead = status.dead

    def on_reader_status(self, status: ReaderStatus) -> None:
        self.reader_states[status.source] = {"connected": "ok"}.get(status.state, status.state)
        self._show_readers()
        if status.state in ("error", "disconnected"):
            self._nav.show_message(self._texts.tr("error.reader", detail=status.detail))

    def on_synced(self, _event: OperationSynced) -> None:
        self._queue.publish_status()

    def on_dead(self, event: OperationDead) -> None:
        self._nav.show_message(self._texts.tr("error.refused", detail=event.error))

    def _show_readers(self) -> None:
        states = set(self.reader_states.values())
        if not states:
            self._shell.status_readers = "-"
        elif states == {"ok"}:
            self._shell.status_readers = f"{len(self.reader_states)} ok"
        else:
            bad = [name for name, state in self.reader_states.items() if state != "ok"]
            self._shell.status_readers = ", ".join(
                f"{name}: {self.reader_states[name]}" for name in bad
            )
