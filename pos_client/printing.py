"""Receipts and member cards on paper: printer-neutral print jobs and the service that
prints them off the UI thread.

A job is a tuple of small blocks (text lines, a QR code, a barcode); a printer driver
(`drivers.escpos_printer`, picked from config by kind) turns them into its bytes. The
service never holds a sale back: `submit` queues the job and returns at once, a worker
thread prints it and asks the printer how it is doing, and a change of state (paper out,
cover open, offline) is published as a `PrinterStatus` event for the status bar.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from pos_client.domain import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextLine:
    text: str
    align: str = "left"  # left | center | right
    bold: bool = False
    big: bool = False  # double width and height


@dataclass(frozen=True)
class QrCode:
    data: str


@dataclass(frozen=True)
class Barcode:
    data: str  # the digits, check digit included
    kind: str = "EAN13"


Block = TextLine | QrCode | Barcode


@dataclass(frozen=True)
class PrintJob:
    kind: str  # "receipt" or "card"
    key: str  # the sale's key (a receipt) or the member number (a card): for logs, masked
    blocks: tuple[Block, ...]

    def text(self) -> str:
        """The job's text lines, one per line (tests, the headless terminal's output)."""
        return "\n".join(block.text for block in self.blocks if isinstance(block, TextLine))


class PrinterState(Enum):
    READY = "ready"
    PAPER_LOW = "paper_low"  # prints; the roll is near its end
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"  # answers, but says it cannot print (another fault, or busy)
    UNREACHABLE = "unreachable"  # no answer at all: unplugged, off, wrong address
    UNKNOWN = "unknown"  # prints, but cannot be asked (a device file, a one-way link)

    @property
    def prints(self) -> bool:
        return self in (PrinterState.READY, PrinterState.PAPER_LOW, PrinterState.UNKNOWN)


class PrinterFault(RuntimeError):
    """A job could not be printed; `state` says why, as far as the printer told."""

    def __init__(self, state: PrinterState, detail: str) -> None:
        super().__init__(detail)
        self.state = state


class Printer(Protocol):
    """A driver: one printer from config. Methods are called on the service's thread."""

    name: str

    def print_job(self, job: PrintJob) -> PrinterState:
        """Print it whole (and say the printer's state) or raise PrinterFault."""
        ...

    def state(self) -> PrinterState:
        """Ask the printer (real-time status where it answers); never raises."""
        ...

    def describe(self) -> str:
        """One line for `doctor`: what and where it is (no secrets)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PrinterStatus:
    """A printer's state changed; shown on the status bar and by `doctor`."""

    source: str  # the printer's name in config
    state: PrinterState
    detail: str = ""
    at: datetime = field(default_factory=utcnow)


# A job waits in memory, never on disk: a receipt is a copy of what the outbox keeps.
# Past this many waiting (a printer gone for a long queue of sales) the oldest is dropped
# and logged; the last receipt can always be printed again from the staff screen.
MAX_WAITING_JOBS = 20
RECHECK_S = 15.0  # a printer that cannot print is asked again this often, between jobs


