"""A garbled, oversized, symlinked or special terminal token file is refused with one clear
line naming the config key, never a traceback and never read through a link (the real
CLI in a subprocess, on real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def sync(data: Path, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pos_client.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data),
            "sync",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def terminal(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "t1"
    data.mkdir(mode=0o700)
    config = tmp_path / "t1.toml"
    config.write_text('[backend]\nkind = "http"\nurl = "http://127.0.0.1:9"\n')
    return data, config


def secret_elsewhere(tmp_path: Path) -> Path:
    shadow = tmp_path / "shadow"
    shadow.write_text("root-secret-hash-value\n")
    return shadow


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda t, p: t.write_bytes(b"\xff\xfe"), "not ASCII", id="garbled"),
        pytest.param(lambda t, p: t.write_bytes(b"a" * 5000), "at most 512", id="oversized"),
        pytest.param(lambda t, p: t.write_bytes(b"abc\x1bdef"), "printable ASCII", id="escape"),
        pytest.param(lambda t, p: t.symlink_to(secret_elsewhere(p)), "symbolic link", id="symlink"),
        pytest.param(lambda t, p: os.mkfifo(t), "not a regular file", id="fifo"),
    ],
)
def test_a_bad_token_file_is_one_clear_line(
    tmp_path: Path, terminal: tuple[Path, Path], make: object, says: str
) -> None:
    data, config = terminal
    make(data / "terminal.token", tmp_path)  # type: ignore[operator]
    result = sync(data, config)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert says in result.stderr and "backend.token_file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "root-secret" not in result.stderr + result.stdout


def test_a_token_in_the_environment_with_a_newline_is_refused(
    terminal: tuple[Path, Path],
) -> None:
    data, config = terminal
    result = sync(data, config, POS_CLIENT_TOKEN="abc\ndef")
    assert result.returncode != 0 and "POS_CLIENT_TOKEN" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def loose(data: Path) -> list[str]:
    return sorted(
        f"{file.name} {oct(file.stat().st_mode & 0o777)}"
        for file in data.iterdir()
        if file.is_file() and not file.is_symlink() and file.stat().st_mode & 0o077
    )


def test_the_terminals_files_are_made_0600_and_older_loose_ones_tightened_at_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "t1"
    os.umask(0o022)  # the usual umask: a file made without care would be 0644
    assert run_cli(data, "seed-demo").returncode == 0
    assert run_cli(data, "sync").returncode == 0
    assert loose(data) == []  # everything made by the terminal is private
    names = [file.name for file in data.iterdir() if file.is_file()]
    assert "lookup.key" in names and "outbox.sqlite" in names
    for name in (*names, "terminal.token", "terminal.run.lock"):  # as an older release left them
        (data / name).touch()
        (data / name).chmod(0o644)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the terminal's\n")
    elsewhere.chmod(0o644)
    (data / "a-link").symlink_to(elsewhere)
    assert len(loose(data)) == len(set(names) | {"terminal.token", "terminal.run.lock"})
    assert run_cli(data, "queue", "status").returncode == 0
    assert loose(data) == []
    assert elsewhere.stat().st_mode & 0o777 == 0o644  # a link is not followed
