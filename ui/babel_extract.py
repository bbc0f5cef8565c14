"""Babel extraction for keyed messages in .py and .kv files (see babel.cfg, `make i18n`).

Finds the message keys the code uses:
- `tr("key", …)` and `translate(language, "key", …)` calls, in .py files and in .kv
  property expressions (`text: app.tr("idle.title", app.lang)`), including both branches of
  `tr("a" if flag else "b")`;
- `N_("key")` markers (keys looked up later, e.g. error codes -> keys).
A key in ui.i18n.PLURALS is extracted as a plural message (msgid_plural = the key). Each
message carries its English text (from the en catalog) as a translator comment.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

KEY = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+$")
KV_PROPERTY = re.compile(r"^\s*[A-Za-z_][\w.]*\s*:\s*(.+)$")
KEY_ARGUMENT = {"tr": 0, "translate": 1, "N_": 0}


def _constants(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _constants(node.body)
        yield from _constants(node.orelse)


def keys_in_tree(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        position = KEY_ARGUMENT.get(name or "")
        if position is None or len(node.args) <= position:
            continue
        for key in _constants(node.args[position]):
            if KEY.match(key):
                yield node.lineno, key


def keys_in_python(source: str) -> Iterator[tuple[int, str]]:
    yield from keys_in_tree(ast.parse(source))


def keys_in_kv(source: str) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(source.splitlines(), start=1):
        match = KV_PROPERTY.match(line)
        if not match or "tr(" not in line:
            continue
        try:
            tree = ast.parse(match.group(1).strip(), mode="eval")
        except SyntaxError:
            continue
        for _offset, key in keys_in_tree(tree):
            yield lineno, key


def english_comment(key: str) -> list[str]:
    from ui import i18n

    catalog = i18n.load_catalog("en")
    if key in catalog.plural:
        return [" | ".join(catalog.plural[key])]
    return [catalog.singular[key]] if key in catalog.singular else []


def _message(key: str) -> str | tuple[str, str]:
    from ui.i18n import PLURALS

    return (key, key) if key in PLURALS else key


def extract(
    fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, str | tuple[str, str], list[str]]]:
    """Babel extraction method (babel.cfg: `[ui.babel_extract:extract: **.py]`)."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    finder = keys_in_kv if options.get("kind") == "kv" else keys_in_python
    for lineno, key in finder(source):
        funcname = "ngettext" if key in _plural_keys() else "gettext"
        yield lineno, funcname, _message(key), english_comment(key)


def _plural_keys() -> set[str]:
    from ui.i18n import PLURALS

    return set(PLURALS)


def keys_used(root: Any) -> dict[str, list[str]]:
    """Every key used under `root` (a Path): key -> files using it. For tests."""
    from pathlib import Path

    used: dict[str, list[str]] = {}
    for path in sorted(Path(root).rglob("*")):
        if path.suffix == ".py":
            found = keys_in_python(path.read_text(encoding="utf-8"))
        elif path.suffix == ".kv":
            found = keys_in_kv(path.read_text(encoding="utf-8"))
        else:
            continue
        for _lineno, key in found:
            used.setdefault(key, []).append(str(path))
    return used
