from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.program import load_program
from pos_client.rules import Program
from pos_client.settings import Settings, load_settings

pytest_plugins = ["tests.database_fixtures"]

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"


def preset(name: str) -> Program:
    return load_program(name, CONFIG_DIR)


def make_settings(data_dir: Path, program: str = "category_tiers", **env: str) -> Settings:
    environment = {f"POS_CLIENT__{k.upper()}": v for k, v in env.items()}
    settings = load_settings(None, env=environment, config_dir=CONFIG_DIR)
    return replace(
        settings,
        program=program,
        storage=replace(settings.storage, data_dir=data_dir),
        phone_key_file=data_dir / "phone.key",
    )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    with build_terminal(make_settings(tmp_path)) as built:
        yield built


def damage_stored_entry(outbox_path: Path, key: str) -> None:
    """40 bytes of 0xFF written over one stored sale in the outbox file (checkpointed)."""
    data = bytearray(outbox_path.read_bytes())
    offset = data.index(f'"key":"{key}"'.encode())
    data[offset : offset + 40] = b"\xff" * 40
    outbox_path.write_bytes(bytes(data))


def adopt_program_as_sync_does(terminal: Terminal, source: str) -> None:
    """The store server's programme `source` adopted from a thread of its own, as the sync
    worker does when the server hands out a new version (the UI follows on its clock)."""
    import threading

    from pos_client.program import ProgramDocument

    document = ProgramDocument.of(source)
    worker = threading.Thread(
        target=terminal.adopt_program, args=(document.parse("test"), document.version)
    )
    worker.start()
    worker.join()


def run_cli(data: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`pos-client --data-dir DATA ARGS…` run to its end, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(data), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class HeadlessTerminal:
    """`pos-client ARGS… run --headless` as a child process. A thread of its own reads its
    output; `expect(fragment)` waits for a line holding `fragment`; `stop()` sends SIGTERM
    and waits. `env` is added to this process's environment."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, stderr: int = subprocess.PIPE
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pos_client.cli", *args, "run", "--headless"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout or ():
            self.lines.put(line)

    def expect(self, fragment: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if fragment in line:
                return line
        raise AssertionError(f"terminal never printed {fragment!r}")

    def stop(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
