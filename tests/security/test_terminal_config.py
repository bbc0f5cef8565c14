"""Config values that would break every sale are refused at load, by the real command line,
with one clear line naming the key (never a traceback, never a started terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("POS_CLIENT__TERMINAL__ID", "T1\x01", "'terminal.id'"),
        ("POS_CLIENT__TERMINAL__ID", "T" * 65, "at most 64 characters"),
        ("POS_CLIENT__TERMINAL__ID", "   ", "'terminal.id'"),
        ("POS_CLIENT__STORE__TIMEZONE", "Mars/Olympus", "not a known time zone"),
        ("POS_CLIENT__PRIVACY__OFFLINE_LOOKUP_DAYS", "800000", "at most 3650"),
        ("POS_CLIENT__STORE__TIMEZONE", "../../etc/passwd", "not a known time zone"),
        ("POS_CLIENT__ADMIN__PIN", "\uff12\uff14\uff16\uff18", "'admin.pin'"),  # full-width
        ("POS_CLIENT__ADMIN__PIN", "\u0662\u0664\u0666\u0668", "'admin.pin'"),  # Arabic-Indic
    ],
)
def test_config_that_breaks_every_sale_is_refused_at_load(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(tmp_path / "d"), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, variable: value},
        timeout=60,
    )
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "configuration error" in lines[0] and message in lines[0]
    assert not (tmp_path / "d" / "outbox.sqlite").exists()


def test_a_terminal_id_with_a_nul_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[terminal]\nid = "T1\\u0000"\n')
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--config", str(config), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "'terminal.id'" in result.stderr
    assert str(config) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["doctor", "run"])
def test_a_config_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path, command: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(b"\xff\xfe garbage\x00")
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--config", str(config), command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DISPLAY": ""},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "configuration error" in lines[0] and "not UTF-8" in lines[0]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://192.0.2.2:18181", True),
        ("http://store.example:8080", True),
        ("http://127.0.0.1:18080", False),
        ("http://localhost:18080", False),
        ("https://store.example:8443", False),
    ],
)
def test_plain_http_goes_only_to_this_machine(tmp_path: Path, url: str, refused: bool) -> None:
    """The token and phone numbers never cross the network in clear."""
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(tmp_path / "d"), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POS_CLIENT__BACKEND__KIND": "http", "POS_CLIENT__BACKEND__URL": url},
    )
    said = "plain http:// only to this machine" in result.stderr
    assert said == refused, result.stderr
    if refused:
        assert result.returncode == 2 and "'backend.url'" in result.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
@pytest.mark.parametrize("command", [["doctor"], ["run", "--headless"]])
def test_a_reader_port_out_of_range_is_refused_at_load_naming_the_key(
    tmp_path: Path, port: str, command: list[str]
) -> None:
    config = tmp_path / "t1.toml"
    config.write_text(f'[[readers]]\nkind = "simulated"\nname = "sim"\nport = {port}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pos_client.cli",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "d"),
            *command,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "POS_CLIENT__ADMIN__PIN": "97531"},
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "'readers[0].port'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
