"""The simulated reader: socket, scenarios, and the same path to the core as hardware."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drivers.simulated import SimulatedReader, load_scenario, send_command
from pos_client.bootstrap import Terminal, build_terminal
from pos_client.configfile import ConfigError
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.events import NetworkCommand, ScanEvent
from pos_client.outbox import Outbox
from pos_client.scanning import IdentificationFailed, MemberIdentified, ScanRouter
from tests.conftest import CONFIG_DIR, REPO, HeadlessTerminal, make_settings, run_cli

ANNA = DEMO_MEMBERS[0]


class Collect:
    def __init__(self) -> None:
        self.items: queue.Queue[Any] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.items.put(event)

    def take(self, kind: type, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            event = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(event, kind):
                return event


def test_socket_commands_become_scan_events() -> None:
    sink = Collect()
    with SimulatedReader("sim", {"port": 0}, sink) as reader:
        assert send_command(reader.port, {"cmd": "tap", "value": "04A224C25E6C80"}) == {"ok": True}
        event = sink.take(ScanEvent)
        assert (event.source, event.kind, event.value) == ("sim:sim", "nfc", "04A224C25E6C80")
        url = "https://l.example/c?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
        assert send_command(reader.port, {"cmd": "sun", "value": url}) == {"ok": True}
        event = sink.take(ScanEvent)
        assert (event.kind, event.value) == ("sun", url)  # a secure card's message
        send_command(reader.port, {"cmd": "offline"})
        assert sink.take(NetworkCommand).online is False
        reply = send_command(reader.port, {"cmd": "fly"})
        assert not reply["ok"] and "unknown command" in reply["error"]
        assert "needs a value" in send_command(reader.port, {"cmd": "scan"})["error"]
        with socket.create_connection(("127.0.0.1", reader.port)) as raw:
            raw.sendall(b"not json\n")
            assert "bad command" in json.loads(raw.makefile().readline())["error"]


def test_latency_and_wait_take_bounded_numbers_and_bad_ones_get_a_reply() -> None:
    sink = Collect()
    with SimulatedReader("sim", {"port": 0}, sink) as reader:
        assert send_command(reader.port, {"cmd": "latency", "seconds": 1.5}) == {"ok": True}
        command = sink.take(NetworkCommand)
        assert (command.online, command.latency_s) == (None, 1.5)
        for bad in (None, "nan", "soon", True, [1], -1, 31, 1e308):
            reply = send_command(reader.port, {"cmd": "latency", "seconds": bad})
            assert not reply["ok"] and "from 0 to 30" in reply["error"], bad
        reply = send_command(reader.port, {"cmd": "wait", "seconds": None})
        assert not reply["ok"] and "from 0 to 600" in reply["error"]
        assert send_command(reader.port, {"cmd": "status"})["ok"]  # the connection stays


def test_deep_or_over_long_commands_get_one_refusal_and_the_connection_stays() -> None:
    sink = Collect()
    with SimulatedReader("sim", {"port": 0}, sink) as reader:
        with socket.create_connection(("127.0.0.1", reader.port), timeout=10) as raw:
            replies = raw.makefile("rb")
            raw.sendall(b"[" * 3000 + b"\n")
            assert "nested too deeply" in json.loads(replies.readline())["error"]
            raw.sendall(b'{"cmd": "scan", "value": "' + b"9" * 50_000 + b'"}\n')
            assert "over 4096 bytes" in json.loads(replies.readline())["error"]
            raw.sendall(b'{"cmd": "status"}\n')  # the next reply answers the next command
            assert json.loads(replies.readline())["ok"] is True
        assert sink.items.empty() or not any(
            isinstance(event, ScanEvent) for event in list(sink.items.queue)
        )


def test_the_simulated_reader_listens_on_loopback_only() -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        SimulatedReader("sim", {"host": "0.0.0.0"}, lambda _e: None)


def test_the_shipped_scenario_plays_through(tmp_path: Path) -> None:
    sink = Collect()
    steps = load_scenario(CONFIG_DIR / "scenarios" / "field-test.toml")
    fast = [s for s in steps if s["cmd"] != "wait"]
    scenario = tmp_path / "fast.toml"
    scenario.write_text(
        "".join(
            f'[[steps]]\ndo = "{s["cmd"]}"\n'
            + (f"value = {json.dumps(s['value'])}\n" if "value" in s else "")
            for s in fast
        )
    )
    with SimulatedReader("sim", {"scenario": str(scenario), "autoplay": True}, sink):
        kinds = []
        for _ in fast:
            event = sink.take((ScanEvent, NetworkCommand))  # type: ignore[arg-type]
            kinds.append(event.kind if isinstance(event, ScanEvent) else f"net:{event.online}")
    assert kinds == [
        "nfc",
        "removed",
        "barcode",
        "phone",
        "barcode",
        "error",
        "net:False",
        "nfc",
        "net:True",
    ]


def test_a_bad_scenario_names_the_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[steps]]\ndo = "wait"\nseconds = "soon"\n')
    with pytest.raises(ConfigError, match=r"steps\[0\].seconds"):
        load_scenario(bad)


def test_simulated_and_hardware_events_reach_the_same_member(terminal: Terminal) -> None:
    assert terminal.ledger is not None
    seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    router = ScanRouter(terminal.checkout, terminal.bus)
    from_pcsc = router.route(ScanEvent("pcsc:ACS ACR122U 00 00", "nfc", "04A224C25E6C80"))
    from_sim = router.route(ScanEvent("sim:sim", "nfc", "04:a2:24:c2:5e:6c:80"))
    from_serial = router.route(ScanEvent("serial:desk", "barcode", "]E0" + ANNA.card_number))
    assert isinstance(from_pcsc, MemberIdentified)
    assert isinstance(from_sim, MemberIdentified) and isinstance(from_serial, MemberIdentified)
    views = {replace(e.session.view, as_of=None) for e in (from_pcsc, from_sim, from_serial)}  # type: ignore[arg-type]
    assert len(views) == 1
    misread = router.route(ScanEvent("serial:desk", "barcode", "]E02900000000019"))
    assert isinstance(misread, IdentificationFailed) and misread.reason == "invalid"
    stranger = router.route(ScanEvent("sim:sim", "phone", "+1 650 253 9999"))
    assert isinstance(stranger, IdentificationFailed) and stranger.can_enroll


def test_pos_client_sim_drives_a_running_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "seed-demo").returncode == 0
    terminal = HeadlessTerminal(
        "--data-dir", str(data), env={"POS_CLIENT__SYNC__INTERVAL_S": "0.2"}
    )
    expect = terminal.expect
    try:
        expect("running")
        assert run_cli(data, "sim", "tap", ANNA.card_uid or "").returncode == 0
        assert "via sim:sim" in expect("member Anna K.")
        assert run_cli(data, "sim", "scan", "]E0" + DEMO_MEMBERS[1].card_number).returncode == 0
        expect("member Bob S.")
        assert run_cli(data, "sim", "phone", "+7 912 345-67-89").returncode == 0
        expect("member Anna K.")
        assert run_cli(data, "sim", "scan", "]E02900000000019").returncode == 0
        assert "check digit" in expect("not identified (invalid)")
        assert run_cli(data, "sim", "offline").returncode == 0
        expect("sync OFFLINE")
        assert run_cli(data, "sim", "tap", ANNA.card_uid or "").returncode == 0
        assert "(offline)" in expect("member Anna K.")
        assert run_cli(data, "sim", "online").returncode == 0
        expect("sync online")
        bad = run_cli(data, "sim", "play", str(tmp_path / "missing.toml"))
        assert bad.returncode == 1 and "file not found" in bad.stderr
    finally:
        returncode = terminal.stop(10)
    assert returncode == 0
    assert not (data / "sim.port").exists()
    stranger = run_cli(data, "sim", "tap", "04112233")
    assert stranger.returncode == 2 and "no running terminal" in stranger.stderr


def test_doctor_reports_each_problem_on_its_own_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "desk.toml"
    config.write_text(
        '[[readers]]\nkind = "serial"\nname = "desk"\nport = "/dev/does-not-exist"\n'
        '[[readers]]\nkind = "simulated"\nname = "sim"\n'
    )
    data.mkdir()
    (data / "outbox.sqlite").write_bytes(b"garbage" * 500)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pos_client.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data),
            "doctor",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    bad = [line for line in result.stdout.splitlines() if line.startswith("BAD")]
    assert any("outbox" in line and "damaged" in line for line in bad)
    assert any("reader desk" in line and "does-not-exist" in line for line in bad)
    assert any(line.startswith("ok  reader sim") for line in result.stdout.splitlines())
    assert "2 problem(s)" in result.stdout


def test_a_scenario_that_plays_itself_is_refused_and_the_connection_stays(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "loop.toml"
    scenario.write_text(
        f'[[steps]]\ndo = "tap"\nvalue = "04A1"\n[[steps]]\ndo = "play"\nvalue = "{scenario}"\n'
    )
    sink = Collect()
    with (
        SimulatedReader("sim", {"port": 0}, sink) as reader,
        socket.create_connection(("127.0.0.1", reader.port), timeout=10) as raw,
    ):
        replies = raw.makefile("rb")
        raw.sendall(json.dumps({"cmd": "play", "value": str(scenario)}).encode() + b"\n")
        reply = json.loads(replies.readline())
        assert not reply["ok"] and "cannot play another scenario" in reply["error"]
        for bad in (
            b"[1]\n",
            b'{"cmd": ["tap"]}\n',
            b'{"cmd": "play", "value": "/"}\n',
            b"\xff\xfe\n",
            b'{"cmd": "wait", "seconds": null}\n',
        ):
            raw.sendall(bad)
            answer = json.loads(replies.readline())
            assert answer["ok"] is False and answer["error"], bad
        raw.sendall(b'{"cmd": "status"}\n')  # the connection stays
        assert json.loads(replies.readline())["ok"] is True
    assert not any(isinstance(e, ScanEvent) for e in list(sink.items.queue))


def test_an_autoplayed_scenario_that_plays_itself_ends(tmp_path: Path) -> None:
    scenario = tmp_path / "self.toml"
    scenario.write_text(f'[[steps]]\ndo = "play"\nvalue = "{scenario}"\n')
    import threading

    crashed: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)
    try:
        sink = Collect()
        config = {"port": 0, "scenario": str(scenario), "autoplay": True}
        with SimulatedReader("sim", config, sink):
            time.sleep(1.0)
    finally:
        threading.excepthook = previous
    assert crashed == []  # no thread died with a traceback
    assert not any(isinstance(e, ScanEvent) for e in list(sink.items.queue))


def test_doctor_beside_a_running_terminal_leaves_its_simulated_reader_alone(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "seed-demo").returncode == 0
    terminal = HeadlessTerminal("--data-dir", str(data))
    port_file = data / "sim.port"
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            assert terminal.process.poll() is None, terminal.process.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        port = port_file.read_text()
        doctor = run_cli(data, "doctor")
        assert "Traceback" not in doctor.stderr
        sim = [line for line in doctor.stdout.splitlines() if " reader sim:" in line]
        assert len(sim) == 1 and sim[0].startswith("ok ") and "in use" in sim[0], doctor.stdout
        assert f"port {port.strip()}" in sim[0]
        assert port_file.exists() and port_file.read_text() == port  # not removed, not stolen
        tap = run_cli(data, "sim", "tap", ANNA.card_uid or "")
        assert tap.returncode == 0, tap.stderr  # the running terminal still takes taps
    finally:
        returncode = terminal.stop(20)
    assert returncode == 0
    assert not port_file.exists()  # its own reader tidies up when the terminal stops


def test_a_second_simulated_reader_on_the_same_port_file_is_refused_and_takes_nothing(
    tmp_path: Path,
) -> None:
    from drivers.base import ReaderInUse

    options = {"port": 0, "port_file": str(tmp_path / "sim.port")}
    with SimulatedReader("sim", options, Collect()) as first:
        second = SimulatedReader("sim", options, Collect())
        with pytest.raises(ReaderInUse, match=f"port {first.port}"):
            second.open()
        second.close()  # closing the one that never opened removes nothing
        assert (tmp_path / "sim.port").read_text().strip() == str(first.port)
        assert send_command(first.port, {"cmd": "status"})["ok"]
    assert not (tmp_path / "sim.port").exists()
    with SimulatedReader("sim", options, Collect()) as again:  # free once the first closed
        assert (tmp_path / "sim.port").read_text().strip() == str(again.port)


def test_play_refuses_what_is_not_a_small_regular_scenario_file_without_echoing_it(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "scenario.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_text('[[steps]]\ndo = "offline"\n' + "# padding\n" * 30000)
    secret = tmp_path / "terminal.token"
    secret.write_text("s3cr3t-token-value-here\n")
    prose = tmp_path / "passwd"
    prose.write_text("root:x:0:0:root:/root:/bin/bash\n")
    cases = [
        ("/dev/zero", "not a regular file"),
        (str(fifo), "not a regular file"),
        (str(tmp_path), "not a regular file"),
        (str(big), "larger than 262144 bytes"),
        (str(secret), "not TOML"),
        (str(prose), "not TOML"),
    ]
    with SimulatedReader("sim", {"port": 0}, Collect()) as reader:
        for path, says in cases:
            started = time.monotonic()
            reply = send_command(reader.port, {"cmd": "play", "value": path}, timeout_s=5.0)
            assert time.monotonic() - started < 3.0, path  # never blocks, never reads for ever
            assert not reply["ok"] and says in reply["error"], reply
            assert "s3cr3t" not in reply["error"] and "root:" not in reply["error"]
            assert "line" not in reply["error"] and "col" not in reply["error"]
        assert send_command(reader.port, {"cmd": "status"})["ok"]  # the reader still answers


def test_pos_client_sim_play_of_an_endless_file_is_one_clear_line(tmp_path: Path) -> None:
    with SimulatedReader("sim", {"port": 0}, Collect()) as reader:
        played = subprocess.run(
            [
                sys.executable,
                "-m",
                "pos_client.cli",
                "--data-dir",
                str(tmp_path / "data"),
                "sim",
                "play",
                "/dev/zero",
                "--port",
                str(reader.port),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert played.returncode == 1 and "Traceback" not in played.stderr, played.stderr
    assert "not a regular file" in played.stderr
    assert len(played.stderr.strip().splitlines()) == 1


def test_queue_quarantine_is_refused_while_a_terminal_runs_on_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "seed-demo").returncode == 0
    terminal = HeadlessTerminal("--data-dir", str(data), stderr=subprocess.DEVNULL)
    try:
        terminal.expect("running", timeout=60)
        assert (
            run_cli(data, "earn", "--member", ANNA.card_number, "--amount", "5.00").returncode == 0
        )
        refused = run_cli(data, "queue", "quarantine")
        assert refused.returncode == 2 and "stop it first" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not list(data.glob("outbox.sqlite.*corrupt*"))
    finally:
        terminal.stop(10)
    with Outbox(data / "outbox.sqlite") as outbox:
        assert len(outbox.entries()) == 1  # the sale recorded beside the terminal is kept
    kept = run_cli(data, "queue", "quarantine")  # stopped: now it may
    assert kept.returncode == 0, kept.stderr


def write_card_keys(folder: Path, mode: int = 0o600) -> Path:
    path = folder / "card-keys.toml"
    path.write_text(
        'meta_read_key = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"\n'
        'file_read_key = "00112233445566778899AABBCCDDEEFF"\n'
        'diversify = true\nsystem_identifier = "4C4F59414C"\n'
    )
    path.chmod(mode)
    return path


def test_a_terminal_on_its_own_ledger_checks_secure_cards_with_its_keys(tmp_path: Path) -> None:
    """The embedded ledger is the store: with its card keys it verifies a secure card's
    message from the simulated reader, finds the member once, and refuses the copy; a
    terminal without keys says it cannot check them."""
    from pos_client.sun import card_url, load_sun_keys

    keys_path = write_card_keys(tmp_path)
    keys = load_sun_keys(keys_path)
    uid = bytes.fromhex("04A224C25E6C80")  # Anna's demo card
    url = card_url("https://l.example/c", keys.meta_read_key, keys.file_read_key_for(uid), uid, 7)
    settings = make_settings(tmp_path / "till", BACKEND__CARD_KEYS_FILE=str(keys_path))
    sink = Collect()
    with build_terminal(settings) as till, SimulatedReader("sim", {"port": 0}, sink) as sim:
        assert till.ledger is not None
        seed_demo_members(till.ledger, till.checkout.hasher)
        router = ScanRouter(till.checkout, till.bus)
        outcomes = []
        for _ in range(2):
            assert send_command(sim.port, {"cmd": "sun", "value": url}) == {"ok": True}
            outcomes.append(router.route(sink.take(ScanEvent)))
        found, copied = outcomes
        assert isinstance(found, MemberIdentified)
        assert found.session.view.display_name.startswith(ANNA.first_name)
        assert isinstance(copied, IdentificationFailed) and copied.code == "card_replayed"
    with build_terminal(make_settings(tmp_path / "plain")) as plain:
        refused = ScanRouter(plain.checkout, plain.bus).route(ScanEvent("sim:sim", "sun", url))
        assert isinstance(refused, IdentificationFailed)
        assert refused.code == "secure_card_offline"


def test_a_card_keys_file_others_can_read_is_a_config_error(tmp_path: Path) -> None:
    keys_path = write_card_keys(tmp_path, mode=0o644)
    settings = make_settings(tmp_path / "till", BACKEND__CARD_KEYS_FILE=str(keys_path))
    with pytest.raises(ConfigError, match=r"backend.card_keys_file.*chmod 600"):
        build_terminal(settings)


def test_the_simulated_reader_plays_an_emulator_beside_a_secure_message(tmp_path: Path) -> None:
    """A field test of a relay or emulator: a genuine message beside another card's UID is
    refused, and the same message with its own card's UID then identifies the member."""
    from pos_client.sun import card_url, load_sun_keys

    keys_path = write_card_keys(tmp_path)
    keys = load_sun_keys(keys_path)
    uid = bytes.fromhex(ANNA.card_uid or "")
    url = card_url("https://l.example/c", keys.meta_read_key, keys.file_read_key_for(uid), uid, 9)
    scenario = tmp_path / "emulator.toml"
    scenario.write_text(
        f'[[steps]]\ndo = "sun"\nvalue = "{url}"\nuid = "04000000000001"\n'
        f'[[steps]]\ndo = "sun"\nvalue = "{url}"\nuid = "{ANNA.card_uid}"\n'
    )
    settings = make_settings(tmp_path / "till", BACKEND__CARD_KEYS_FILE=str(keys_path))
    sink = Collect()
    with build_terminal(settings) as till, SimulatedReader("sim", {"port": 0}, sink) as sim:
        assert till.ledger is not None
        seed_demo_members(till.ledger, till.checkout.hasher)
        router = ScanRouter(till.checkout, till.bus)
        outcomes = []
        for command in load_scenario(scenario):
            assert send_command(sim.port, command) == {"ok": True}
            outcomes.append(router.route(sink.take(ScanEvent)))
        emulated, genuine = outcomes
        assert isinstance(emulated, IdentificationFailed) and emulated.code == "card_refused"
        assert isinstance(genuine, MemberIdentified)
        bad = send_command(sim.port, {"cmd": "sun", "value": url, "uid": "zz"})
        assert bad.get("ok") is not True and "14 hex digits" in str(bad)


