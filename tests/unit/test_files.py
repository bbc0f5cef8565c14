"""Small private files written whole or not at all (write_private_atomically)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pos_client.files import write_private_atomically


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_target_gets_the_content_and_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_private_atomically(target, '{"mode": "kiosk"}')
    assert target.read_text(encoding="utf-8") == '{"mode": "kiosk"}'
    assert mode_of(target) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_bytes_replace_an_existing_wider_file_and_the_mode_is_exact(tmp_path: Path) -> None:
    target = tmp_path / "count"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old_umask = os.umask(0o077)
    try:
        write_private_atomically(target, b"\x00\x01new", mode=0o640, durable=False)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"\x00\x01new"
    assert mode_of(target) == 0o640
    assert os.listdir(tmp_path) == ["count"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")

    def refuse(_src: object, _dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_private_atomically(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_fsync_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")

    def broken(_descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output"):
        write_private_atomically(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_leftover_temporary_name_is_not_reused(tmp_path: Path) -> None:
    target = tmp_path / "sim.port"
    stale = tmp_path / f"sim.port.{os.getpid()}.tmp"
    stale.write_text("stale", encoding="utf-8")
    write_private_atomically(target, "4242\n")
    assert target.read_text(encoding="utf-8") == "4242\n"
    assert stale.read_text(encoding="utf-8") == "stale"


def test_a_missing_folder_is_an_error_not_a_new_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_private_atomically(tmp_path / "absent" / "state.json", "x")
    assert not (tmp_path / "absent").exists()
