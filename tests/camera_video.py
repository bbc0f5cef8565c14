"""Test videos for the camera reader, written with OpenCV: codes shown to the camera one
presentation at a time, at several sizes and angles, blurred and noisy, between empty
frames; and a phone's screen held up with a wallet pass's QR code, photographed at a slant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, FPS = 640, 480, 15


@dataclass(frozen=True)
class Presentation:
    text: str  # what the code holds
    kind: str  # a zxingcpp.BarcodeFormat name: EAN13, Code128, QRCode, PDF417, Aztec...
    width: int  # the code's width in the frame, pixels
    angle: float = 0.0  # degrees
    blur: int = 0  # Gaussian kernel (odd), 0: sharp
    noise: float = 0.0  # standard deviation of the added noise, grey levels
    phone: bool = False  # on a phone's screen, photographed at a slant
    seconds: float = 1.2  # in view
    gap_s: float = 1.6  # empty frames after it


def _libraries() -> tuple[Any, Any]:
    """OpenCV and NumPy, untyped here: test drawing, not an API to check."""
    return importlib.import_module("cv2"), importlib.import_module("numpy")


def code_image(text: str, kind: str) -> Any:
    """The code drawn black on white (a numpy grey image) with its quiet zones."""
    _cv2, np = _libraries()
    import zxingcpp

    code = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, kind))
    return np.array(code.to_image(scale=4, add_quiet_zones=True), dtype=np.uint8)


def _placed(code: Any, spec: Presentation, rng: Any) -> Any:
    """A frame with the code at its size and angle, on a grey desk."""
    cv2, np = _libraries()

    scale = spec.width / code.shape[1]
    sized = cv2.resize(code, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((HEIGHT, WIDTH), 120, np.uint8)
    h, w = sized.shape
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    frame[top : top + h, left : left + w] = sized
    if spec.angle:
        turn = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), spec.angle, 1.0)
        frame = cv2.warpAffine(frame, turn, (WIDTH, HEIGHT), borderValue=120)
    return frame


def _phone(code: Any, spec: Presentation) -> Any:
    """A phone (dark body, white screen with the pass's code) held at a slant."""
    cv2, np = _libraries()

    screen_w, screen_h = 220, 400
    screen = np.full((screen_h, screen_w), 245, np.uint8)
    cv2.rectangle(screen, (0, 0), (screen_w, 70), 60, -1)  # the pass's coloured header
    scale = (spec.width) / code.shape[1]
    sized = cv2.resize(code, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = sized.shape
    screen[120 : 120 + h, (screen_w - w) // 2 : (screen_w - w) // 2 + w] = sized
    body = np.full((screen_h + 40, screen_w + 24), 25, np.uint8)
    body[20 : 20 + screen_h, 12 : 12 + screen_w] = screen
    bh, bw = body.shape
    corners = np.float32([[0, 0], [bw, 0], [bw, bh], [0, bh]])
    slant = np.float32([[210, 30], [440, 55], [430, 460], [200, 440]])
    warp = cv2.getPerspectiveTransform(corners, slant)
    return cv2.warpPerspective(body, warp, (WIDTH, HEIGHT), borderValue=150)


def write_video(
    path: Path, presentations: list[Presentation], seed: int = 7, lead_s: float = 0.8
) -> Path:
    """`lead_s` of empty frames, then the presentations one after another, each followed by
    empty frames; MJPEG in AVI."""
    cv2, np = _libraries()

    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MJPEG here"
    empty = np.full((HEIGHT, WIDTH), 120, np.uint8)

    def write(frame: Any, noise: float, frames: int) -> None:
        for _ in range(frames):
            shown = frame.astype(np.float32)
            if noise:
                shown += rng.normal(0, noise, frame.shape)
            writer.write(cv2.cvtColor(np.clip(shown, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))

    write(empty, 3.0, int(FPS * lead_s))
    for spec in presentations:
        code = code_image(spec.text, spec.kind)
        frame = _phone(code, spec) if spec.phone else _placed(code, spec, rng)
        if spec.blur:
            frame = cv2.GaussianBlur(frame, (spec.blur, spec.blur), 0)
        write(frame, spec.noise, int(FPS * spec.seconds))
        write(empty, 3.0, int(FPS * spec.gap_s))
    writer.release()
    return path