def test_a_card_blocked_on_the_terminals_own_ledger_is_refused_on_screen(tmp_path: Path) -> None:
    from pos_client.sun import card_url, load_sun_keys

    keys_path = write_card_keys(tmp_path)
    keys = load_sun_keys(keys_path)
    uid = bytes.fromhex(ANNA.card_uid or "")

    def message(counter: int) -> str:
        key = keys.file_read_key_for(uid)
        return card_url("https://l.example/c", keys.meta_read_key, key, uid, counter)

    settings = make_settings(tmp_path / "till", BACKEND__CARD_KEYS_FILE=str(keys_path))
    with build_terminal(settings) as till:
        assert till.ledger is not None
        seed_demo_members(till.ledger, till.checkout.hasher)
        member = till.ledger.find_member_id("card_number", ANNA.card_number) or ""
        assert till.ledger.link_secure_card(keys, message(1), member) is True
    with build_terminal(settings) as till:
        assert till.ledger is not None
        _member, masked = till.ledger.block_member_cards(ANNA.card_number)
        assert masked == ["••••••••••6C80"]
        refused = ScanRouter(till.checkout, till.bus).route(ScanEvent("sim:sim", "sun", message(2)))
        assert isinstance(refused, IdentificationFailed) and refused.code == "card_blocked"
