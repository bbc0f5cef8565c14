from __future__ import annotations

from drivers.serial_scanner import Frame, LineFramer, decode_frame


def test_frames_only_on_the_suffix_never_on_pauses() -> None:
    framer = LineFramer(b"\r")
    assert framer.feed(b"40063") == []
    assert framer.feed(b"81333") == []
    assert framer.feed(b"931\rABC") == [Frame(b"4006381333931")]
    assert framer.feed(b"\r") == [Frame(b"ABC")]


def test_crlf_split_across_reads() -> None:
    framer = LineFramer(b"\r\n")
    assert framer.feed(b"123456\r") == []
    assert framer.feed(b"\n") == [Frame(b"123456")]


def test_cr_suffix_tolerates_crlf_scanners() -> None:
    assert LineFramer(b"\r").feed(b"1111\r\n2222\r\n") == [Frame(b"1111"), Frame(b"2222")]


def test_overflow_reports_once_and_resynchronises() -> None:
    framer = LineFramer(b"\r", max_length=8)
    frames = framer.feed(b"x" * 20) + framer.feed(b"y" * 20) + framer.feed(b"\r12345678\r")
    assert [f.error is not None for f in frames] == [True, False]
    assert frames[1] == Frame(b"12345678")


def test_undecodable_bytes_are_an_error() -> None:
    text, error = decode_frame(Frame(b"\xc3\x28"), "ascii")
    assert text is None and error is not None and "undecodable" in error
    assert decode_frame(Frame(b"]E0123"), "ascii") == ("]E0123", None)
