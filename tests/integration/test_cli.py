"""`pos-client` as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pos_client.demo import DEMO_MEMBERS
from tests.conftest import REPO

ANNA = DEMO_MEMBERS[0]


def run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(tmp_path / "data"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_headless_demo_json_reports_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "demo", "--headless", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["lost"] == 0 and summary["duplicated"] == 0
    assert summary["sales"] >= 7 and summary["synced"] == summary["sales"]
    assert summary["pending"] == 0 and summary["balances_consistent"] is True
    assert any(step.get("offline") for step in summary["steps"])
    # A secure card's clone is refused (the genuine card's message, replayed).
    clone = next(step for step in summary["steps"] if step["step"] == "secure card clone")
    assert clone == {"step": "secure card clone", "refused": True, "code": "card_replayed"}


def test_headless_demo_transcript_is_readable(tmp_path: Path) -> None:
    result = run(tmp_path, "demo", "--headless")
    assert "The network goes down" in result.stdout
    assert "OFFLINE, pending" in result.stdout
    assert "0 lost, 0 duplicated" in result.stdout
    assert "genuine card: Anna K. identified, may spend" in result.stdout
    assert "clone: refused (card_replayed)" in result.stdout
    assert ANNA.phone[2:] not in result.stdout  # phones are never printed in clear


def test_identify_earn_queue_and_sync(tmp_path: Path) -> None:
    run(tmp_path, "seed-demo")
    shown = json.loads(run(tmp_path, "identify", ANNA.card_number, "--json").stdout)
    assert shown["kind"] == "card_number" and shown["member"]["display_name"] == "Anna K."
    earned = json.loads(
        run(
            tmp_path,
            "earn",
            "--member",
            ANNA.card_number,
            "--line",
            "10.00:cosmetics",
            "--line",
            "5.00",
            "--no-sync",
            "--json",
        ).stdout
    )
    assert earned["state"] == "pending"
    status = json.loads(run(tmp_path, "queue", "status", "--json").stdout)
    assert status["pending"] == 1
    synced = json.loads(run(tmp_path, "sync", "--json").stdout)
    assert (synced["acked"], synced["pending"]) == (1, 0)
    after = json.loads(run(tmp_path, "identify", ANNA.card_number, "--json").stdout)
    assert after["member"]["balance"] == shown["member"]["balance"] + earned["expected_points"]


def test_enroll_then_find_by_phone(tmp_path: Path) -> None:
    refused = run(
        tmp_path, "enroll", "--phone", "+30 691 000 0001", "--first-name", "Nikos", check=False
    )
    assert refused.returncode == 1 and "accept" in refused.stderr
    enrolled = json.loads(
        run(
            tmp_path,
            "enroll",
            "--phone",
            "+30 691 000 0001",
            "--first-name",
            "Nikos",
            "--last-name",
            "P",
            "--consent",
            "--json",
        ).stdout
    )
    found = json.loads(run(tmp_path, "identify", "+30 691 000 0001", "--json").stdout)
    assert found["member"]["member_id"] == enrolled["member_id"]


def test_wellness_action_and_blocks(tmp_path: Path) -> None:
    env = {"POS_CLIENT__PROGRAM__PRESET": "wellness_blocks"}
    run(tmp_path, "seed-demo", env=env)
    run(tmp_path, "action", "--member", ANNA.card_number, "--action", "vaccination", env=env)
    balance = json.loads(run(tmp_path, "identify", ANNA.card_number, "--json", env=env).stdout)[
        "member"
    ]["balance"]
    assert balance >= 5000
    sale = json.loads(
        run(
            tmp_path,
            "earn",
            "--member",
            ANNA.card_number,
            "--amount",
            "12.00",
            "--all-blocks",
            "--json",
            env=env,
        ).stdout
    )
    assert sale["redeemed_points"] == 10000 if balance >= 10000 else 5000
    assert sale["result"]["points_earned"] == 20 if balance >= 10000 else 70


def test_unknown_card_and_bad_input_are_clear(tmp_path: Path) -> None:
    run(tmp_path, "seed-demo")
    missing = run(tmp_path, "earn", "--member", "2900000000995", "--amount", "5", check=False)
    assert missing.returncode == 1 and "no member" in missing.stderr
    wrong = run(tmp_path, "identify", "4006381333932", check=False)
    assert wrong.returncode == 1
    assert "check digit is wrong" in wrong.stderr and "Traceback" not in wrong.stderr


def test_malformed_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[sync]\nbatch_size = "lots"\n')
    result = run(tmp_path, "--config", str(config), "queue", "status", check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'sync.batch_size'" in lines[0] and str(config) in lines[0]


def test_corrupt_outbox_is_reported_and_quarantined(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "outbox.sqlite").write_bytes(b"garbage" * 1000)
    result = run(tmp_path, "queue", "status", check=False)
    assert result.returncode == 1 and "damaged" in result.stderr
    moved = run(tmp_path, "queue", "quarantine")
    assert "kept aside" in moved.stdout
    assert list(data.glob("outbox.sqlite.corrupt-*"))
    assert run(tmp_path, "queue", "status").returncode == 0


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_card_render_ean13_is_decodable(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"card{suffix}"
    run(tmp_path, "card", "render", "400638133393", "--format", "ean13", "--out", str(out))
    assert out.exists()
    if suffix == ".svg":
        assert "<svg" in out.read_text()
        return
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(out))
    assert [(d.text, d.format.name) for d in decoded] == [("4006381333931", "EAN13")]


def test_card_render_code128_and_refusals(tmp_path: Path) -> None:
    out = tmp_path / "c128.png"
    run(tmp_path, "card", "render", "MEMBER-0042", "--format", "code128", "--out", str(out))
    import zxingcpp
    from PIL import Image

    assert [d.text for d in zxingcpp.read_barcodes(Image.open(out))] == ["MEMBER-0042"]
    bad = run(
        tmp_path,
        "card",
        "render",
        "4006381333932",
        "--format",
        "ean13",
        "--out",
        str(tmp_path / "x.png"),
        check=False,
    )
    assert bad.returncode == 1 and "check digit is wrong" in bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_kiosk_with_the_default_pin_refuses_to_start_and_doctor_says_bad(
    tmp_path: Path,
) -> None:
    kiosk = ("--config", str(REPO / "config" / "examples" / "kiosk.toml"))
    no_pin = {k: v for k, v in os.environ.items() if k != "POS_CLIENT__ADMIN__PIN"}

    def pos_client(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pos_client.cli", *kiosk, "--data-dir"]
        return subprocess.run(
            [*command, str(tmp_path / "data"), *args],
            cwd=REPO, capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip

    def staff_pin_bad(result: subprocess.CompletedProcess[str]) -> bool:
        return any(line.startswith("BAD staff PIN") for line in result.stdout.splitlines())

    started = pos_client("run", "--headless", env=no_pin)
    assert started.returncode != 0
    assert "default staff PIN" in started.stderr and "Traceback" not in started.stderr
    doctor = pos_client("doctor", env=no_pin)
    assert doctor.returncode != 0 and staff_pin_bad(doctor)
    assert not staff_pin_bad(
        pos_client("doctor", env={**no_pin, "POS_CLIENT__ADMIN__PIN": "97531"})
    )


def test_seed_demo_prints_the_demo_phones_a_person_can_type(tmp_path: Path) -> None:
    shown = run(tmp_path, "seed-demo").stdout
    for member in DEMO_MEMBERS:
        assert member.phone in shown and member.card_number in shown


def test_doctor_says_pcsc_is_not_used_when_no_reader_needs_it(tmp_path: Path) -> None:
    result = run(tmp_path, "doctor", check=False)
    pcsc = [line for line in result.stdout.splitlines() if " pc/sc:" in line]
    assert len(pcsc) == 1 and pcsc[0].startswith("ok")
    if "unavailable" in pcsc[0] or "no reader" in pcsc[0] or "not installed" in pcsc[0]:
        assert "not used" in pcsc[0]


def test_an_amount_the_server_would_refuse_is_refused_before_it_is_recorded(
    tmp_path: Path,
) -> None:
    run(tmp_path, "seed-demo")
    for amount, says in (("10.555", "decimals"), ("1e3", "not an amount"), ("12345678", "digits")):
        refused = run(
            tmp_path, "earn", "--member", ANNA.card_number, "--amount", amount, check=False
        )
        assert refused.returncode != 0 and says in refused.stderr, refused.stderr
    queue = run(tmp_path, "queue", "status").stdout
    assert queue.startswith("pending 0,"), queue


def test_a_name_without_letters_is_refused_and_stray_punctuation_trimmed(tmp_path: Path) -> None:
    def enroll(phone: str, first_name: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            tmp_path,
            "enroll",
            "--phone",
            phone,
            "--first-name",
            first_name,
            "--consent",
            "--json",
            check=check,
        )

    refused = enroll("+1 650 253 0091", "-' ", check=False)
    assert refused.returncode == 1 and "name" in refused.stderr
    assert run(tmp_path, "queue", "status").stdout.startswith("pending 0,")
    joined = json.loads(enroll("+1 650 253 0092", "Dana'").stdout)
    shown = json.loads(run(tmp_path, "identify", joined["card_number"], "--json").stdout)
    assert shown["member"]["display_name"] == "Dana"


def test_a_sale_above_the_limit_is_refused_before_it_is_recorded(tmp_path: Path) -> None:
    run(tmp_path, "seed-demo")
    lines = ["--line", "60000.00:cosmetics", "--line", "40000.01:cosmetics"]
    refused = run(tmp_path, "earn", "--member", ANNA.card_number, *lines, check=False)
    assert refused.returncode == 1 and "at most 100000" in refused.stderr, refused.stderr
    assert run(tmp_path, "queue", "status").stdout.startswith("pending 0,")
    lines[-1] = "40000.00:cosmetics"
    run(tmp_path, "earn", "--member", ANNA.card_number, *lines)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param("10:\x1b[31m", "category: text of at most 64 printable characters", id="esc"),
        pytest.param("10:cosmetics:" + "S" * 300, "sku: text of at most 64", id="long-sku"),
        pytest.param("10:\u202ebeer", "lines[0].category: control, invisible, bidi", id="bidi"),
        pytest.param("10:cosmetics:SK\u200bU", "lines[0].sku: control, invisible", id="zwsp"),
    ],
)
def test_a_sale_line_the_server_would_refuse_is_refused_before_it_is_recorded(
    tmp_path: Path, line: str, says: str
) -> None:
    run(tmp_path, "seed-demo")
    refused = run(tmp_path, "earn", "--member", ANNA.card_number, "--line", line, check=False)
    assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and "\x1b" not in refused.stderr
    assert "\u202e" not in refused.stderr
    assert run(tmp_path, "queue", "status").stdout.startswith("pending 0,")


def test_an_offline_enrollment_with_a_name_too_long_is_refused_and_nothing_recorded(
    tmp_path: Path,
) -> None:
    config = tmp_path / "t1.toml"
    config.write_text('[backend]\nkind = "http"\nurl = "http://127.0.0.1:9"\n')  # offline
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "data" / "terminal.token").write_text("a-terminal-token-of-some-length\n")
    refused = run(
        tmp_path,
        "--config",
        str(config),
        "enroll",
        "--phone",
        "+1 650 253 0026",
        "--first-name",
        "A" * 200,
        "--consent",
        check=False,
    )
    assert refused.returncode == 1 and "name: 1 to 64 characters" in refused.stderr, refused.stderr
    assert "card" not in refused.stdout and "Traceback" not in refused.stderr
    status = run(tmp_path, "--config", str(config), "queue", "status", check=False)
    assert status.stdout.startswith("pending 0,"), status.stdout + status.stderr


def test_a_lost_card_is_blocked_from_the_command_line_and_finds_no_one(tmp_path: Path) -> None:
    run(tmp_path, "seed-demo")
    assert json.loads(run(tmp_path, "identify", ANNA.card_uid or "", "--json").stdout)["member"]
    blocked = run(tmp_path, "card", "block", ANNA.card_number)
    assert "blocked 1 card(s)" in blocked.stdout and (ANNA.card_uid or "") not in blocked.stdout
    gone = json.loads(run(tmp_path, "identify", ANNA.card_uid or "", "--json").stdout)
    assert gone["member"] is None
    again = run(tmp_path, "card", "block", ANNA.card_number, check=False)
    assert again.returncode == 1 and "no card" in again.stderr
    bad = run(tmp_path, "card", "block", "nobody", check=False)
    assert bad.returncode == 2 and "no member" in bad.stderr


def test_a_sale_earns_by_the_units_of_its_lines_under_an_airline_programme(
    tmp_path: Path,
) -> None:
    airline = {"POS_CLIENT__PROGRAM__PRESET": "airline_miles"}
    shown = run(tmp_path, "program", "show", env=airline).stdout
    assert "Business: 2 miles per mile flown." in shown
    assert "35,000 miles flown or 30 segments" in shown
    run(tmp_path, "seed-demo", env=airline)
    earned = json.loads(
        run(
            tmp_path,
            *("earn", "--member", ANNA.card_number, "--amount", "450.00"),
            *("--category", "business", "--units", "3858", "--no-sync", "--json"),
            env=airline,
        ).stdout
    )
    assert earned["expected_points"] == 7716
    hop = json.loads(
        run(
            tmp_path,
            *("earn", "--member", ANNA.card_number, "--line", "90.00@90", "--line", "10.00"),
            *("--no-sync", "--json"),
            env=airline,
        ).stdout
    )
    assert hop["expected_points"] == 125  # the minimum a segment; the fare earns nothing
    too_far = run(
        tmp_path,
        *("earn", "--member", ANNA.card_number, "--line", "90.00@99999", "--no-sync"),
        env=airline,
        check=False,
    )
    assert too_far.returncode == 1 and "over the programme's 12000" in too_far.stderr
    assert "Traceback" not in too_far.stderr
    for bad in (("--amount", "9", "--units", "1e3"), ("--line", "9@")):
        refused = run(
            tmp_path, "earn", "--member", ANNA.card_number, *bad, env=airline, check=False
        )
        assert refused.returncode == 2 and "units" in refused.stderr.lower()
    status = json.loads(run(tmp_path, "queue", "status", "--json", env=airline).stdout)
    assert status["pending"] == 2  # the refused sales recorded nothing


def test_a_coalition_till_earns_at_its_merchants_rates_and_a_wrong_merchant_is_refused(
    tmp_path: Path,
) -> None:
    coalition = {"POS_CLIENT__PROGRAM__PRESET": "coalition_points"}
    shown = run(tmp_path, "program", "show", env=coalition).stdout
    assert "RoadStar fuel stations (fuel): earns 0.5 points per 1 EUR, 2 on Station shop" in shown
    assert "loyalty-server settlement" in shown
    fuel = {**coalition, "POS_CLIENT__TERMINAL__MERCHANT": "fuel"}
    run(tmp_path, "seed-demo", env=fuel)
    earned = json.loads(
        run(
            tmp_path,
            *("earn", "--member", ANNA.card_number, "--line", "10.00:shop", "--line", "60.00:fuel"),
            *("--no-sync", "--json"),
            env=fuel,
        ).stdout
    )
    # Anna joined a month ago: the welcome offer's 2.00 off is spread over the two lines.
    assert earned["expected_points"] == 48  # (10.00 x 2 + 60.00 x 0.5) x 68/70, floored
    wrong = run(
        tmp_path,
        *("earn", "--member", ANNA.card_number, "--amount", "10.00", "--no-sync"),
        env={**coalition, "POS_CLIENT__TERMINAL__MERCHANT": "bakery"},
        check=False,
    )
    assert wrong.returncode == 2 and "terminal.merchant" in wrong.stderr
    assert "grocer, fuel, pharmacy" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.parametrize(
    ("preset", "sentence"),
    [
        ("airline_miles", "  Business: 2 miles per mile flown."),
        ("hotel_nights", "Every 5th night free: every 5th night over the membership is free"),
        ("coalition_points", "  Vita pharmacies (pharmacy): earns 2 points per 1 EUR"),
    ],
)
def test_program_show_explains_each_new_preset_in_words(
    tmp_path: Path, preset: str, sentence: str
) -> None:
    shown = run(tmp_path, "program", "show", "--preset", preset)
    assert sentence in shown.stdout and shown.stderr == ""
