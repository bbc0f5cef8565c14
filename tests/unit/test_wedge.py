"""The wedge classifier on timing traces of scanners and of people."""

from __future__ import annotations

import random

import pytest

from drivers.wedge import (
    KeyDecoder,
    KeyStroke,
    Scanned,
    Typed,
    WedgeClassifier,
    WedgeThresholds,
    thresholds_from,
)


def trace(text: str, gaps_ms: list[float], start: float = 100.0) -> list[KeyStroke]:
    strokes, at = [], start
    for char, gap in zip(text, [0.0, *gaps_ms], strict=True):
        at += gap / 1000
        strokes.append(KeyStroke(char, at))
    return strokes


def scanner_trace(code: str, rng: random.Random, end: str = "\r") -> list[KeyStroke]:
    text = code + end
    return trace(text, [rng.uniform(4, 30) for _ in text[1:]])


def person_trace(text: str, rng: random.Random) -> list[KeyStroke]:
    return trace(text, [rng.uniform(70, 350) for _ in text[1:]])


def classify(strokes: list[KeyStroke], classifier: WedgeClassifier | None = None) -> list[object]:
    classifier = classifier or WedgeClassifier()
    out: list[object] = []
    for stroke in strokes:
        out.extend(classifier.feed(stroke))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_scanner_bursts_are_scans(seed: int) -> None:
    rng = random.Random(seed)
    code = rng.choice(["4006381333931", "]E02900000000018", "ABC-12345", "96385074"])
    results = classify(scanner_trace(code, rng, end=rng.choice(["\r", "\t"])))
    assert len(results) == 1 and isinstance(results[0], Scanned)
    assert results[0].text == code


@pytest.mark.parametrize("seed", range(20))
def test_people_typing_the_same_codes_are_not_scans(seed: int) -> None:
    rng = random.Random(seed)
    code = rng.choice(["4006381333931", "2900000000018", "9123456789"])
    results = classify(person_trace(code + "\r", rng))
    assert not any(isinstance(r, Scanned) for r in results)
    assert "".join(r.text for r in results if isinstance(r, Typed)) == code + "\r"


def test_a_fast_typist_short_burst_is_not_a_scan() -> None:
    # "ok" + Enter rolled very fast: under the 4-character minimum.
    assert classify(trace("ok\r", [18, 22])) == [Typed("ok"), Typed("\r")]


def test_a_person_then_a_scan_right_after() -> None:
    rng = random.Random(7)
    person = person_trace("12", rng)
    scan = scanner_trace("4006381333931", rng)
    shift = person[-1].at + 0.2 - scan[0].at
    scan = [KeyStroke(s.char, s.at + shift) for s in scan]
    results = classify(person + scan)
    assert results[-1] == Scanned("4006381333931", pytest.approx(results[-1].duration_s))  # type: ignore[union-attr]
    assert [r for r in results if isinstance(r, Typed)] == [Typed("1"), Typed("2")]


def test_a_slow_gap_splits_a_burst() -> None:
    strokes = trace("1234567\r", [10, 10, 10, 400, 10, 10, 10])
    assert classify(strokes) == [Typed("1234"), Typed("567"), Typed("\r")]


def test_no_terminator_flushes_as_typed_after_the_gap() -> None:
    classifier = WedgeClassifier()
    for stroke in trace("12345", [10, 10, 10, 10]):
        assert classifier.feed(stroke) == []
    assert classifier.flush(stroke.at + 0.01) == []
    assert classifier.flush(stroke.at + 0.5) == [Typed("12345")]


def test_thresholds_come_from_config() -> None:
    thresholds = thresholds_from({"min_length": 6, "max_gap_ms": 20}, "test")
    assert thresholds == WedgeThresholds(min_length=6, max_gap_s=0.02, max_length=128)
    classifier = WedgeClassifier(thresholds)
    assert classify(trace("12345\r", [5, 5, 5, 5, 5]), classifier) == [Typed("12345"), Typed("\r")]


def test_evdev_key_decoder_tracks_shift() -> None:
    decoder = KeyDecoder()
    events = [
        ("KEY_LEFTSHIFT", 1),
        ("KEY_A", 1),
        ("KEY_A", 0),
        ("KEY_LEFTSHIFT", 0),
        ("KEY_B", 1),
        ("KEY_B", 0),
        ("KEY_MINUS", 1),
        ("KEY_1", 1),
        ("KEY_ENTER", 1),
    ]
    chars = [c for c in (decoder.feed(name, value) for name, value in events) if c]
    assert "".join(chars) == "Ab-1\r"
