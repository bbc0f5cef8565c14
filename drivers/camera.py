"""Camera scanning for kiosks with no scanner: OpenCV reads frames (a V4L2 device, or a video
file or URL for field tests) and zxing-cpp decodes them, on the driver's own thread.

CPU is held within a budget: at most `max_fps` frames a second are decoded (the others are
read and dropped), only the central region of interest (`roi`, a share of each side), and
frames wider than `max_width` are scaled down first. A code yields one `ScanEvent` per
presentation: reported when first read (a linear code, which has no error correction, when
read the same on `confirm_frames` decoded frames), then not again until it has been out of
view for `gone_after_s`. Each event carries the code's AIM symbology id, like a scanner
set to send it, so identification treats it as any scan.

Options: source (a device index such as 0, /dev/video0, a file or a URL), max_fps (8),
roi (1.0: the whole frame; 0.6: the central 60 % of each side), max_width (1280),
gone_after_s (1.0), confirm_frames (2), formats (the six below), pace ("realtime": a file
plays at its own speed; "fast": as fast as it decodes, its timing taken from the video),
preview_fps (0: none; else small frames published as CameraFrame for a live preview).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from drivers.base import Sink, require_module
from pos_client.configfile import Section
from pos_client.events import CameraFrame, ReaderStatus, ScanEvent

log = logging.getLogger(__name__)

INSTALL_HINT = "install the 'camera' extra (pip install 'pos-client[camera]')"
FORMATS = ("EAN13", "Code128", "QRCode", "PDF417", "Aztec", "DataMatrix")
LINEAR = {"EAN13", "Code128"}  # no error correction: read twice before it counts
PREVIEW_WIDTH = 320


@dataclass
class _Seen:
    last_at: float  # the time (video or wall clock) it was last read
    reads: int
    reported: bool


class Presentations:
    """Which codes are in view now, and which of them to report: pure, fed by decoded
    frames with their time, so tests can drive it without a camera."""

    def __init__(self, gone_after_s: float, confirm_frames: int) -> None:
        self.gone_after_s = gone_after_s
        self.confirm_frames = confirm_frames
        self._seen: dict[str, _Seen] = {}

    def frame(self, at: float, codes: list[tuple[str, bool]]) -> list[str]:
        """`codes`: (text with its AIM id, linear?) read in the frame at `at`; returns
        the codes to report now."""
        for text, seen in list(self._seen.items()):
            if at - seen.last_at > self.gone_after_s:
                del self._seen[text]  # out of view: the next sight is a new presentation
        report = []
        for text, linear in dict.fromkeys(codes):
            seen = self._seen.setdefault(text, _Seen(at, 0, False))
            seen.last_at = at
            seen.reads += 1
            if not seen.reported and seen.reads >= (self.confirm_frames if linear else 1):
                seen.reported = True
                report.append(text)
        return report


def _source(section: Section) -> int | str:
    value = section.data.get("source", 0)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise section.fail("source", "expected a device index, a device path, a file or a URL")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


OPTIONS = {
    "source",
    "max_fps",
    "roi",
    "max_width",
    "gone_after_s",
    "confirm_frames",
    "pace",
    "formats",
    "preview_fps",
}
_HOST = re.compile(r"[A-Za-z0-9.\-\[\]:]{1,255}")


def shown_source(source: int | str) -> str:
    """The source as logs and screens may show it: a device or a file as it is; of a URL
    only its scheme, and its host when nothing in it could be a credential (a password may
    hold "@" or "/", sit in the query or the fragment); a pipeline not at all."""
    text = str(source)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text if "=" not in text else "a capture pipeline (hidden)"
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", scheme):
        return "a capture pipeline (hidden)"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in rest or "=" in rest or not _HOST.fullmatch(authority):
        return f"{scheme}://…"
    return f"{scheme}://{authority}/…"


class CameraReader:
    kind = "camera"

    def __init__(self, name: str, options: Mapping[str, Any], sink: Sink) -> None:
        section = Section(options, f"reader {name}", f"readers.{name}.")
        unknown = sorted(set(options) - OPTIONS)
        if unknown:  # a typo ("sourse") must not quietly open camera 0
            raise section.fail(
                unknown[0], f"not a camera option (known: {', '.join(sorted(OPTIONS))})"
            )
        self.name = name
        self.sink = sink
        self.source = _source(section)
        self.max_fps = float(section.decimal("max_fps", "8", minimum=Decimal("0.5")))
        self.roi = float(section.decimal("roi", "1.0", minimum=Decimal("0.2")))
        if self.roi > 1:
            raise section.fail("roi", "expected a share of the frame, 0.2 to 1.0")
        self.max_width = section.integer("max_width", 1280, minimum=160)
        self.gone_after_s = float(section.decimal("gone_after_s", "1.0", minimum=Decimal("0.1")))
        self.confirm_frames = section.integer("confirm_frames", 2, minimum=1)
        self.pace = section.text("pace", "realtime")
        if self.pace not in ("realtime", "fast"):
            raise section.fail("pace", "expected realtime or fast")
        formats = section.str_list("formats") or list(FORMATS)
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise section.fail("formats", f"unknown {unknown}; known: {', '.join(FORMATS)}")
        self.formats = tuple(formats)
        self.preview_fps = float(section.decimal("preview_fps", "0", minimum=Decimal(0)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.finished = threading.Event()  # a file source played to its end
        self.last_error: str | None = None
        self.decoded_frames = 0
        self.read_frames = 0

    def open(self) -> None:
        # OpenCV and its FFmpeg would print a warning on stderr at every retry of a missing
        # camera or a broken file: the reader reports those itself, once.
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self._cv2 = require_module("cv2", INSTALL_HINT)
        self._zxing = require_module("zxingcpp", INSTALL_HINT)
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> CameraReader:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self) -> str:
        state = "connected" if self.connected else f"not connected ({self.last_error})"
        return f"camera {self.name} on {shown_source(self.source)}: {state}"

    def problem(self) -> str | None:
        if self.connected:
            return None
        return self.last_error or f"{shown_source(self.source)} not opened yet"

    def _status(self, state: str, detail: str) -> None:
        self.connected = state == "connected"
        self.last_error = None if self.connected else detail
        self.sink(ReaderStatus(f"camera:{self.name}", state, detail))

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        cv2 = self._cv2
        delay = 0.1
        announced_down = False
        # A recorded video (a field test) ends; a device or a stream (rtsp://) is reopened.
        is_file = (
            isinstance(self.source, str)
            and not self.source.startswith("/dev/")
            and "://" not in self.source
        )
        while not self._stop.is_set():
            capture = cv2.VideoCapture(self.source)
            if not capture.isOpened():
                capture.release()
                if not announced_down:
                    self._status("disconnected", f"cannot open {shown_source(self.source)}")
                    announced_down = True
                self._stop.wait(delay)
                delay = min(2.0, delay * 2)
                continue
            delay, announced_down = 0.1, False
            self._status("connected", shown_source(self.source))
            try:
                self._read(capture, is_file)
            finally:
                capture.release()
            if is_file:  # played to its end: a field test's video is over
                self.finished.set()
                self._status("disconnected", f"{shown_source(self.source)}: end of the video")
                return
            if not self._stop.is_set():
                self._status("disconnected", f"{shown_source(self.source)} stopped giving frames")

    def _read(self, capture: Any, is_file: bool) -> None:
        cv2 = self._cv2
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        presentations = Presentations(self.gone_after_s, self.confirm_frames)
        source = f"camera:{self.name}"
        started = time.monotonic()
        next_decode = next_preview = 0.0
        index = 0
        while not self._stop.is_set():
            ok, frame = capture.read()
            if not ok:
                return
            self.read_frames += 1
            # A file's own timeline (frames / fps), a device's the wall clock.
            at = index / fps if is_file else time.monotonic() - started
            index += 1
            if is_file and self.pace == "realtime":
                ahead = at - (time.monotonic() - started)
                if ahead > 0:
                    self._stop.wait(ahead)
            if self.preview_fps and at >= next_preview:
                next_preview = at + 1 / self.preview_fps
                self.sink(self._preview(frame, source))
            if at < next_decode:
                continue
            next_decode = at + 1 / self.max_fps
            codes = self._decode(frame)
            self.decoded_frames += 1
            for text in presentations.frame(at, codes):
                self.sink(ScanEvent(source, "barcode", text, text.encode()))

    def _decode(self, frame: Any) -> list[tuple[str, bool]]:
        cv2 = self._cv2
        height, width = frame.shape[:2]
        if self.roi < 1:
            keep_w, keep_h = int(width * self.roi), int(height * self.roi)
            left, top = (width - keep_w) // 2, (height - keep_h) // 2
            frame = frame[top : top + keep_h, left : left + keep_w]
            height, width = keep_h, keep_w
        if width > self.max_width:
            scale = self.max_width / width
            frame = cv2.resize(frame, (self.max_width, int(height * scale)))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        formats = tuple(getattr(self._zxing.BarcodeFormat, name) for name in self.formats)
        found = []
        for code in self._zxing.read_barcodes(gray, formats=formats):
            if not code.valid or not code.text:
                continue
            fmt = str(code.format).rsplit(".", 1)[-1].replace("-", "").replace(" ", "")
            found.append((code.symbology_identifier + code.text, fmt in LINEAR))
        return found

    def _preview(self, frame: Any, source: str) -> CameraFrame:
        cv2 = self._cv2
        height, width = frame.shape[:2]
        scale = PREVIEW_WIDTH / width
        small = cv2.resize(frame, (PREVIEW_WIDTH, max(1, int(height * scale))))
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        return CameraFrame(source, rgb.shape[1], rgb.shape[0], rgb.tobytes())
