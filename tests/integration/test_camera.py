"""Camera scanning through the real path a kiosk uses: a `camera` reader from config,
OpenCV reading a video written here (codes at several sizes and angles, blurred, noisy,
and a wallet pass's QR code on a phone's screen photographed at a slant), zxing-cpp
decoding, the scan router identifying members on the embedded ledger. Each member is
identified once per presentation, and never a wrong one."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cv2", reason="opencv (the 'camera' extra) is not installed")

from drivers.camera import Presentations
from pos_client.bootstrap import build_terminal, run_terminal
from pos_client.demo import DEMO_MEMBERS, demo_key, seed_demo_members
from pos_client.scanning import IdentificationFailed, MemberIdentified
from pos_client.settings import ReaderSettings
from tests.camera_video import Presentation, write_video
from tests.conftest import make_settings

ANNA, BOB, ELENI, OLENA = DEMO_MEMBERS
PRODUCT = "4006381333931"  # a product's EAN-13 on a box: nobody's card


def presentations() -> list[Presentation]:
    return [
        Presentation(ANNA.card_number, "EAN13", 360),
        Presentation(BOB.card_number, "EAN13", 300, angle=12),
        Presentation(ELENI.card_number, "Code128", 400, angle=-10, noise=8),
        Presentation(OLENA.card_number, "QRCode", 160, phone=True),  # a wallet pass
        Presentation(PRODUCT, "EAN13", 360, angle=5),
        Presentation(ANNA.card_number, "QRCode", 200, blur=5, noise=10),
        Presentation(BOB.card_number, "EAN13", 360, angle=-15, blur=3, noise=6),
        Presentation(ELENI.card_number, "PDF417", 380, angle=5),
        Presentation(OLENA.card_number, "Aztec", 180, angle=20),
        Presentation(ANNA.card_number, "DataMatrix", 160, noise=5),
        Presentation(ANNA.card_number, "DataMatrix", 160, noise=5),  # shown again
    ]


def identified_from_video(tmp_path: Path, video: Path, **options: Any) -> list[Any]:
    settings = make_settings(tmp_path)
    with build_terminal(settings) as terminal:  # the members, before the camera starts
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    camera = ReaderSettings("camera", "kiosk", {"source": str(video), "pace": "fast", **options})
    settings = replace(settings, readers=(camera,))
    events: list[Any] = []
    done = threading.Event()
    with run_terminal(settings) as running:
        for kind in (MemberIdentified, IdentificationFailed):
            running.terminal.bus.subscribe(kind, events.append)
        (reader,) = running.readers
        assert reader.finished.wait(60), "the video did not play to its end"
        done.wait(0.5)  # the router identifies the last scans
    return events


def test_each_member_is_identified_once_per_presentation_and_never_a_wrong_one(
    tmp_path: Path,
) -> None:
    video = write_video(tmp_path / "kiosk.avi", presentations())
    events = identified_from_video(tmp_path, video)
    by_id = {demo_key(f"member:{m.handle}"): m.first_name for m in DEMO_MEMBERS}
    found = [by_id[e.session.view.member_id] for e in events if isinstance(e, MemberIdentified)]
    assert found == [
        "Anna", "Bob", "Eleni", "Olena", "Anna", "Bob", "Eleni", "Olena", "Anna", "Anna"
    ]  # fmt: skip
    failed = [e for e in events if isinstance(e, IdentificationFailed)]
    assert [e.reason for e in failed] == ["unknown"]  # the product's code, once


def test_a_code_held_in_view_is_one_presentation() -> None:
    seen = Presentations(gone_after_s=1.0, confirm_frames=2)
    code = ("]E02900000000018", True)
    reported = [seen.frame(i / 8, [code]) for i in range(40)]  # five seconds in view
    assert [r for r in reported if r] == [["]E02900000000018"]]
    assert seen.frame(5.5, []) == []
    assert seen.frame(7.0, [code]) == []  # back after 2 s away: a new presentation...
    assert seen.frame(7.1, [code]) == ["]E02900000000018"]  # ...read twice, reported


def test_a_linear_code_read_once_is_not_trusted_a_2d_code_is() -> None:
    seen = Presentations(gone_after_s=1.0, confirm_frames=2)
    assert seen.frame(0.0, [("]E01234567890128", True), ("]Q1abc", False)]) == ["]Q1abc"]
    assert seen.frame(2.0, [("]E09999999999994", True)]) == []  # a misread, never again


def test_a_camera_that_cannot_open_says_so_and_nothing_is_identified(tmp_path: Path) -> None:
    events = []
    from drivers.camera import CameraReader

    reader = CameraReader("kiosk", {"source": str(tmp_path / "missing.avi")}, events.append)
    reader.open()
    try:
        assert reader.finished.wait(0.5) is False
        assert reader.problem() is not None and "cannot open" in reader.problem()
    finally:
        reader.close()
    assert [e.state for e in events] == ["disconnected"]


def test_a_typo_in_a_camera_option_is_refused_and_a_urls_password_never_shown() -> None:
    from drivers.camera import CameraReader, shown_source
    from pos_client.configfile import ConfigError

    with pytest.raises(ConfigError, match=r"'readers\.kiosk\.sourse'.*not a camera option"):
        CameraReader("kiosk", {"sourse": "/dev/video1"}, lambda _event: None)
    secret = "rtsp://admin:S3cretPass@127.0.0.1:1/stream"
    reader = CameraReader("kiosk", {"source": secret}, lambda _event: None)
    assert "S3cretPass" not in reader.describe() + (reader.problem() or "")
    assert shown_source(secret) == "rtsp://…"
    assert shown_source("rtsp://cam.local:554/live") == "rtsp://cam.local:554/…"
    for hidden in (
        "rtsp://admin:p@ssS3cret@host/s",  # FFmpeg splits on the last "@"
        "http://host/v.cgi?user=admin&pwd=S3cret",
        "rtsp://admin:pa/S3cret@host/s",
        "http://127.0.0.1:1/cgi?user=admin&pwd=abc@S3cret",
        "http://127.0.0.1:1/video.mjpg#pwd@S3cret",
        "rtspsrc user-pw=S3cret location=rtsp://127.0.0.1:1/s ! appsink",
    ):
        assert "S3cret" not in shown_source(hidden), hidden
