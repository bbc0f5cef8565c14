"""An uploaded programme is checked as a programme file is (the same messages), bounded
first; what a new version changes is told in plain English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loyalty_server.program_versions import (
    ProgramSourceError,
    check_program_source,
    describe_changes,
)
from pos_client.configfile import ConfigError
from pos_client.program import MAX_PROGRAM_BYTES, load_program, program_version
from pos_client.rules import Program
from tests.conftest import CONFIG_DIR

PRESET = (CONFIG_DIR / "programs" / "category_tiers.toml").read_text()


def edited(*changes: tuple[str, str]) -> str:
    text = PRESET
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def parsed(text: str) -> Program:
    return check_program_source(text, "upload.toml")[1]


def cli_message(tmp_path: Path, raw: bytes) -> str:
    """What the CLI's check of a programme file says of these bytes."""
    path = tmp_path / "upload.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as refused:
        load_program(str(path), CONFIG_DIR)
    return str(refused.value).replace(str(path), "upload.toml")


def test_a_valid_upload_is_the_document_and_programme_of_the_file() -> None:
    document, program = check_program_source(PRESET.encode(), "upload.toml")
    assert document.version == program_version(PRESET.encode())
    assert document.source == PRESET
    assert program == load_program("category_tiers", CONFIG_DIR)
    assert check_program_source(PRESET, "upload.toml")[0] == document  # str as bytes


@pytest.mark.parametrize(
    "raw",
    [
        b"[earn\nrate = 1",  # not TOML
        b'id = "x"\n',  # TOML, no programme
        PRESET.replace("\nrate = 1\n", '\nrate = "lots"\n').encode(),
        PRESET.replace("threshold = 0", "threshold = -5").encode(),
    ],
    ids=["not TOML", "no programme", "rate no number", "negative threshold"],
)
def test_an_invalid_upload_is_refused_with_the_clis_message(tmp_path: Path, raw: bytes) -> None:
    with pytest.raises(ProgramSourceError) as refused:
        check_program_source(raw, "upload.toml")
    assert str(refused.value) == cli_message(tmp_path, raw)
    assert isinstance(refused.value, ConfigError)


def test_a_file_not_utf8_is_refused_with_the_clis_message(tmp_path: Path) -> None:
    raw = PRESET.encode() + b"\n# \xff\xfe\n"
    with pytest.raises(ProgramSourceError) as refused:
        check_program_source(raw, "upload.toml")
    assert str(refused.value) == cli_message(tmp_path, raw)
    assert "not UTF-8" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"#" * (MAX_PROGRAM_BYTES + 1), "larger than 262144 bytes (256 KiB)"),
        (b"\x00" * 10_000_000, "larger than"),
        (PRESET.encode() + b"\n# \x00\n", "control character (U+0000)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text (byte 0 cannot be read)"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00", "control character (U+0001)"),
        (PRESET.encode().replace(b"\n", b"\n\x1b[31m", 1), "line 2: a control character"),
        (b"\x7f", "control character (U+007F)"),
        ("id = '\udc80'", "not UTF-8"),
    ],
    ids=[
        "over 256 KiB",
        "10 MB of NULs",
        "NUL byte",
        "PNG",
        "GIF",
        "ANSI escape",
        "DEL",
        "surrogate",
    ],
)
def test_hostile_uploads_are_refused_before_parsing(raw: bytes | str, says: str) -> None:
    with pytest.raises(ProgramSourceError, match=re.escape(says)):
        check_program_source(raw, "upload.toml")


def test_tab_newline_and_carriage_return_are_text() -> None:
    text = PRESET.replace("\n", "\r\n").replace("rate = 1\r\n", "rate = 1\t# base\r\n", 1)
    assert parsed(text).earn.rate == parsed(PRESET).earn.rate


# ------------------------------------------------------------------ describe_changes


def test_identical_programmes_have_no_change() -> None:
    assert describe_changes(parsed(PRESET), parsed(PRESET)) == ["No change to the rules."]


