"""Camera scanning (issue 14): frames decoded per second by the camera reader, and the time
from a card's first frame in view to the member being identified (p50/p95), beside
zxing-cpp's bare decode time on the same frames.

A video is written with OpenCV (tests/camera_video.py): the demo members' cards held up one
after another (EAN-13, Code 128, QR on a phone), 640x480 at 15 fps. Two runs:
- throughput: the reader decoding every frame as fast as it can (pace "fast");
- latency: the video played in real time through a terminal (embedded ledger, the scan
  router), the reader at its default budget (8 decodes a second), each presentation's
  first frame's moment against the MemberIdentified event's.

Usage: python benchmarks/camera.py [--presentations 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))

from drivers.camera import CameraReader
from pos_client.bootstrap import build_terminal, run_terminal
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.scanning import MemberIdentified
from pos_client.settings import ReaderSettings
from tests.camera_video import FPS, Presentation, write_video
from tests.conftest import make_settings

KINDS = (("EAN13", 360, False), ("Code128", 400, False), ("QRCode", 160, True))
LEAD_S, SHOWN_S, GAP_S = 0.8, 1.2, 1.6


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bare_decode(video: Path) -> tuple[int, float]:
    """zxing-cpp alone on every frame (grey), the same formats: (frames, seconds)."""
    import cv2
    import zxingcpp

    formats = tuple(
        getattr(zxingcpp.BarcodeFormat, name)
        for name in ("EAN13", "Code128", "QRCode", "PDF417", "Aztec", "DataMatrix")
    )
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    started = time.perf_counter()
    for frame in frames:
        zxingcpp.read_barcodes(frame, formats=formats)  # type: ignore[arg-type]
    return len(frames), time.perf_counter() - started


@dataclass(frozen=True)
class CameraFigures:
    frames: int
    reader_fps: float  # read and decoded by the reader, every frame
    reader_cpu_ms: float
    bare_fps: float  # zxing-cpp alone on the same frames
    latencies: list[float]  # first frame in view -> member identified, seconds
    presentations: int
    identified: int


def measure(presentations: int) -> CameraFigures:
    specs = []
    for index in range(presentations):
        member = DEMO_MEMBERS[index % len(DEMO_MEMBERS)]
        kind, width, phone = KINDS[index % len(KINDS)]
        specs.append(
            Presentation(member.card_number, kind, width, phone=phone, seconds=SHOWN_S, gap_s=GAP_S)
        )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        video = write_video(work / "bench.avi", specs, lead_s=LEAD_S)
        events: list[Any] = []
        reader = CameraReader(
            "bench", {"source": str(video), "pace": "fast", "max_fps": 1000}, events.append
        )
        started, cpu = time.perf_counter(), time.process_time()
        reader.open()
        reader.finished.wait(300)
        reader.close()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        frames, bare = bare_decode(video)
        settings = make_settings(work / "terminal")
        with build_terminal(settings) as terminal:
            assert terminal.ledger is not None
            seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        camera = ReaderSettings("camera", "kiosk", {"source": str(video), "pace": "realtime"})
        found: list[float] = []
        lock = threading.Lock()

        def identified(_event: MemberIdentified) -> None:
            with lock:
                found.append(time.monotonic())

        with run_terminal(replace(settings, readers=(camera,))) as running:
            running.terminal.bus.subscribe(MemberIdentified, identified)
            (live,) = running.readers
            begun = time.monotonic()  # the video's first frame, give or take the open
            live.finished.wait(300)
            time.sleep(0.5)
    latencies = []
    for index in range(len(specs)):
        first_frame = begun + LEAD_S + index * (SHOWN_S + GAP_S)
        after = [
            at - first_frame for at in found if first_frame <= at < first_frame + SHOWN_S + GAP_S
        ]
        if after:
            latencies.append(min(after))
    return CameraFigures(
        frames,
        reader.decoded_frames / wall,
        cpu / reader.decoded_frames * 1000,
        frames / bare,
        latencies,
        len(specs),
        len(found),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presentations", type=int, default=12)
    args = parser.parse_args()
    figures = measure(args.presentations)
    print(f"{figures.frames} frames of 640x480 ({figures.presentations} cards held up), 15 fps")
    print(
        f"reader, every frame: {figures.reader_fps:7.1f} frames/s decoded"
        f" ({1000 / figures.reader_fps:.2f} ms a frame, read and decoded;"
        f" {figures.reader_cpu_ms:.2f} ms CPU)"
    )
    print(
        f"bare zxing-cpp, same frames: {figures.bare_fps:7.1f} frames/s"
        f" ({1000 / figures.bare_fps:.2f} ms a frame); reader / bare:"
        f" {figures.bare_fps / figures.reader_fps:.2f}x"
    )
    latencies = figures.latencies
    if latencies:
        print(
            f"first frame in view -> member identified (real time, {int(FPS)} fps, 8 decodes/s,"
            f" linear codes read twice): p50 {statistics.median(latencies) * 1000:.0f} ms,"
            f" p95 {percentile(latencies, 0.95) * 1000:.0f} ms over {len(latencies)}"
            f" presentations; missed: {figures.presentations - len(latencies)};"
            f" members identified: {figures.identified}"
        )


if __name__ == "__main__":
    main()
