"""The console's catalogs complete and current (every word shown through `_()` translated in
ru, uk and el, no key left that nothing shows), the language picked from the cookie or the
browser, and the translator's English fallback."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from loyalty_server.console import accounts, i18n
from loyalty_server.console.catalog import TRANSLATIONS

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "loyalty_server" / "console"
TEMPLATES = CONSOLE / "templates"
TRANSLATED = [code for code in i18n.LANGUAGES if code != "en"]

LITERAL = re.compile(r"""_\(\s*(?:"([^"]*)"|'([^']*)')\s*\)""")
DASHBOARD_LIST = re.compile(r"{%\s*for label, today, period in \[(.*?)\]\s*%}", re.DOTALL)
DASHBOARD_LABEL = re.compile(r"""\(\s*(?:"([^"]*)"|'([^']*)')\s*,""")


def template_literals() -> set[str]:
    found: set[str] = set()
    for path in sorted(TEMPLATES.glob("*.html")):
        for double, single in LITERAL.findall(path.read_text(encoding="utf-8")):
            found.add(double or single)
    return found


def dashboard_labels() -> set[str]:
    match = DASHBOARD_LIST.search((TEMPLATES / "dashboard.html").read_text(encoding="utf-8"))
    assert match, "dashboard.html's list of labels not found"
    return {double or single for double, single in DASHBOARD_LABEL.findall(match.group(1))}


def used_keys() -> set[str]:
    return template_literals() | dashboard_labels() | set(i18n.DYNAMIC) | set(i18n.NOTICES.values())


def test_the_words_are_found() -> None:
    literals = template_literals()
    assert {"Dashboard", "Reason", "Take back the points earned that day?"} <= literals
    assert dashboard_labels() == {
        "Sales with loyalty",
        "Points earned",
        "Points spent",
        "Active members",
        "Enrollments",
    }
    assert len(i18n.DYNAMIC) == len(set(i18n.DYNAMIC)), "a key twice in i18n.DYNAMIC"


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalog_complete_and_current(language: str) -> None:
    table = TRANSLATIONS[language]
    used = used_keys()
    missing = sorted(key for key in used if not table.get(key, "").strip())
    stale = sorted(set(table) - used)
    assert not missing and not stale, f"{language}: missing {missing}, stale {stale}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_shape(language: str) -> None:
    """No stray spaces; a label ending with ':' or a sentence with '.' keeps it; a question
    stays one (Greek asks with ';')."""
    wrong = []
    for key, text in TRANSLATIONS[language].items():
        ends = {":": (":",), ".": (".",), "?": ("?", ";") if language == "el" else ("?",)}
        if text != text.strip() or (key[-1:] in ends and not text.endswith(ends[key[-1]])):
            wrong.append((key, text))
    assert not wrong, f"{language}: {wrong}"


def test_catalog_sorted() -> None:
    assert set(TRANSLATIONS) == set(TRANSLATED)
    for language, table in TRANSLATIONS.items():
        assert list(table) == sorted(table), f"{language}: keys not sorted"


def _strings(node: ast.AST) -> set[str]:
    """The string constants of an expression, not inside an f-string or a comparison."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return {node.value}
    if isinstance(node, ast.JoinedStr | ast.Compare):
        return set()
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        found |= _strings(child)
    return found


def _call_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def shown_errors() -> set[str]:
    """The literal refusals routes.py shows through `_(error)` / `_(message)`, and
    data.card_problem's."""
    found: set[str] = set()
    routes = ast.parse((CONSOLE / "routes.py").read_text(encoding="utf-8"))
    for node in ast.walk(routes):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in ("HTTPException", "OpRejected"):
                found |= {s for arg in node.args[1:2] for s in _strings(arg)}
            elif name in ("_login_again", "program_page", "page"):
                found |= {s for arg in node.args for s in _strings(arg)}
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target in ("error", "problem"):
                found |= _strings(node.value)
            elif target == "detail" and isinstance(node.value, ast.IfExp):
                found |= _strings(node.value.orelse)
        elif isinstance(node, ast.FunctionDef) and node.name == "_reason_problem":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    found |= _strings(inner.value)
    data = ast.parse((CONSOLE / "data.py").read_text(encoding="utf-8"))
    for node in ast.walk(data):
        if isinstance(node, ast.FunctionDef) and node.name == "card_problem":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    found |= _strings(inner.value)
    return found


