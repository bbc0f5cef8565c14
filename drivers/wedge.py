"""USB keyboard-wedge scanners: telling a scanner's keystrokes from a person's.

A wedge scanner types a whole code in a burst — 4 or more characters with gaps of a few
milliseconds — and ends it with Enter or Tab. People do not sustain gaps under ~50 ms. The
classifier watches keystrokes with their times and returns either a scan or the text a
person typed (which the UI passes on to whatever has focus).

The UI feeds it from the Kivy window's key events (never from a TextInput, which drops
fast scanner characters). On Linux, EvdevWedgeReader can instead grab the scanner by USB
vendor/product id so its keys never reach any widget.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.base import DriverUnavailable, Sink, require_module
from pos_client.configfile import Section
from pos_client.events import ReaderStatus, ScanEvent

log = logging.getLogger(__name__)

TERMINATORS = ("\r", "\n", "\t")


@dataclass(frozen=True)
class KeyStroke:
    char: str  # one character; "\r" for Enter, "\t" for Tab
    at: float  # seconds, monotonic


@dataclass(frozen=True)
class Scanned:
    text: str
    duration_s: float


@dataclass(frozen=True)
class Typed:
    text: str  # keystrokes of a person, to hand on to the focused field


@dataclass(frozen=True)
class WedgeThresholds:
    min_length: int = 4
    max_gap_s: float = 0.05  # the largest gap inside a scanner burst
    max_length: int = 128


@dataclass
class WedgeClassifier:
    thresholds: WedgeThresholds = field(default_factory=WedgeThresholds)
    _chars: list[str] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)

    def feed(self, stroke: KeyStroke) -> list[Scanned | Typed]:
        """One keystroke in; zero or more results out, in order."""
        out: list[Scanned | Typed] = []
        if self._times and stroke.at - self._times[-1] > self.thresholds.max_gap_s:
            # A slow gap: what came before cannot be one scanner burst with this key.
            out.extend(self._flush_as_typed())
        if stroke.char in TERMINATORS:
            if self._is_scan(stroke.at):
                text = "".join(self._chars)
                out.append(Scanned(text, stroke.at - self._times[0]))
                self._chars, self._times = [], []
            else:
                out.extend(self._flush_as_typed())
                out.append(Typed(stroke.char))
            return out
        self._chars.append(stroke.char)
        self._times.append(stroke.at)
        if len(self._chars) > self.thresholds.max_length:
            out.extend(self._flush_as_typed())
        return out

    def flush(self, now: float) -> list[Scanned | Typed]:
        """Called on a timer: a burst with no terminator after a long gap was typed."""
        if self._times and now - self._times[-1] > self.thresholds.max_gap_s:
            return self._flush_as_typed()
        return []

    def _is_scan(self, end: float) -> bool:
        if len(self._chars) < self.thresholds.min_length:
            return False
        times = [*self._times, end]
        return all(b - a <= self.thresholds.max_gap_s for a, b in itertools.pairwise(times))

    def _flush_as_typed(self) -> list[Scanned | Typed]:
        if not self._chars:
            return []
        text = "".join(self._chars)
        self._chars, self._times = [], []
        return [Typed(text)]


def thresholds_from(options: Mapping[str, Any], source: str) -> WedgeThresholds:
    section = Section(options, source, "wedge.")
    return WedgeThresholds(
        min_length=section.integer("min_length", 4, minimum=2),
        max_gap_s=float(section.decimal("max_gap_ms", 50)) / 1000,
        max_length=section.integer("max_length", 128, minimum=4),
    )


# ------------------------------------------------------------------ evdev (Linux only)

# evdev key names -> (plain, shifted) characters for what scanners type.
KEYMAP: dict[str, tuple[str, str]] = {
    **{f"KEY_{d}": (d, ")!@#$%^&*("[int(d)]) for d in "0123456789"},
    **{f"KEY_{c}": (c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    "KEY_MINUS": ("-", "_"),
    "KEY_EQUAL": ("=", "+"),
    "KEY_DOT": (".", ">"),
    "KEY_SLASH": ("/", "?"),
    "KEY_SPACE": (" ", " "),
    "KEY_RIGHTBRACE": ("]", "}"),
    "KEY_LEFTBRACE": ("[", "{"),
    "KEY_SEMICOLON": (";", ":"),
    "KEY_ENTER": ("\r", "\r"),
    "KEY_KPENTER": ("\r", "\r"),
    "KEY_TAB": ("\t", "\t"),
}
SHIFT_KEYS = {"KEY_LEFTSHIFT", "KEY_RIGHTSHIFT"}
KEY_DOWN, KEY_UP = 1, 0


class KeyDecoder:
    """evdev key events (name, value) -> characters, tracking shift."""

    def __init__(self) -> None:
        self.shift = False

    def feed(self, key_name: str, value: int) -> str | None:
        if key_name in SHIFT_KEYS:
            self.shift = value != KEY_UP
            return None
        if value != KEY_DOWN:
            return None
        pair = KEYMAP.get(key_name)
        if pair is None:
            return None
        return pair[1] if self.shift else pair[0]


class EvdevWedgeReader:
    """Grabs the scanner's input device (by USB vendor/product id) so only we see its keys."""

    kind = "wedge-evdev"

    def __init__(self, name: str, options: Mapping[str, Any], sink: Sink) -> None:
        section = Section(options, f"reader {name}", f"readers.{name}.")
        self.name = name
        self.sink = sink
        self.vendor_id = int(section.text("vendor_id"), 16)
        self.product_id = int(section.text("product_id"), 16)
        self.thresholds = thresholds_from(options, f"reader {name}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.device: Any = None

    def open(self) -> None:
        evdev = require_module("evdev", "pip install evdev (Linux only)")
        for path in evdev.list_devices():
            device = evdev.InputDevice(path)
            if (device.info.vendor, device.info.product) == (self.vendor_id, self.product_id):
                self.device = device
                break
        if self.device is None:
            raise DriverUnavailable(
                f"no input device {self.vendor_id:04x}:{self.product_id:04x}"
                " (is the scanner plugged in, and may this user read /dev/input?)"
            )
        self.device.grab()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(evdev,), daemon=True)
        self._thread.start()
        self.sink(ReaderStatus(f"wedge:{self.name}", "connected", self.device.name))

    def _run(self, evdev: Any) -> None:
        decoder = KeyDecoder()
        # Everything from a grabbed scanner is a scan; Enter/Tab still frame the codes.
        thresholds = WedgeThresholds(self.thresholds.min_length, 1.0, self.thresholds.max_length)
        classifier = WedgeClassifier(thresholds)
        try:
            for event in self.device.read_loop():
                if self._stop.is_set():
                    return
                if event.type != evdev.ecodes.EV_KEY:
                    continue
                name = evdev.ecodes.KEY.get(event.code)
                if isinstance(name, list):
                    name = name[0]
                char = decoder.feed(str(name), event.value)
                if char is None:
                    continue
                for result in classifier.feed(KeyStroke(char, time.monotonic())):
                    if isinstance(result, Scanned):
                        self.sink(ScanEvent(f"wedge:{self.name}", "barcode", result.text))
        except OSError as exc:
            self.sink(ReaderStatus(f"wedge:{self.name}", "disconnected", str(exc)))

    def close(self) -> None:
        self._stop.set()
        if self.device is not None:
            try:
                self.device.ungrab()
                self.device.close()
            except OSError:
                pass
            self.device = None

    def problem(self) -> str | None:
        return None if self.device is not None else "scanner device not grabbed"

    def describe(self) -> str:
        state = "grabbed" if self.device is not None else "not open"
        return f"wedge-evdev {self.name} {self.vendor_id:04x}:{self.product_id:04x}: {state}"