def test_rates_per_category_and_base_are_told() -> None:
    new = edited(
        ("\nrate = 1\n", "\nrate = 2\n"),
        ("cosmetics = 2\n", "cosmetics = 3\n"),
        ("fragrance = 2\n", ""),
    )
    rows = describe_changes(parsed(PRESET), parsed(new))
    assert rows == [
        "Earning: 2 points per 1 USD spent (was 1 point per 1 USD spent).",
        "Earning on Cosmetics: 2 points becomes 3 points.",
        "Earning on Fragrance: back to the base rate (was 2 points).",
    ]


def test_tiers_added_removed_and_changed_are_told() -> None:
    old, new = parsed(PRESET), parsed(edited(("threshold = 3500", "threshold = 3000")))
    assert describe_changes(old, new) == ["Tier Platinum (platinum): reached at 3,000 (was 3,500)."]
    more = PRESET + '\n[[tiers.levels]]\nid = "diamond"\nname = "Diamond"\nthreshold = 9000\n'
    rows = describe_changes(old, parsed(more))
    assert rows == ["Tier added: Diamond (diamond): 9,000 USD spent."]
    assert describe_changes(parsed(more), old) == ["Tier removed: Diamond (diamond)."]
    doubled = parsed(edited(("rate_floor = 4", "multiplier = 2\nrate_floor = 4")))
    assert describe_changes(old, doubled) == ["Tier Platinum (platinum): earns x2 (was x1)."]
    perks = parsed(edited(('"free shipping"', '"free gift wrap"')))
    (row,) = describe_changes(old, perks)
    assert row.startswith("Tier Platinum (platinum) becomes: Platinum (platinum): 3,500 USD")
    assert row.endswith("perks: 4 points per dollar, free gift wrap.")


def test_rewards_added_removed_and_repriced_are_told() -> None:
    old = parsed(PRESET)
    cheaper = parsed(edited(("cost = 5000", "cost = 4000")))
    (reward,) = old.catalog[:1]
    assert describe_changes(old, cheaper) == [
        f"Reward {reward.name} ({reward.id}): costs 4,000 points (was 5,000 points)."
    ]
    extra = parsed(PRESET + '\n[[catalog]]\nid = "mini"\nname = "Mini lipstick"\ncost = 800\n')
    assert describe_changes(old, extra) == ["Reward added: Mini lipstick (mini) for 800 points."]
    assert describe_changes(extra, old) == ["Reward removed: Mini lipstick (mini)."]


def test_expiry_birthday_and_points_as_money_are_told() -> None:
    old = load_program("category_tiers", CONFIG_DIR)
    other = load_program("stars", CONFIG_DIR)
    rows = describe_changes(old, other)
    assert any(row.startswith("Programme: Beauty Points (category_tiers) becomes") for row in rows)
    assert any(row.startswith("Expiry:") or "Expiry:" in row for row in rows) == (
        old.expiry != other.expiry
    )
    assert any("Birthday" in row for row in rows) == (
        (old.birthday, old.birthday_reward) != (other.birthday, other.birthday_reward)
    )
    money = (old.points_as_money, other.points_as_money)
    assert any("Points as money" in row for row in rows) == (money[0] != money[1])
    assert all(row and row[-1] in ".)" for row in rows), rows


def test_expiry_change_alone() -> None:
    old = parsed(PRESET)
    if "[expiry]" in PRESET:
        pytest.skip("the preset already expires")
    new = parsed(PRESET + "\n[expiry]\nmonths = 12\n")
    assert describe_changes(old, new) == [
        "Expiry: was points never expire; now points expire 12 months after they are earned."
    ]


def test_every_other_rule_is_told_as_no_longer_and_now() -> None:
    old = parsed(PRESET)
    new = parsed(edited(("[earn]\n", "[earn]\nmin_amount = 5\n")))
    assert describe_changes(old, new) == ["Now: A purchase under 5 USD earns nothing."]