def audit_actions() -> set[str]:
    """The actions routes.py writes to the audit log: `audit.record(conn, user, ACTION, ...)`
    or `note(session, ACTION, ...)` (the flag's `flag-{decision}` written out)."""
    routes = ast.parse((CONSOLE / "routes.py").read_text(encoding="utf-8"))
    found = {"flag-approve", "flag-reverse"}
    where = {"record": 2, "note": 1}  # the action's place among the call's arguments
    for node in ast.walk(routes):
        if isinstance(node, ast.Call) and _call_name(node) in where:
            place = where[_call_name(node)]
            if len(node.args) > place:
                found |= _strings(node.args[place])
    return found


def ledger_kinds() -> set[str]:
    """The transaction kinds the ledger posts: `_post(conn, key, member, KIND, ...)`, a
    literal or a local `kind` set from literals."""
    tree = ast.parse((ROOT / "pos_client" / "ledger" / "ledger.py").read_text(encoding="utf-8"))
    kinds: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        local: dict[str, set[str]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                local.setdefault(node.targets[0].id, set()).update(_strings(node.value))
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and _call_name(node) == "_post" and len(node.args) > 3:
                kind = node.args[3]
                if isinstance(kind, ast.Name):
                    kinds |= local.get(kind.id, set())
                else:
                    kinds |= _strings(kind)
    return kinds


def test_dynamic_covers_what_the_code_shows() -> None:
    from pos_client.ledger.ledger import BLOCKED_CARD_UID, CARD_KINDS

    errors = shown_errors()
    assert "Wrong name or password." in errors and "No such flag." in errors
    kinds = ledger_kinds()
    assert {"earn", "redeem", "expire", "adjust"} <= kinds
    actions = audit_actions()
    assert {"sign-in", "export", "program-cancel"} <= actions
    shown = (
        errors
        | kinds
        | actions
        | set(accounts.ROLES)
        | {*CARD_KINDS, BLOCKED_CARD_UID, "card_number", "member_number"}
    )
    missing = sorted(shown - set(i18n.DYNAMIC) - template_literals())
    assert not missing, f"shown through _() but not in i18n.DYNAMIC: {missing}"


def test_pick() -> None:
    assert i18n.pick("ru", "uk-UA,uk;q=0.9") == "ru"  # the cookie wins
    assert i18n.pick(None, "uk-UA,uk;q=0.9") == "uk"
    assert i18n.pick("", "fr-FR,el;q=0.5") == "el"
    assert i18n.pick("xx", "fr-FR,de;q=0.8") == "en"
    assert i18n.pick("../../etc", None) == "en"
    assert i18n.pick(None, None) == "en"
    assert i18n.pick(None, "") == "en"


def test_pick_with_a_hostile_header() -> None:
    assert i18n.pick(None, "x" * 1_000_000) == "en"
    assert i18n.pick(None, "fr;q=0.1," * 100_000 + "ru") == "en"  # past what is read
    assert i18n.pick(None, ";;;,,,\x00\uffff" * 10_000) == "en"
    assert i18n.pick(None, "RU-ru") == "ru"


def test_translator() -> None:
    assert i18n.translator("ru")("Dashboard") == "Сводка"
    assert i18n.translator("uk")("Dashboard") == "Зведення"
    assert i18n.translator("el")("Dashboard") == "Πίνακας"
    assert i18n.translator("en")("Dashboard") == "Dashboard"
    assert i18n.translator("xx")("Dashboard") == "Dashboard"
    assert i18n.translator("ru")("words nobody translated") == "words nobody translated"
    assert i18n.translator("ru")(i18n.NOTICES["linked"]) == "Карта привязана."
