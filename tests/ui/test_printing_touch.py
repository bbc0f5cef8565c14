"""Receipts on a real network printer (a loopback ESC/POS printer) from sales made by touch:
the receipt prints with the member and the sale's key as a QR code that reads back; a
printer out of paper holds no sale back, stands out on the status bar, and the staff
screen prints the last receipt again once paper is in; a new member's card prints."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import zxingcpp

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import PrinterSettings
from tests.escpos_test_printer import LoopbackPrinter, read_escpos
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_enroll_kiosk import to_enroll
from tests.ui.test_flows import recorded, to_member
from tests.ui.test_staff_screen import OWN_PIN, unlock
from ui.demo import on
from ui.touch import find_widget, hidden_because, tap, tap_keys

ANNA = DEMO_MEMBERS[0]


def with_printer(tmp_path: Path, printer: LoopbackPrinter) -> Any:
    settings = ui_settings(tmp_path)
    table = PrinterSettings("network", "front", {"host": "127.0.0.1", "port": printer.port})
    return replace(settings, printers=(table,), admin=replace(settings.admin, pin=OWN_PIN))


def sell(app: Any, amount: str) -> Generator[Any, None, None]:
    yield from to_member(app, ANNA)
    yield from tap(text=app.tr("member.earn"))
    yield on(app, "earn")
    yield from tap_keys(amount)
    yield from tap(text=app.tr("earn.confirm"))
    yield on(app, "receipt")


def shown(text: str) -> bool:
    try:
        return hidden_because(find_widget(text=text)) is None
    except Exception:
        return False


def test_a_sale_prints_its_receipt_and_a_printer_out_of_paper_holds_nothing_back(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}
    with LoopbackPrinter() as printer:

        def script(app: Any) -> Generator[Any, None, None]:
            tr = app.tr
            yield from sell(app, "20")
            seen["key"] = app.customer.last_receipt.key
            seen["summary"] = app.sm.get_screen("receipt").summary_text.splitlines()
            yield lambda: len(printer.printed()) == 1
            yield from tap(text=tr("common.done"))
            yield on(app, "idle")
            printer.paper_out()
            before = recorded(app)
            yield from sell(app, "15")
            seen["recorded"] = recorded(app) - before
            seen["second_key"] = app.customer.last_receipt.key
            yield lambda: shown("Printer: out of paper")
            seen["toast"] = app.message
            yield from tap(text=tr("common.done"))
            yield on(app, "idle")
            printer.ready()
            yield from unlock(app)
            yield from tap(text=tr("admin.reprint"))
            yield lambda: len(printer.printed()) == 2
            yield lambda: app.status_printer == ""

        run_ui(with_printer(tmp_path, printer), script)
        first, again = (read_escpos(job) for job in printer.printed())
    assert first.queries == [1, 2, 4] and first.cuts == 1
    assert "Member: Anna K." in first.lines
    assert all(row in first.lines for row in seen["summary"])
    assert [code.text for code in zxingcpp.read_barcodes(first.rasters[-1].image())] == [
        seen["key"]
    ]
    assert seen["recorded"] == 1  # the sale was recorded all the same
    assert seen["toast"].startswith("Printer: out of paper. The sale is recorded")
    # The reprint is the second sale's receipt, printed once paper was back.
    codes = zxingcpp.read_barcodes(again.rasters[-1].image())
    assert [code.text for code in codes] == [seen["second_key"]]


def test_a_new_members_card_prints_with_its_barcode(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    with LoopbackPrinter() as printer:

        def script(app: Any) -> Generator[Any, None, None]:
            tr = app.tr
            yield from to_enroll(app)
            enroll = app.sm.get_screen("enroll")
            yield from tap_keys("Dana")
            yield from tap(text=tr("enroll.next"))
            yield from tap(text=tr("enroll.consent"))
            yield from tap(text=tr("enroll.join"))
            yield lambda: bool(enroll.card_number)
            seen["number"] = enroll.card_number
            yield lambda: len(printer.printed()) == 1

        run_ui(with_printer(tmp_path, printer), script)
        card = read_escpos(printer.printed()[0])
    assert card.barcodes == [(67, seen["number"].encode())]  # EAN-13, by the printer
    assert seen["number"] in card.lines
    assert "Welcome to our loyalty programme" in card.lines
