"""ESC/POS receipt printers through python-escpos: network (host:9100), USB (vendor and
product id), serial, or a device file (/dev/usb/lp0), picked by `kind` from `CONNECTIONS`.

A job is rendered first into python-escpos's `Dummy` with the printer's profile (paper,
code pages), then sent in one write: a printer never receives half a receipt because
rendering failed. Text goes in the profile's code pages (python-escpos switches them per
character: CP866/CP1125 for Cyrillic, CP737/ISO-8859-7 for Greek); a line the profile
cannot encode is drawn and sent as a raster image. Before each job the printer is asked
its real-time status (DLE EOT 1, 2, 4) where the link answers; a printer out of paper or
with its cover open gets no job (PrinterFault), so the receipt waits for a reprint.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivers.base import DriverUnavailable, require_module
from pos_client.printing import (
    Barcode,
    PrinterFault,
    PrinterState,
    PrintJob,
    QrCode,
    TextLine,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "install python-escpos (pip install python-escpos) or `make demo` sets it up"
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEFAULT_WIDTH_PX = 512  # 80 mm paper at 203 dpi prints 512-576 dots; 58 mm: 384
MAX_WIDTH_PX = 2048
DLE_EOT = b"\x10\x04"


def _integer(options: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = options.get(key, default)
    if isinstance(value, str):  # USB ids are written in hex: "0x04b8"
        try:
            value = int(value, 0)
        except ValueError:
            raise DriverUnavailable(f"printer option {key!r}: not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DriverUnavailable(f"printer option {key!r}: expected {low}..{high}, got {value!r}")
    return value


def _flag(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise DriverUnavailable(f"printer option {key!r}: expected true or false, got {value!r}")
    return value


def _text(options: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise DriverUnavailable(f"printer option {key!r}: expected text, got {value!r}")
    return value.strip()


def _host(options: Mapping[str, Any]) -> str:
    host = _text(options, "host")
    plain = all(ch.isprintable() and not ch.isspace() and ch not in "/@?#[]" for ch in host)
    # python-escpos's network printer speaks IPv4 only; "host:port" has the port in 'port'.
    if len(host) > 253 or not plain or ":" in host:
        raise DriverUnavailable(
            "printer option 'host': expected a host name or an IPv4 address"
            " (the port goes in 'port')"
        )
    return host


def _network(options: Mapping[str, Any], profile: str) -> Any:
    from escpos.printer import Network

    host = _host(options)
    port = _integer(options, "port", 9100, 1, 65535)
    timeout = _integer(options, "timeout_s", 3, 1, 60)
    return Network(host, port, timeout=timeout, profile=profile)


def _usb(options: Mapping[str, Any], profile: str) -> Any:
    require_module("usb", "USB printers need pyusb and libusb-1.0 (`make` installs both)")
    from escpos.printer import Usb

    vendor = _integer(options, "vendor_id", -1, 0, 0xFFFF)
    product = _integer(options, "product_id", -1, 0, 0xFFFF)
    in_ep = _integer(options, "in_ep", 0x82, 0x81, 0x8F)
    out_ep = _integer(options, "out_ep", 0x01, 0x01, 0x0F)
    timeout_ms = _integer(options, "timeout_s", 3, 1, 60) * 1000  # 0 would wait forever
    return Usb(vendor, product, timeout=timeout_ms, in_ep=in_ep, out_ep=out_ep, profile=profile)


def _serial(options: Mapping[str, Any], profile: str) -> Any:
    from escpos.printer import Serial

    device = _text(options, "device")
    baudrate = _integer(options, "baudrate", 9600, 1200, 921600)
    return Serial(device, baudrate=baudrate, timeout=1, profile=profile)


def _file(options: Mapping[str, Any], profile: str) -> Any:
    from escpos.printer import File

    return File(_text(options, "device"), profile=profile)


def is_character_device(path: str) -> bool:
    """A printer's device file (/dev/usb/lp0) is a character device: a regular file would
    be overwritten, a missing one created, a FIFO would block."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


# kind -> how to build python-escpos's connection from the printer's options.
CONNECTIONS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "network": _network,
    "usb": _usb,
    "serial": _serial,
    "file": _file,
}
# Every option a printer table may hold (a typo is refused, not silently ignored).
OPTIONS = {
    "network": {"host", "port", "timeout_s"},
    "usb": {"vendor_id", "product_id", "in_ep", "out_ep", "timeout_s"},
    "serial": {"device", "baudrate"},
    "file": {"device"},
}
COMMON_OPTIONS = {"profile", "width_px", "dpi", "font", "text_as_image", "status"}
# Links a printer answers real-time status on (a device file is one way).
ANSWERS_STATUS = {"network", "usb", "serial"}


