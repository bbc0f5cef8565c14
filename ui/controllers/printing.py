"""Receipts and cards on the store's printers: the job in the terminal's language, handed
to the print service (which prints off the UI thread), and the printers' faults shown on
the status bar. No printer configured: every call does nothing."""

from __future__ import annotations

import logging
from typing import Protocol

from pos_client.checkout import Receipt
from pos_client.printing import (
    PrinterState,
    PrinterStatus,
    PrintService,
    ReceiptLines,
    card_job,
    receipt_job,
)
from ui.controllers.navigation import Navigator
from ui.controllers.texts import Texts
from ui.i18n import N_

log = logging.getLogger(__name__)

STATE_KEYS: dict[PrinterState, str] = {
    PrinterState.PAPER_LOW: N_("printer.paper_low"),
    PrinterState.PAPER_OUT: N_("printer.paper_out"),
    PrinterState.COVER_OPEN: N_("printer.cover_open"),
    PrinterState.OFFLINE: N_("printer.offline"),
    PrinterState.UNREACHABLE: N_("printer.unreachable"),
}


class PrinterShell(Protocol):
    status_printer: str


class PrintController:
    def __init__(
        self,
        shell: PrinterShell,
        printing: PrintService | None,
        nav: Navigator,
        texts: Texts,
        store_name: str,
    ) -> None:
        self._shell = shell
        self._printing = printing
        self._nav = nav
        self._texts = texts
        self._store = store_name
        self.states: dict[str, PrinterState] = {}

    @property
    def configured(self) -> bool:
        return self._printing is not None

    def receipt(self, receipt: Receipt, rows: str) -> None:
        """Print a sale's receipt: `rows` are the receipt screen's lines (earned, spent,
        cash due, balance or pending), already in the terminal's language."""
        if self._printing is None:
            return
        tr = self._texts.tr
        lines = ReceiptLines(
            store=self._store,
            when=self._texts.moment(receipt.recorded_at),
            member=tr("receipt.member", name=receipt.member_name),
            rows=tuple(row for row in rows.split("\n") if row),
            key_label=tr("receipt.sale"),
        )
        self._printing.submit(receipt_job(receipt.key, lines))

    def card(self, name: str, card_number: str) -> None:
        """A new member's card with its barcode."""
        if self._printing is None or not card_number:
            return
        welcome = self._texts.tr("card.welcome")
        self._printing.submit(card_job(self._store, name, card_number, welcome))

    def reprint(self) -> bool:
        """The last receipt again (staff screen); False: none, or no printer."""
        return self._printing is not None and self._printing.reprint()

    def reprint_said(self) -> str:
        """Reprint from the staff screen, and say what happened."""
        text = self._texts.tr("printer.reprinted" if self.reprint() else "printer.no_receipt")
        self._nav.show_message(text)
        return text

    def on_printer_status(self, status: PrinterStatus) -> None:
        """A printer's state changed (on the clock): the status bar shows any printer that
        cannot print; a new fault is said once."""
        before = self.states.get(status.source)
        self.states[status.source] = status.state
        self.show()
        if status.state in STATE_KEYS and before is not status.state:
            log.info("printer %s: %s", status.source, status.state.value)
            if not status.state.prints:
                self._nav.show_message(self._texts.tr("printer.fault", state=self.words()))

    def words(self) -> str:
        """The printers that need a hand, each with its state in words; "" when all print."""
        tr = self._texts.tr
        many = len(self.states) > 1
        return ", ".join(
            f"{name}: {tr(STATE_KEYS[state])}" if many else tr(STATE_KEYS[state])
            for name, state in self.states.items()
            if state in STATE_KEYS
        )

    def show(self) -> None:
        """The status bar's printer text in the current language (again on a new one)."""
        self._shell.status_printer = self.words()
