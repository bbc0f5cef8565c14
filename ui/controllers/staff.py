"""Staff actions behind the PIN: the readers and queue report, retry, sync now, mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pos_client.ports import ReaderPort
from pos_client.queue_service import QueueReport, QueueService
from pos_client.staff import PinGuard
from ui.controllers.texts import Texts


class ModeShell(Protocol):
    mode: str


def queue_text(report: QueueReport) -> str:
    if report.problem is not None:
        return report.problem
    rows = [f"pending {report.unsent}, dead {report.dead}, acked {report.acked}"]
    if report.oldest_unsent_age_s is not None:
        rows.append(f"oldest unsent: {report.oldest_unsent_age_s:.0f} s")
    rows += [f"dead {e.key[-8:]}: {e.code}: {e.error}" for e in report.dead_entries]
    return "\n".join(rows)


class StaffController:
    def __init__(
        self,
        shell: ModeShell,
        pin_guard: PinGuard,
        queue: QueueService,
        readers: Sequence[ReaderPort],
        texts: Texts,
    ) -> None:
        self._shell = shell
        self._pin_guard = pin_guard
        self._queue = queue
        self._readers = readers
        self._texts = texts

    def unlock(self, pin: str) -> str | None:
        """None when the PIN opens the staff screen, else what to say (wrong, locked)."""
        result = self._pin_guard.check(pin)
        if result.ok:
            return None
        if result.locked_for_s:
            return self._texts.tr("admin.locked", seconds=int(result.locked_for_s + 0.999))
        return self._texts.tr("admin.wrong_pin", left=result.attempts_left)

    def report(self) -> tuple[str, str]:
        """The readers' and the queue's state, one text each."""
        readers = "\n".join(reader.describe() for reader in self._readers) or "-"
        return readers, queue_text(self._queue.report())

    def retry(self) -> None:
        self._queue.retry_dead()

    def sync_now(self) -> None:
        self._queue.sync_now()

    def toggle_mode(self) -> None:
        self._shell.mode = "kiosk" if self._shell.mode == "cashier" else "cashier"