def parse_status(printer: int, offline_cause: int, paper: int) -> PrinterState:
    """The state from the three DLE EOT answers (Epson's ESC/POS reference: n=1 printer,
    n=2 offline cause, n=4 roll paper sensor)."""
    if any(byte & 0x93 != 0x12 for byte in (printer, offline_cause, paper)):
        return PrinterState.UNKNOWN  # not a status answer (bits 1 and 4 set, 0 and 7 clear)
    if offline_cause & 0x04:
        return PrinterState.COVER_OPEN
    if paper & 0x60 or offline_cause & 0x20:
        return PrinterState.PAPER_OUT
    if printer & 0x08:
        return PrinterState.OFFLINE
    if paper & 0x0C:
        return PrinterState.PAPER_LOW
    return PrinterState.READY


class EscposPrinter:
    """One ESC/POS printer from config (a `[[printers]]` table)."""

    def __init__(self, name: str, kind: str, options: Mapping[str, Any]) -> None:
        require_module("escpos", INSTALL_HINT)
        if kind not in CONNECTIONS:
            known = ", ".join(sorted(CONNECTIONS))
            raise DriverUnavailable(f"unknown printer kind {kind!r} (known: {known})")
        unknown = sorted(set(options) - OPTIONS[kind] - COMMON_OPTIONS)
        if unknown:
            known = ", ".join(sorted(OPTIONS[kind] | COMMON_OPTIONS))
            raise DriverUnavailable(
                f"printer option {unknown[0]!r}: not one a {kind} printer has (known: {known})"
            )
        self.name = name
        self.kind = kind
        self.options = dict(options)
        self.profile = self._profile(options.get("profile", "default"))
        self.width_px = _integer(options, "width_px", DEFAULT_WIDTH_PX, 128, MAX_WIDTH_PX)
        self.dpi = _integer(options, "dpi", 203, 100, 600)
        self.font = self._font(options.get("font"))
        self.text_as_image = _flag(options, "text_as_image", False)
        self.asks_status = kind in ANSWERS_STATUS and _flag(options, "status", True)
        self._connect = CONNECTIONS[kind]
        self._connect(self.options, self.profile)  # options checked now: bad config says so

    @staticmethod
    def _font(value: Any) -> Path | None:
        """A TrueType file for lines drawn as images; None: the bundled default. Only a
        regular file is ever opened (a FIFO or a device would block the font library)."""
        if value is None:
            default = Path(DEFAULT_FONT)
            return default if default.is_file() else None
        if not isinstance(value, str) or not Path(value).is_file():
            raise DriverUnavailable(f"printer option 'font': expected a font file, got {value!r}")
        return Path(value)

    @staticmethod
    def _profile(name: Any) -> str:
        from escpos.capabilities import CAPABILITIES

        profiles = CAPABILITIES["profiles"]
        if not isinstance(name, str) or name not in profiles:
            known = ", ".join(sorted(profiles)[:12])
            raise DriverUnavailable(
                f"printer option 'profile': unknown printer profile {name!r} (some: {known}...)"
            )
        return name

    def describe(self) -> str:
        where = {
            "network": lambda: f"{self.options.get('host')}:{self.options.get('port', 9100)}",
            "usb": lambda: f"{self.options.get('vendor_id')}:{self.options.get('product_id')}",
            "serial": lambda: str(self.options.get("device")),
            "file": lambda: str(self.options.get("device")),
        }[self.kind]()
        return f"ESC/POS printer {self.name} ({self.kind} {where}, profile {self.profile})"

    # ------------------------------------------------------------ rendering

    def render(self, job: PrintJob) -> bytes:
        """The job's bytes for this printer's profile (no device touched)."""
        from escpos.printer import Dummy

        out = Dummy(profile=self.profile)
        # The paper's width in dots, for this rendering only (python-escpos's profiles are
        # shared; an unknown width also makes it print a warning on stdout per image).
        media = copy.deepcopy(out.profile.profile_data)
        media.setdefault("media", {}).setdefault("width", {})["pixels"] = self.width_px
        media["media"]["dpi"] = self.dpi
        out.profile.profile_data = media
        out.hw("INIT")
        for block in job.blocks:
            RENDERERS[type(block)](self, out, block)
        out.set(align="left", bold=False, double_height=False, double_width=False)
        out.cut()
        return bytes(out.output)

    def _line(self, out: Any, line: TextLine) -> None:
        out.set(
            align=line.align,
            bold=line.bold,
            double_height=line.big,
            double_width=line.big,
            normal_textsize=not line.big,
        )
        if self.text_as_image or not self._encodable(out, line.text):
            out.image(self._drawn(line), center=False)
            return
        out.textln(line.text)

    @staticmethod
    def _encodable(out: Any, text: str) -> bool:
        encoder = out.magic.encoder
        return all(
            ch.isascii() or encoder.find_suitable_encoding(ch) is not None for ch in set(text)
        )

    def _drawn(self, line: TextLine) -> Any:
        """The line drawn black on white, the paper's width, for a printer that lacks the
        script's code page."""
        from PIL import Image, ImageDraw, ImageFont

        size = 48 if line.big else 26
        try:
            font: Any = ImageFont.truetype(str(self.font), size) if self.font else None
        except OSError:
            font = None
        if font is None:
            font = ImageFont.load_default(size)
        left, top, right, bottom = font.getbbox(line.text or " ")
        height = bottom - min(top, 0) + 6
        image = Image.new("1", (self.width_px, height), 1)
        width = min(right - left, self.width_px)
        x = {"center": (self.width_px - width) // 2, "right": self.width_px - width}.get(
            line.align, 0
        )
        ImageDraw.Draw(image).text((x - left, 3 - min(top, 0)), line.text, font=font, fill=0)
        return image

    @staticmethod
    def _qr(out: Any, block: QrCode) -> None:
        # Drawn (not the printer's own QR command): every ESC/POS printer prints a raster.
        out.set(align="center")
        out.qr(block.data, size=6, native=False, center=False)

    def _barcode(self, out: Any, block: Barcode) -> None:
        from escpos.capabilities import BARCODE_B

        out.set(align="center")
        digits = block.data.isdigit() and len(block.data) == 13
        kind = "EAN13" if digits and block.kind == "EAN13" else "CODE128"
        if out.profile.supports(BARCODE_B):
            # Called past `barcode()`, which prints which renderer it picked on stdout.
            data = block.data if kind == "EAN13" else "{B" + block.data
            out._hw_barcode(data, kind, 80, 3, "OFF", "A", True, "B", False)
            return
        out.image(self._drawn_barcode(kind, block.data), center=False)

    def _drawn_barcode(self, kind: str, data: str) -> Any:
        """The barcode drawn from its modules, two whole dots each (a scaled one would not
        scan), with quiet zones, centred on the paper's width."""
        from barcode import get_barcode_class
        from PIL import Image, ImageDraw

        modules = get_barcode_class(kind.lower())(data).build()[0]  # "1": a dark module
        dots = 2 if (len(modules) + 20) * 2 <= self.width_px else 1
        paper = Image.new("1", (self.width_px, 100), 1)
        left = (self.width_px - len(modules) * dots) // 2
        draw = ImageDraw.Draw(paper)
        for index, module in enumerate(modules):
            if module == "1":
                x = left + index * dots
                draw.rectangle((x, 0, x + dots - 1, 99), fill=0)
        return paper

    # ------------------------------------------------------------ the device

    def print_job(self, job: PrintJob) -> PrinterState:
        data = self.render(job)
        device = self._open()
        try:
            state = self._ask(device)
            if not state.prints:
                raise PrinterFault(state, f"printer says {state.value}")
            device._raw(data)
            return state
        except PrinterFault:
            raise
        except (OSError, ValueError) as exc:
            raise PrinterFault(PrinterState.UNREACHABLE, type(exc).__name__) from None
        finally:
            self._close(device)

    def state(self) -> PrinterState:
        if not self.asks_status:  # a device file answers nothing: nothing is opened to ask
            device = self.options.get("device")
            if self.kind == "file" and not is_character_device(str(device)):
                return PrinterState.UNREACHABLE
            return PrinterState.UNKNOWN
        try:
            device = self._open()
        except PrinterFault as exc:
            return exc.state
        try:
            return self._ask(device)
        finally:
            self._close(device)

    def close(self) -> None:
        """Nothing held between jobs: each job opens the link and closes it."""

    def _open(self) -> Any:
        from escpos.exceptions import DeviceNotFoundError, USBNotFoundError

        if self.kind == "file" and not is_character_device(str(self.options.get("device"))):
            raise PrinterFault(PrinterState.UNREACHABLE, "not a printer device")
        device = self._connect(self.options, self.profile)
        try:
            device.open(raise_not_found=True)
        except (DeviceNotFoundError, USBNotFoundError, OSError, ValueError) as exc:
            # ValueError: pyusb without a libusb backend (NoBackendError), a bad address.
            raise PrinterFault(PrinterState.UNREACHABLE, type(exc).__name__) from None
        return device

    @staticmethod
    def _close(device: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            device.close()

    def _ask(self, device: Any) -> PrinterState:
        if not self.asks_status:
            return PrinterState.UNKNOWN
        answers = []
        for n in (1, 2, 4):
            try:
                device._raw(DLE_EOT + bytes([n]))
                answer = device._read()
            except TimeoutError:
                return PrinterState.UNKNOWN  # a printer that does not answer status
            except (OSError, NotImplementedError) as exc:
                if type(exc).__name__ == "USBTimeoutError":  # pyusb's, an OSError: no answer
                    return PrinterState.UNKNOWN
                return PrinterState.UNREACHABLE
            if not answer:
                return PrinterState.UNKNOWN
            answers.append(answer[-1])
        return parse_status(*answers)


RENDERERS: dict[type, Callable[[EscposPrinter, Any, Any], None]] = {
    TextLine: EscposPrinter._line,
    QrCode: lambda _printer, out, block: EscposPrinter._qr(out, block),
    Barcode: EscposPrinter._barcode,
}
