"""ESC/POS printing through the driver to a network printer on loopback (a TCP server that
keeps the bytes and answers real-time status like an Epson printer): the text in the right
code page, or drawn where the printer lacks the script; the sale's key as a QR code that
decodes back; the card's barcode; cuts; faults read from the printer's status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp

from drivers.base import DriverUnavailable, build_printer
from drivers.escpos_printer import parse_status
from pos_client.demo import _ean
from pos_client.printing import (
    PrinterFault,
    PrinterState,
    PrintJob,
    ReceiptLines,
    card_job,
    receipt_job,
)
from tests.escpos_test_printer import LoopbackPrinter, Printed, read_escpos, wait_for

KEY = "0193c5a2-7f00-7abc-8def-0123456789ab"
CARD = _ean("280000000123")


@pytest.fixture
def loopback() -> Iterator[LoopbackPrinter]:
    with LoopbackPrinter() as printer:
        yield printer


def network(printer: LoopbackPrinter, **options: Any) -> Any:
    return build_printer(
        "network", "front", {"host": "127.0.0.1", "port": printer.port, "timeout_s": 1, **options}
    )


def printed_job(loopback: LoopbackPrinter, driver: Any, job: PrintJob) -> Printed:
    before = len(loopback.jobs)
    driver.print_job(job)
    assert wait_for(lambda: len(loopback.jobs) > before)
    return read_escpos(loopback.jobs[-1])


def decoded(printed: Printed) -> list[str]:
    return [
        code.text for raster in printed.rasters for code in zxingcpp.read_barcodes(raster.image())
    ]


def test_a_receipt_prints_its_lines_cuts_and_its_qr_code_reads_back_as_the_sale_key(
    loopback: LoopbackPrinter,
) -> None:
    lines = ReceiptLines(
        "Corner Shop",
        "26 Nov 2026, 21:30",
        "Member: Anna K.",
        ("Earned: +12 points", "Spent: 500 points on Coffee", "Balance: 1,240 points"),
        "Sale",
    )
    printed = printed_job(loopback, network(loopback), receipt_job(KEY, lines))
    assert printed.queries == [1, 2, 4]  # asked before the job was sent
    assert printed.inits == 1 and printed.cuts == 1
    assert [line for line in printed.lines if line] == [
        "Corner Shop",
        "26 Nov 2026, 21:30",
        "Member: Anna K.",
        "Earned: +12 points",
        "Spent: 500 points on Coffee",
        "Balance: 1,240 points",
        "Sale: 0123456789ab",
    ]
    assert decoded(printed) == [KEY]
    assert printed.unknown == []


def test_cyrillic_prints_in_the_printers_code_pages(loopback: LoopbackPrinter) -> None:
    lines = ReceiptLines(
        "Магазин",
        "26 ноября 2026 г., 21:30",
        "Участник: Ірина К.",
        ("Нараховано: +12 балів, ґ",),
        "Продаж",
    )
    printed = printed_job(loopback, network(loopback), receipt_job(KEY, lines))
    assert "Участник: Ірина К." in printed.lines
    assert "Нараховано: +12 балів, ґ" in printed.lines
    assert "Магазин" in printed.lines
    assert set(printed.code_pages) >= {17}  # CP866 (and another for Ukrainian letters)
    assert printed.rasters and len(printed.rasters) == 1  # only the QR code is drawn


def test_a_script_the_printer_lacks_is_drawn_as_an_image_never_question_marks(
    loopback: LoopbackPrinter,
) -> None:
    lines = ReceiptLines("Κατάστημα", "26 Νοε 2026", "Μέλος: Άννα Κ.", ("Πόντοι: +12",), "Πώληση")
    driver = network(loopback, profile="simple")  # code page 437 only
    printed = printed_job(loopback, driver, receipt_job(KEY, lines))
    assert not any("?" in line or "Κ" in line for line in printed.lines)
    assert len(printed.rasters) == 6  # five lines drawn, and the QR code
    assert set(printed.code_pages) <= {0}  # CP437, for the ASCII line
    assert KEY in decoded(printed)


def test_a_new_members_card_prints_its_barcode(loopback: LoopbackPrinter) -> None:
    job = card_job("Corner Shop", "Anna K.", CARD, "Welcome")
    printed = printed_job(loopback, network(loopback), job)
    assert printed.barcodes == [(67, CARD.encode())]  # GS k, EAN-13 by the printer itself
    assert CARD in printed.lines
    drawn = printed_job(loopback, network(loopback, profile="simple"), job)
    assert decoded(drawn) == [CARD]  # a printer without barcodes gets it drawn


@pytest.mark.parametrize(
    ("fault", "state"),
    [("paper_out", PrinterState.PAPER_OUT), ("cover_open", PrinterState.COVER_OPEN)],
)
def test_a_printer_that_cannot_print_gets_no_job_and_says_why(
    loopback: LoopbackPrinter, fault: str, state: PrinterState
) -> None:
    getattr(loopback, fault)()
    driver = network(loopback)
    with pytest.raises(PrinterFault) as raised:
        driver.print_job(receipt_job(KEY, ReceiptLines("S", "t", "m", (), "Sale")))
    assert raised.value.state is state
    assert driver.state() is state
    assert wait_for(lambda: len(loopback.jobs) == 2)
    assert loopback.printed() == []  # status queries only
    loopback.ready()
    assert driver.state() is PrinterState.READY


def test_paper_low_still_prints_and_says_so(loopback: LoopbackPrinter) -> None:
    loopback.paper_low()
    driver = network(loopback)
    assert driver.print_job(card_job("S", "A", CARD, "W")) is PrinterState.PAPER_LOW
    assert wait_for(lambda: len(loopback.printed()) == 1)


def test_a_printer_that_never_answers_status_still_prints(loopback: LoopbackPrinter) -> None:
    loopback.silent = True
    driver = network(loopback)
    assert driver.print_job(card_job("S", "A", CARD, "W")) is PrinterState.UNKNOWN
    assert wait_for(lambda: len(loopback.printed()) == 1)


def test_nobody_listening_is_unreachable_at_once() -> None:
    with LoopbackPrinter() as gone:
        port = gone.port
    driver = build_printer("network", "front", {"host": "127.0.0.1", "port": port})
    started = time.monotonic()
    assert driver.state() is PrinterState.UNREACHABLE
    with pytest.raises(PrinterFault) as raised:
        driver.print_job(card_job("S", "A", CARD, "W"))
    assert raised.value.state is PrinterState.UNREACHABLE
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("kind", "options", "said"),
    [
        ("laser", {}, "unknown printer kind 'laser'"),
        ("network", {}, "printer option 'host': expected text"),
        ("network", {"host": "127.0.0.1", "port": 70000}, "'port': expected 1..65535"),
        ("network", {"host": "h", "profile": "TM-X"}, "unknown printer profile 'TM-X'"),
        ("network", {"host": "h", "text_as_image": "yes"}, "expected true or false"),
        ("usb", {"vendor_id": "0x04b8", "product_id": "pid"}, "'product_id': not a number"),
        ("network", {"host": "h", "width_px": 10**6}, "'width_px': expected 128..2048"),
        ("network", {"host": "h", "prot": 9100}, "'prot': not one a network printer has"),
        ("network", {"host": "a\x00b"}, "'host': expected a host name"),
        ("network", {"host": "h" * 300}, "'host': expected a host name"),
        ("network", {"host": "192.168.1.40:9100"}, "the port goes in 'port'"),
        ("network", {"host": "http://printer/"}, "'host': expected a host name"),
        ("network", {"host": "h", "font": "/dev/zero"}, "'font': expected a font file"),
        ("usb", {"vendor_id": 1, "product_id": 2, "host": "h"}, "'host': not one a usb"),
    ],
)
def test_a_bad_printer_table_is_refused_with_what_is_wrong(
    kind: str, options: dict[str, Any], said: str
) -> None:
    with pytest.raises(DriverUnavailable, match=said.replace("(", r"\(").replace(".", r"\.")):
        build_printer(kind, "front", options)


def test_status_bytes_read_as_epson_documents_them() -> None:
    assert parse_status(0x12, 0x12, 0x12) is PrinterState.READY
    assert parse_status(0x1A, 0x32, 0x72) is PrinterState.PAPER_OUT
    assert parse_status(0x1A, 0x16, 0x12) is PrinterState.COVER_OPEN
    assert parse_status(0x12, 0x12, 0x1E) is PrinterState.PAPER_LOW
    assert parse_status(0x1A, 0x12, 0x12) is PrinterState.OFFLINE
    # Bytes that are no status answer (the fixed bits wrong) are not read as faults.
    assert parse_status(0xFF, 0xFF, 0xFF) is PrinterState.UNKNOWN
    assert parse_status(0x00, 0x04, 0x60) is PrinterState.UNKNOWN


def test_a_font_that_is_a_fifo_is_refused_before_anything_opens_it(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "font.ttf"
    os.mkfifo(fifo)
    with pytest.raises(DriverUnavailable, match="'font': expected a font file"):
        build_printer("network", "front", {"host": "h", "font": str(fifo)})


def test_the_headless_terminal_says_how_its_printer_and_readers_are(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    with LoopbackPrinter() as gone:
        port = gone.port  # nobody listens there once it stopped
    config = tmp_path / "till.toml"
    config.write_text(
        f'[[printers]]\nkind = "network"\nname = "front"\nhost = "127.0.0.1"\nport = {port}\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--config", str(config), "--data-dir",
         str(tmp_path / "data"), "run", "--headless", "--duration", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "POS_CLIENT__ADMIN__PIN": "97531"},
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert "printer front unreachable" in lines, result.stdout
    assert any(line.startswith("reader sim:sim connected") for line in lines), result.stdout


def test_a_device_file_that_is_no_printer_is_never_written_nor_blocks(tmp_path: Path) -> None:
    import os

    victim = tmp_path / "receipts.txt"
    victim.write_text("keep me")
    fifo = tmp_path / "lp-fifo"
    os.mkfifo(fifo)
    for device in (victim, fifo, tmp_path / "missing", tmp_path):
        driver = build_printer("file", "lp", {"device": str(device)})
        assert driver.state() is PrinterState.UNREACHABLE, device
        with pytest.raises(PrinterFault):
            driver.print_job(card_job("S", "A", CARD, "W"))
    assert victim.read_text() == "keep me" and not (tmp_path / "missing").exists()
    null = build_printer("file", "lp", {"device": "/dev/null"})  # a character device
    assert null.state() is PrinterState.UNKNOWN
    assert null.print_job(card_job("S", "A", CARD, "W")) is PrinterState.UNKNOWN
