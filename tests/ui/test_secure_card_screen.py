"""The member screen says how the member was identified, and a programme that spends
points only on a secure card's verified tap holds a scanned barcode to earning: real
input only (the simulated reader's taps and scans, fingers on the screen)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from tests.integration.test_spending_policy import anna_tap, settings_for
from tests.ui.conftest import run_ui
from tests.ui.test_kiosk_spending import ANNA, try_the_gift_card, visible_texts
from ui.demo import on, simulated
from ui.touch import tap

TAP_SECURE = "To spend points, tap your secure member card"


def test_the_member_screen_names_the_identification_and_only_a_secure_tap_spends(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "scan", "value": ANNA.card_number})
        yield on(app, "member")
        yield 0.1
        seen["by_barcode"] = visible_texts()
        yield from try_the_gift_card(app, seen, "barcode_redeem")
        yield from tap(text=app.tr("common.done"))
        yield on(app, "idle")
        simulated(app).inject({"cmd": "sun", "value": anna_tap(tmp_path, 3)})
        yield on(app, "member")
        yield 0.1
        seen["by_secure_card"] = visible_texts()
        yield from try_the_gift_card(app, seen, "secure_redeem")

    settings = settings_for(tmp_path, 'identified_by = ["secure_card"]')
    run_ui(settings, script)
    assert "Identified by card barcode" in seen["by_barcode"]
    assert TAP_SECURE in seen["by_barcode"]
    assert seen["barcode_redeem"] == {"asked": False, "said": TAP_SECURE, "recorded": 0}
    assert "Identified by secure card (verified)" in seen["by_secure_card"]
    assert TAP_SECURE not in seen["by_secure_card"]
    assert seen["secure_redeem"]["asked"] is True
