"""Staff actions behind the PIN: the readers and queue report, retry, sync now, mode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pos_client.domain import utcnow
from pos_client.outbox import OutboxError
from pos_client.ports import ReaderPort
from pos_client.queue_service import QueueReport, QueueService
from pos_client.staff import ModeStore, PinGuard
from ui import i18n
from ui.controllers.texts import Texts

log = logging.getLogger(__name__)


class ModeShell(Protocol):
    mode: str

    def stop(self) -> Any: ...


@dataclass(frozen=True)
class _Counts:
    """A QueueReport as i18n.outbox_report reads queue counts."""

    report: QueueReport

    @property
    def unsent(self) -> int:
        return self.report.unsent

    @property
    def dead(self) -> int:
        return self.report.dead

    @property
    def acked(self) -> int:
        return self.report.acked

    def oldest_pending_age(self, _now: datetime) -> float | None:
        return self.report.oldest_unsent_age_s


@dataclass(frozen=True)
class _Failed:
    key: str
    error_code: str | None


def queue_text(report: QueueReport, language: str = "en") -> str:
    """The outbox lines of the staff screen, in `language`; the English details go to the log."""
    if report.problem is not None:
        log.warning("the sales queue cannot be read: %s", report.problem)
        return i18n.translate(language, "report.unreadable")
    for entry in report.dead_entries:
        log.info("failed sale %s: %s: %s", entry.key[-8:], entry.code, entry.error)
    failed = [_Failed(entry.key, entry.code) for entry in report.dead_entries]
    return i18n.outbox_report(language, _Counts(report), utcnow(), failed)


def readers_text(readers: Sequence[ReaderPort], states: Mapping[str, str], language: str) -> str:
    """One line a reader: its name and its state in words ("sim: готовы")."""
    rows = []
    for reader in readers:
        state = states.get(reader.name) or ("ok" if reader.problem() is None else "error")
        rows.append(
            i18n.translate(
                language,
                "admin.reader",
                name=reader.name,
                state=i18n.readers_state(language, {reader.name: state}),
            )
        )
    return "\n".join(rows) or i18n.translate(language, "readers.none")


class StaffController:
    def __init__(
        self,
        shell: ModeShell,
        pin_guard: PinGuard,
        queue: QueueService,
        readers: Sequence[ReaderPort],
        texts: Texts,
        reader_states: Mapping[str, str] | None = None,
        say: Callable[[str], None] = lambda _text: None,
        modes: ModeStore | None = None,
        ask: Callable[[str, Sequence[str], Callable[[], None]], Any] | None = None,
    ) -> None:
        self._shell = shell
        self._modes = modes
        self._ask = ask
        self._say = say
        self._pin_guard = pin_guard
        self._queue = queue
        self._readers = readers
        self._texts = texts
        self._reader_states: Mapping[str, str] = reader_states if reader_states is not None else {}

    def unlock(self, pin: str) -> str | None:
        """None when the PIN opens the staff screen, else what to say (wrong, locked)."""
        result = self._pin_guard.check(pin)
        if result.ok:
            return None
        if result.locked_for_s:
            return self._texts.tr("admin.locked", seconds=int(result.locked_for_s + 0.999))
        return self._texts.tr("admin.wrong_pin", left=result.attempts_left)

    def report(self) -> tuple[str, str]:
        """The readers' and the queue's state, one text each, in the current language."""
        language = self._texts.language
        return (
            readers_text(self._readers, self._reader_states, language),
            queue_text(self._queue.report(), language),
        )

    def retry(self) -> str:
        """Failed sales go back to the queue; says how many (or that there were none)."""
        try:
            count = self._queue.retry_dead()
        except OutboxError as exc:
            return self._queue_problem(exc)
        if count:
            text = self._texts.tr("admin.retried", count=count)
        elif self._queue.report().dead:  # only entries damaged here: resending cannot help
            text = self._texts.tr("admin.retry_damaged")
        else:
            text = self._texts.tr("admin.retry_none")
        self._say(text)
        return text

    def sync_now(self) -> str:
        """Every unsent sale is sent now; says how many (or that nothing was waiting)."""
        try:
            count = self._queue.sync_now()
        except OutboxError as exc:
            return self._queue_problem(exc)
        text = (
            self._texts.tr("admin.syncing", count=count)
            if count
            else self._texts.tr("admin.sync_none")
        )
        self._say(text)
        return text

    def _queue_problem(self, exc: OutboxError) -> str:
        log.warning("staff action on the sales queue failed: %s", exc)
        text = self._texts.tr("report.unreadable")
        self._say(text)
        return text

    def exit(self) -> None:
        """Quitting the terminal app is asked first: a stray tap must not close it."""
        if self._ask is None:
            self._shell.stop()
            return
        self._ask(
            self._texts.tr("admin.exit_title"),
            [self._texts.tr("admin.exit_detail")],
            self._shell.stop,
        )

    def toggle_mode(self) -> None:
        target = "kiosk" if self._shell.mode == "cashier" else "cashier"
        if target == "kiosk" and self._pin_guard.kiosk_problem() is not None:
            # The same rule as at start: a kiosk never runs on a PIN anyone can guess.
            self._say(self._texts.tr("admin.kiosk_pin"))
            return
        self._shell.mode = target
        if self._modes is not None:
            self._modes.save(target)  # a restart keeps the mode staff chose
        self._say(self._texts.tr("admin.mode_now", name=self._texts.tr(f"mode.{target}")))
