"""Member card barcodes (python-barcode), to SVG or PNG by the output file's suffix."""

from __future__ import annotations

from pathlib import Path

from pos_client.identify import IdentifyError, gs1_check_digit, parse_code128, parse_ean

FORMATS = ("ean13", "code128")


def normalise_card_number(number: str, fmt: str) -> str:
    """Validate ourselves: python-barcode would silently 'fix' a wrong EAN-13 check digit."""
    text = number.strip()
    if fmt == "ean13":
        if len(text) == 12 and text.isdigit():
            return text + str(gs1_check_digit(text))
        return parse_ean(text).value if len(text) == 13 else _bad_ean(text)
    if fmt == "code128":
        return parse_code128(text).value
    raise IdentifyError(f"unknown barcode format {fmt!r} (use {' or '.join(FORMATS)})")


def _bad_ean(text: str) -> str:
    raise IdentifyError(f"EAN-13 needs 12 or 13 digits, got {text!r}")


def render_card(number: str, fmt: str, out: Path) -> Path:
    """Write the barcode; returns the file written (python-barcode adds the suffix itself)."""
    import barcode
    from barcode.writer import ImageWriter, SVGWriter

    value = normalise_card_number(number, fmt)
    suffix = out.suffix.lower()
    writers = {".svg": SVGWriter, ".png": ImageWriter}
    if suffix not in writers:
        raise IdentifyError(f"output must end in .svg or .png, got {out.name!r}")
    symbology = barcode.get_barcode_class(fmt)
    code = symbology(value, writer=writers[suffix]())
    out.parent.mkdir(parents=True, exist_ok=True)
    written = code.save(str(out.with_suffix("")), options={"module_height": 12.0})
    return Path(written)
