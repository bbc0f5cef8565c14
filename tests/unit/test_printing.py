"""The print service: a job is queued and the caller goes on (a sale is never held back by a
printer); a printer's state changes are published once each; a fault or a driver's bug
never ends the worker; the last receipt can be printed again."""

from __future__ import annotations

import threading
import time

from pos_client.printing import (
    Barcode,
    PrinterFault,
    PrinterState,
    PrinterStatus,
    PrintJob,
    PrintService,
    QrCode,
    ReceiptLines,
    TextLine,
    card_job,
    receipt_job,
)
from tests.escpos_test_printer import wait_for

KEY = "0193c5a2-7f00-7abc-8def-0123456789ab"
LINES = ReceiptLines(
    "Corner Shop", "26 Nov 2026 21:30", "Member: Anna K.", ("Earned: +12",), "Sale"
)


class FakePrinter:
    def __init__(self, name: str = "front") -> None:
        self.name = name
        self.jobs: list[PrintJob] = []
        self.state_now = PrinterState.READY
        self.gate = threading.Event()
        self.gate.set()
        self.fail_with: Exception | None = None

    def print_job(self, job: PrintJob) -> PrinterState:
        self.gate.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        if not self.state_now.prints:
            raise PrinterFault(self.state_now, "says so")
        self.jobs.append(job)
        return self.state_now

    def state(self) -> PrinterState:
        return self.state_now

    def describe(self) -> str:
        return f"fake {self.name}"

    def close(self) -> None:
        pass


def test_a_receipt_carries_the_store_the_member_the_rows_and_the_key_as_a_qr_code() -> None:
    job = receipt_job(KEY, LINES)
    assert job.kind == "receipt" and job.key == KEY
    assert job.text().splitlines() == [
        "Corner Shop",
        "26 Nov 2026 21:30",
        "Member: Anna K.",
        "Earned: +12",
        "Sale: 0123456789ab",
    ]
    assert QrCode(KEY) in job.blocks


def test_a_card_carries_the_members_barcode_and_number() -> None:
    job = card_job("Corner Shop", "Anna K.", "2800000000011", "Welcome")
    assert Barcode("2800000000011") in job.blocks
    assert TextLine("2800000000011", align="center") in job.blocks


def test_submit_returns_at_once_while_the_printer_is_busy() -> None:
    printer = FakePrinter()
    printer.gate.clear()  # the printer takes its time
    with PrintService([printer], lambda _status: None) as service:
        started = time.monotonic()
        for _ in range(5):
            service.submit(receipt_job(KEY, LINES))
        assert time.monotonic() - started < 0.1
        printer.gate.set()
        assert wait_for(lambda: len(printer.jobs) == 5)
        assert service.printed == 5


def test_each_state_change_is_published_once_and_a_fault_leaves_the_job_unprinted() -> None:
    printer = FakePrinter()
    seen: list[PrinterStatus] = []
    with PrintService([printer], seen.append) as service:
        assert wait_for(lambda: [s.state for s in seen] == [PrinterState.READY])
        printer.state_now = PrinterState.PAPER_OUT
        service.submit(receipt_job(KEY, LINES))
        service.submit(receipt_job(KEY, LINES))
        assert wait_for(lambda: len(seen) == 2)
        time.sleep(0.1)
        assert [s.state for s in seen] == [PrinterState.READY, PrinterState.PAPER_OUT]
        assert printer.jobs == [] and service.printed == 0
        printer.state_now = PrinterState.READY
        assert service.reprint()
        assert wait_for(lambda: len(printer.jobs) == 1)
        assert printer.jobs[0].key == KEY
        assert wait_for(lambda: seen[-1].state is PrinterState.READY)
        assert service.states() == {"front": PrinterState.READY}


def test_a_drivers_bug_is_reported_unreachable_and_the_worker_goes_on() -> None:
    printer = FakePrinter()
    seen: list[PrinterStatus] = []
    with PrintService([printer], seen.append) as service:
        printer.fail_with = ZeroDivisionError("a bug")
        service.submit(receipt_job(KEY, LINES))
        assert wait_for(lambda: seen and seen[-1].state is PrinterState.UNREACHABLE)
        printer.fail_with = None
        service.submit(card_job("Shop", "Anna K.", "2800000000011", "Welcome"))
        assert wait_for(lambda: len(printer.jobs) == 1)
        assert printer.jobs[0].kind == "card"


def test_a_full_queue_drops_the_oldest_job_and_counts_it() -> None:
    printer = FakePrinter()
    printer.gate.clear()
    with PrintService([printer], lambda _status: None, max_waiting=3) as service:
        keys = [f"{KEY[:-2]}{index:02d}" for index in range(8)]
        for key in keys:
            service.submit(receipt_job(key, LINES))
        printer.gate.set()
        assert wait_for(lambda: service.printed + service.dropped >= 7)
        printed = [job.key for job in printer.jobs]
        assert service.dropped >= 4
        assert printed[-1] == keys[-1]  # the newest is never the one dropped
        assert service.last_receipt is not None and service.last_receipt.key == keys[-1]


def test_no_receipt_yet_means_nothing_to_reprint() -> None:
    with PrintService([FakePrinter()], lambda _status: None) as service:
        assert not service.reprint()


def test_a_printer_back_in_order_is_seen_without_a_new_job() -> None:
    printer = FakePrinter()
    seen: list[PrinterStatus] = []
    with PrintService([printer], seen.append, recheck_s=0.05) as service:
        printer.state_now = PrinterState.COVER_OPEN
        service.submit(receipt_job(KEY, LINES))
        assert wait_for(lambda: seen and seen[-1].state is PrinterState.COVER_OPEN)
        printer.state_now = PrinterState.READY  # the cover shut: nobody prints anything
        assert wait_for(lambda: seen[-1].state is PrinterState.READY)
        assert printer.jobs == []
