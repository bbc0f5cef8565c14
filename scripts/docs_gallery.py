"""Copy a few gallery pictures (written by `make demo`) into docs/gallery/, scaled down,
for the README: `python scripts/docs_gallery.py [demo-output/gallery]`."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

PICKED = (
    "member-rewards-en-1024x600",
    "purchase-lines-ru-1024x600",
    "staff-unlocked-el-1024x600",
    "give-uk-1024x600",
    "phone-digits-en-1080x1920",
    "member-birthday-ru-1080x1920",
)
LONG_SIDE = 800  # px: sharp at the README's width, small in the repository


def main() -> int:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output/gallery")
    target = Path(__file__).resolve().parents[1] / "docs" / "gallery"
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in PICKED:
        image = Image.open(source / f"{name}.png").convert("RGB")
        image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        out = target / f"{name}.png"
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
        total += out.stat().st_size
    print(f"{len(PICKED)} pictures in {target}, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
