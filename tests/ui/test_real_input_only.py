"""UI tests, the demo and the screen tour drive the app only through real input: a grep over
their source.

They may read state to assert (`app.sm.current`, a label's text) and inject cards and scans
through the simulated reader driver; they may not call a screen's handlers or the app's
navigation, set widget state, or dispatch events themselves (the harness in ui/touch.py
does that, the way the Window does).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = [REPO / "ui" / name for name in ("demo.py", "script.py", "touch.py", "tour.py")]
CHECKED = [*sorted((REPO / "tests" / "ui").glob("*.py")), *HARNESS]
THIS = Path(__file__).resolve()

FORBIDDEN = {
    "app navigation or action": re.compile(
        r"\bapp\.(\w+\.)?(go|go_idle|set_language|next_language|toggle_mode|lookup_phone"
        r"|enroll|unlock_admin|confirm_\w+|admin_\w+|show_receipt|show_message|clear_message"
        r"|refresh_session|fill_member_screen|stop)\("
    ),
    # The app's controllers are what its screens call: a test calls none of them (a slow
    # backend comes from the simulated reader's `latency` command).
    "controller call": re.compile(
        r"\bapp\.(nav|status|input|member|sale|staff|customer|activity)\.\w+\("
    ),
    "screen handler": re.compile(
        r"\.(key|find|confirm|submit|_choose|choose|change|pick_category|_picked|add_line|remove_line"
        r"|update_preview|refresh|trigger_action)\("
    ),
    "screen handler (join)": re.compile(r"(?<![\"'])\.join\("),
    "widget or app state set directly": re.compile(
        r"\.(text|active|state|focus|current|message|busy|lang|disabled)\s*=[^=]"
    ),
    "event dispatched directly": re.compile(r"\.dispatch\("),
}
# A harness generator called without `yield from` silently does nothing.
UNYIELDED = re.compile(
    r"^(?!\s*def |.*\byield from )"
    r".*\b(tap|long_press|tap_keys|type_text|type_into)\("
)

# Harness internals: (file, rule, the line's text must contain this).
ALLOWED = {
    ("ui/script.py", "app navigation or action", "self.app.stop()"),
    ("ui/touch.py", "event dispatched directly", 'window.dispatch("on_'),
}


def problems(path: Path, text: str) -> list[str]:
    relative = path.relative_to(REPO).as_posix() if path.is_absolute() else str(path)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        for rule, pattern in FORBIDDEN.items():
            if not pattern.search(code):
                continue
            if any(f == relative and r == rule and s in code for f, r, s in ALLOWED):
                continue
            found.append(f"{relative}:{number}: {rule}: {line.strip()}")
        if relative != "ui/touch.py" and UNYIELDED.search(code):
            found.append(f"{relative}:{number}: harness step without `yield from`: {line.strip()}")
    return found


def test_ui_tests_and_the_demo_use_only_real_input() -> None:
    found = []
    for path in CHECKED:
        if path.resolve() == THIS:
            continue
        found += problems(path, path.read_text(encoding="utf-8"))
    assert not found, "direct calls instead of real input:\n" + "\n".join(found)


def test_the_check_catches_direct_calls() -> None:
    bad = [
        'app.go("phone")',
        'app.nav.go("phone")',
        "app.nav.go_idle()",
        "app.sale.confirm_earn(lines)",
        "app.staff.toggle_mode()",
        "app.go_idle()",
        'app.set_language("ru")',
        'phone.key("1")',
        "phone.find()",
        "earn.confirm()",
        "admin.submit()",
        "redeem._choose(option)",
        "enroll.join()",
        'enroll.ids.first_name.text = "Dana"',
        "enroll.ids.consent.active = True",
        'Window.dispatch("on_keyboard", 27, 41, None, [])',
        'button.dispatch("on_release")',
        'app.sm.current = "member"',
        'tap(text="OK")',
    ]
    for line in bad:
        assert problems(Path("tests/ui/example.py"), f"    {line}\n"), line
    fine = [
        'yield from tap(text=app.tr("phone.find"))',
        'yield from tap_keys("123")',
        'seen = " | ".join(labels)',
        'assert app.sm.current == "member"',
        'simulated(app).inject({"cmd": "tap", "value": "04A2"})',
        "seen.update(name=screen.name_text)",
    ]
    for line in fine:
        assert not problems(Path("tests/ui/example.py"), f"    {line}\n"), line