class PrintService:
    """Prints jobs on every configured printer on one worker thread."""

    def __init__(
        self,
        printers: Sequence[Printer],
        publish: Callable[[PrinterStatus], None],
        max_waiting: int = MAX_WAITING_JOBS,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.printers = list(printers)
        self.recheck_s = recheck_s
        self._publish = publish
        self._jobs: queue.Queue[PrintJob | None] = queue.Queue(maxsize=max_waiting)
        self._states: dict[str, PrinterState] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_receipt: PrintJob | None = None
        self.printed = 0  # jobs printed whole, on at least one printer
        self.dropped = 0

    def open(self) -> None:
        if self._thread is not None or not self.printers:
            return
        self._thread = threading.Thread(target=self._work, name="printing", daemon=True)
        self._thread.start()
        self.submit_check()

    def close(self, timeout_s: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._put(None)
            thread.join(timeout_s)
        for printer in self.printers:
            try:
                printer.close()
            except Exception as exc:  # closing must not stop the terminal's shutdown
                log.warning("printer %s did not close: %s", printer.name, exc)

    def __enter__(self) -> PrintService:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def submit(self, job: PrintJob) -> None:
        """Queue a job and return at once (never blocks a sale)."""
        if job.kind == "receipt":
            self.last_receipt = job
        if self._thread is not None:
            self._put(job)

    def reprint(self) -> bool:
        """The last receipt again; False when there is none."""
        job = self.last_receipt
        if job is None:
            return False
        self.submit(job)
        return True

    def submit_check(self) -> None:
        """Ask every printer how it is doing (on the worker; the answer comes as events)."""
        if self._thread is not None:
            self._put(PrintJob("check", "", ()))

    def states(self) -> dict[str, PrinterState]:
        with self._lock:
            return dict(self._states)

    def _put(self, job: PrintJob | None) -> None:
        while True:
            try:
                self._jobs.put_nowait(job)
                return
            except queue.Full:
                try:
                    dropped = self._jobs.get_nowait()
                except queue.Empty:
                    continue
                if dropped is not None and dropped.kind != "check":
                    self.dropped += 1
                    log.warning("print queue full: a %s was not printed", dropped.kind)

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.recheck_s)
            except queue.Empty:  # quiet: a printer that could not print is asked again
                if any(not state.prints for state in self.states().values()):
                    self._recheck()
                continue
            if job is None:
                return
            printed = False
            for printer in self.printers:
                printed |= self._run(printer, job)
            if printed and job.kind != "check":
                self.printed += 1

    def _recheck(self) -> None:
        """The printers that could not print, asked again: one back in order says so."""
        faulty = {name for name, state in self.states().items() if not state.prints}
        check = PrintJob("check", "", ())
        for printer in self.printers:
            if printer.name in faulty:
                self._run(printer, check)

    def _run(self, printer: Printer, job: PrintJob) -> bool:
        detail = ""
        try:
            state = printer.state() if job.kind == "check" else printer.print_job(job)
        except PrinterFault as exc:
            state, detail = exc.state, str(exc)
            log.warning("printer %s: %s not printed (%s)", printer.name, job.kind, state.value)
        except Exception as exc:  # a driver's bug must not end the worker
            state, detail = PrinterState.UNREACHABLE, type(exc).__name__
            log.exception("printer %s failed on a %s", printer.name, job.kind)
        self._note(printer.name, state, detail)
        return job.kind != "check" and not detail

    def _note(self, name: str, state: PrinterState, detail: str) -> None:
        with self._lock:
            changed = self._states.get(name) is not state
            self._states[name] = state
        if changed:
            self._publish(PrinterStatus(name, state, detail))


# ------------------------------------------------------------------ documents


@dataclass(frozen=True)
class ReceiptLines:
    """A receipt's words, already in the terminal's language (the UI translates)."""

    store: str
    when: str  # the sale's moment in the store's zone, formatted
    member: str  # the member as staff may see them: masked
    rows: tuple[str, ...]  # earned, spent (reward by name), cash due, balance or pending
    key_label: str  # "Sale" in the terminal's language


def receipt_job(key: str, lines: ReceiptLines) -> PrintJob:
    """A sale's receipt: the store, the time, the member, the points, and the sale's key as
    a QR code (a lookup for staff: which sale this paper is)."""
    blocks: list[Block] = [
        TextLine(lines.store, align="center", bold=True, big=True),
        TextLine(lines.when, align="center"),
        TextLine(lines.member),
        *(TextLine(row) for row in lines.rows),
        TextLine(f"{lines.key_label}: {key[-12:]}", align="center"),
        QrCode(key),
    ]
    return PrintJob("receipt", key, tuple(blocks))


def card_job(store: str, name: str, card_number: str, welcome: str) -> PrintJob:
    """A new member's card: the store, the member's name, the card's barcode and number."""
    blocks: tuple[Block, ...] = (
        TextLine(store, align="center", bold=True, big=True),
        TextLine(welcome, align="center"),
        TextLine(name, align="center", bold=True),
        Barcode(card_number),
        TextLine(card_number, align="center"),
    )
    return PrintJob("card", card_number, blocks)
