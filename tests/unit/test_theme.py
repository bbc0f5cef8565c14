"""The theme's colours pass WCAG AA, and its scales are what the layouts assume."""

from __future__ import annotations

import pytest

from ui.theme import (
    AA_NORMAL,
    COLORS,
    PAIRS,
    SCALE_MAX,
    SCALE_MIN,
    TOUCH_MIN,
    TYPE,
    contrast_ratio,
    relative_luminance,
    scale_for,
)


def test_contrast_ratio_matches_the_wcag_reference_values() -> None:
    black, white = (0.0, 0.0, 0.0, 1.0), (1.0, 1.0, 1.0, 1.0)
    assert contrast_ratio(black, white) == pytest.approx(21.0)
    assert contrast_ratio(white, white) == pytest.approx(1.0)
    assert relative_luminance((0.5, 0.5, 0.5)) == pytest.approx(0.2140, abs=1e-4)
    # #767676 on white is the classic "just passes AA" grey (4.54:1).
    grey = (0x76 / 255, 0x76 / 255, 0x76 / 255, 1.0)
    assert contrast_ratio(grey, white) == pytest.approx(4.54, abs=0.01)
    # Order does not matter; a translucent text colour is blended over its background.
    assert contrast_ratio(white, grey) == pytest.approx(contrast_ratio(grey, white))
    assert contrast_ratio((1.0, 1.0, 1.0, 0.0), black) == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_text_and_background_pair_passes_aa(name: str) -> None:
    text, background = PAIRS[name]
    ratio = contrast_ratio(text, background)
    assert ratio >= AA_NORMAL, f"{name}: {ratio:.2f}:1"


def test_a_failing_pair_is_caught() -> None:
    # The old checkbox look: dark grey on the dark background.
    assert contrast_ratio((0.3, 0.32, 0.36, 1.0), COLORS.background) < AA_NORMAL


def test_the_scale_follows_the_window_within_bounds() -> None:
    assert scale_for(1024, 600) == 1.0
    assert scale_for(800, 480) == SCALE_MIN
    assert scale_for(1920, 1080) == SCALE_MAX
    assert SCALE_MIN < scale_for(1280, 800) < SCALE_MAX
    assert scale_for(1080, 1920) == pytest.approx(1080 / 1024, abs=0.01)  # portrait: by width


def test_the_smallest_text_stays_readable_and_targets_touchable() -> None:
    assert TYPE["caption"] * SCALE_MIN >= 11
    assert TOUCH_MIN == 48
    assert list(TYPE.values()) == sorted(TYPE.values())
