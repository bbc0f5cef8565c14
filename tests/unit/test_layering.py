"""Dependencies point inward: the core imports no front end, driver or transport library.

Checked on the source (ast), so a lazy import inside a function is told apart from one that
runs when the module is imported. Only the composition root (bootstrap.py) and the command
line (cli.py) may reach the outer parts, and only lazily; the HTTP backend adapter may
import requests, lazily. The UI depends on the core's ports, never on the bootstrap.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTER = {"kivy", "ui", "drivers", "loyalty_server", "smartcard", "pyscard", "serial", "requests"}
MAY_IMPORT_LAZILY = {
    "pos_client/bootstrap.py": OUTER,
    "pos_client/cli.py": OUTER,
    "pos_client/backends/http.py": {"requests"},
}


def imported(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.level == 0 and node.module:
        yield node.module
        yield from (f"{node.module}.{alias.name}" for alias in node.names)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.Module) -> Iterator[tuple[str, int, bool]]:
    """(module, line, at import time) for every import; `if TYPE_CHECKING:` never runs."""

    def walk(node: ast.AST, eager: bool) -> Iterator[tuple[str, int, bool]]:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                yield from walk(child, eager)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in imported(node):
                yield name, node.lineno, eager
        lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            yield from walk(child, eager and not lazy)

    yield from walk(tree, True)


def sources(package: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def test_the_core_imports_no_outer_part_at_module_level() -> None:
    found = [
        f"{path}:{line} imports {name}"
        for path, tree in sources("pos_client")
        for name, line, eager in imports(tree)
        if eager and name.split(".")[0] in OUTER
    ]
    assert found == []


def test_only_the_composition_root_and_adapters_import_outer_parts_even_lazily() -> None:
    found = [
        f"{path}:{line} imports {name}"
        for path, tree in sources("pos_client")
        for name, line, _eager in imports(tree)
        if name.split(".")[0] in OUTER - MAY_IMPORT_LAZILY.get(path, set())
    ]
    assert found == []


def test_the_ui_never_imports_the_composition_root() -> None:
    found = [
        f"{path}:{line} imports {name}"
        for path, tree in sources("ui")
        for name, line, _eager in imports(tree)
        if name == "pos_client.bootstrap" or name.startswith("pos_client.bootstrap.")
    ]
    assert found == []


def test_the_checker_sees_lazy_eager_and_type_checking_imports() -> None:
    tree = ast.parse(
        "import kivy\n"
        "from ui import app\n"
        "if TYPE_CHECKING:\n    import drivers\n"
        "try:\n    import serial\nexcept ImportError:\n    pass\n"
        "def f():\n    import requests\n"
        "class C:\n    import smartcard\n"
    )
    assert sorted((name, eager) for name, _line, eager in imports(tree)) == [
        ("kivy", True),
        ("requests", False),
        ("serial", True),
        ("smartcard", True),
        ("ui", True),
        ("ui.app", True),
    ]


def test_importing_the_core_and_its_command_line_loads_no_outer_part() -> None:
    code = (
        "import sys, pos_client.cli, pos_client.bootstrap, pos_client.checkout;"
        f"outer = {sorted(OUTER)!r};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(outer)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_terminal_on_the_http_backend_never_loads_sqlalchemy() -> None:
    # SQLAlchemy costs ~26 MB resident: only the embedded ledger and the server need it.
    code = (
        "import sys, pos_client.bootstrap, pos_client.backends.http, pos_client.outbox;"
        "print('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_window_options_are_set_before_anything_creates_the_window() -> None:
    # Importing the app's widgets creates Kivy's window; options set after that (fullscreen
    # at the screen's size, no MSAA, Escape) were silently ignored.
    code = (
        "import sys, ui.window;"
        "before = 'kivy.core.window' in sys.modules;"
        "import inspect, pos_client.bootstrap as b;"
        "src = inspect.getsource(b.build_app);"
        "print(before, src.index('configure_kivy(') < src.index('from ui.app import'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KIVY_NO_ARGS": "1"},
    )
    assert result.stdout.strip() == "False True"
