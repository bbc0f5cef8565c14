from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.program import load_program
from pos_client.rules import Program
from pos_client.settings import Settings, load_settings

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
