"""The field-test reader: a first-class driver that produces the same events as hardware.

Commands arrive three ways, all through `inject()`: JSON lines on a loopback TCP socket
(what `pos-client sim tap 04A224C25E6C80` sends to a running terminal), scenario files
(TOML, `[[steps]]` with `do = "tap" | "remove" | "scan" | "phone" | "ndef" | "sun" |
"error" | "offline" | "online" | "wait"`), and direct calls from tests and the UI's keyboard
shortcuts. `sun` presents a secure card's message (its URL), as the PC/SC driver gives an
NTAG 424 DNA's: a valid one, the same again (a copy), or an altered one, for field tests.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import socket
import stat
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from drivers.base import DriverUnavailable, ReaderInUse, Sink
from pos_client.configfile import ConfigError, Section
from pos_client.events import NetworkCommand, ReaderStatus, ScanEvent
from pos_client.files import write_private_atomically

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_COMMAND_BYTES = 4096
MAX_WAIT_S = 600.0
MAX_LATENCY_S = 30.0  # the core's NetworkSwitch refuses more
MAX_SCENARIO_BYTES = 256 * 1024  # a scenario is a short list of steps


def seconds_in(command: Mapping[str, Any], limit: float) -> float:
    """The command's `seconds` (or `value`): a number from 0 to `limit`, else ValueError."""
    name = command.get("cmd")
    value = command.get("seconds", command.get("value", 1))
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"'{name}' takes seconds as a number from 0 to {limit:.0f}")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"'{name}' takes seconds as a number from 0 to {limit:.0f}") from None
    if not 0 <= seconds <= limit:  # also refuses nan
        raise ValueError(f"'{name}' takes seconds as a number from 0 to {limit:.0f}")
    return seconds


class SimulatedReader:
    kind = "simulated"

    def __init__(self, name: str, options: Mapping[str, Any], sink: Sink) -> None:
        section = Section(options, f"reader {name}", f"readers.{name}.")
        self.name = name
        self.sink = sink
        self.host = section.text("host", "127.0.0.1")
        if self.host not in LOOPBACK:
            raise section.fail("host", "the simulated reader listens on loopback only")
        self.port = section.integer("port", 0, minimum=0, maximum=65535)
        port_file = section.text("port_file", "")
        self.port_file = Path(port_file).expanduser() if port_file else None
        scenario = section.text("scenario", "")
        self.scenario = Path(scenario).expanduser() if scenario else None
        self.autoplay = section.flag("autoplay", False)
        self.source = f"sim:{name}"
        self._server: socket.socket | None = None
        self._lock_fd: int | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "tap": self._tap,
            "remove": self._remove,
            "scan": self._scan,
            "phone": self._phone,
            "ndef": self._ndef,
            "sun": self._sun,
            "error": self._error,
            "offline": lambda _c: self._network(False),
            "online": lambda _c: self._network(True),
            "latency": self._latency,
            "wait": self._wait,
            "play": self._play,
            "status": lambda _c: {"ok": True, "reader": self.describe()},
        }

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        self._claim_port_file()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((self.host, self.port))
        except OSError as exc:
            server.close()
            self._release_port_file()
            raise DriverUnavailable(
                f"simulated reader cannot listen on port {self.port}: {exc}"
            ) from None
        server.listen(8)
        server.settimeout(0.2)
        self._server = server
        self.port = server.getsockname()[1]
        if self.port_file is not None:
            # Whole or not at all: `pos-client sim` never reads half a file (no fsync: the
            # file names a listening socket and means nothing after a power cut).
            write_private_atomically(self.port_file, f"{self.port}\n", durable=False)
        self._stop.clear()
        self._spawn(self._accept_loop, "sim-accept")
        self.sink(ReaderStatus(self.source, "connected", f"listening on {self.host}:{self.port}"))
        if self.autoplay and self.scenario is not None:
            self._spawn(
                lambda: self.inject({"cmd": "play", "value": str(self.scenario)}), "sim-scenario"
            )

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()
        self._release_port_file()

    # The port file belongs to the process holding the flock on `<port file>.lock` (the
    # kernel releases it if that process dies): a second reader on the same port file (a
    # `pos-client doctor` beside a running terminal) neither rewrites nor removes it.

    def _claim_port_file(self) -> None:
        if self.port_file is None or self._lock_fd is not None:
            return
        self.port_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.port_file.with_name(self.port_file.name + ".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise ReaderInUse(self._in_use_by_other()) from None
            raise DriverUnavailable(f"simulated reader cannot lock {lock_path}: {exc}") from None
        self._lock_fd = descriptor

    def _release_port_file(self) -> None:
        if self._lock_fd is None:
            return  # never claimed: the file is another reader's, or none
        if self.port_file is not None:
            self.port_file.unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the flock
        self._lock_fd = None

    def _in_use_by_other(self) -> str:
        where = f"{self.port_file}"
        try:
            port = int((self.port_file or Path()).read_text().strip())
        except (OSError, ValueError):
            return f"simulated {self.name}: in use by another process (a running terminal; {where})"
        try:
            answer = send_command(port, {"cmd": "status"}, host=self.host, timeout_s=2.0)
        except (OSError, ValueError):
            answer = {}
        state = "answering" if answer.get("ok") else "not answering"
        return (
            f"simulated {self.name}: in use by a running terminal, {state} on "
            f"{self.host} port {port} ({where}); left alone"
        )

    def __enter__(self) -> SimulatedReader:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self) -> str:
        state = f"listening on {self.host}:{self.port}" if self._server else "closed"
        return f"simulated {self.name}: {state}"

    def problem(self) -> str | None:
        return None if self._server is not None else "not listening"

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------ commands

    def inject(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """Run one command; the reply says ok or what was wrong. Never raises."""
        handler = self.commands.get(str(command.get("cmd", "")))
        if handler is None:
            return {
                "ok": False,
                "error": f"unknown command {command.get('cmd')!r}; "
                f"known: {', '.join(sorted(self.commands))}",
            }
        try:
            return handler(dict(command))
        except (ValueError, ConfigError) as exc:
            return {"ok": False, "error": str(exc)}
        except RecursionError:
            return {"ok": False, "error": "bad command: nested too deeply"}
        except Exception as exc:  # a field-test command must never kill its connection
            log.warning("simulated reader: command failed (%s)", type(exc).__name__)
            return {"ok": False, "error": f"command failed: {type(exc).__name__}"}

    def _value(self, command: dict[str, Any]) -> str:
        value = command.get("value")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"'{command.get('cmd')}' needs a value")
        return value.strip()

    def _emit(self, kind: str, value: str, raw: bytes = b"") -> dict[str, Any]:
        self.sink(ScanEvent(self.source, kind, value, raw or value.encode()))
        return {"ok": True}

    def _tap(self, command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("nfc", self._value(command))

    def _remove(self, _command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("removed", "")

    def _scan(self, command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("barcode", self._value(command))

    def _phone(self, command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("phone", self._value(command))

    def _ndef(self, command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("ndef", self._value(command))

    def _sun(self, command: dict[str, Any]) -> dict[str, Any]:
        """A secure card's message; `uid` (optional, 14 hex digits): the UID a reader
        would see beside it (a field test of an emulator gives another card's)."""
        uid = command.get("uid", "")
        if not isinstance(uid, str) or (uid and not re.fullmatch(r"[0-9A-Fa-f]{14}", uid)):
            raise ValueError("'sun' takes a uid of 14 hex digits (a 7-byte UID), or none")
        self.sink(ScanEvent(self.source, "sun", self._value(command), bytes.fromhex(uid)))
        return {"ok": True}

    def _error(self, command: dict[str, Any]) -> dict[str, Any]:
        return self._emit("error", str(command.get("value") or "simulated broken card"))

    def _network(self, online: bool) -> dict[str, Any]:
        self.sink(NetworkCommand(online))
        return {"ok": True}

    def _latency(self, command: dict[str, Any]) -> dict[str, Any]:
        seconds = seconds_in(command, MAX_LATENCY_S)
        self.sink(NetworkCommand(latency_s=seconds))
        return {"ok": True}

    def _wait(self, command: dict[str, Any]) -> dict[str, Any]:
        seconds = seconds_in(command, MAX_WAIT_S)
        self._stop.wait(seconds)
        return {"ok": True}

    def _play(self, command: dict[str, Any]) -> dict[str, Any]:
        steps = load_scenario(Path(self._value(command)))
        for index, step in enumerate(steps):
            if step.get("cmd") == "play":  # a scenario playing itself would never end
                return {
                    "ok": False,
                    "error": f"step {index + 1}: a scenario cannot play another scenario",
                }
        for index, step in enumerate(steps):
            if self._stop.is_set():
                return {"ok": False, "error": "stopped", "played": index}
            reply = self.inject(step)
            if not reply.get("ok"):
                return {"ok": False, "error": f"step {index + 1}: {reply.get('error')}"}
        return {"ok": True, "played": len(steps)}

    # ------------------------------------------------------------ socket

    def _run_line(self, line: bytes) -> dict[str, Any]:
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
            return self.inject(command)
        except RecursionError:  # deeply nested JSON
            return {"ok": False, "error": "bad command: nested too deeply"}
        except ValueError as exc:
            return {"ok": False, "error": f"bad command: {exc}"}

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            server = self._server
            if server is None:
                return
            try:
                client, _address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(partial(self._serve, client), "sim-client")

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(30)
            stream = client.makefile("rwb")
            while not self._stop.is_set():
                try:
                    line = stream.readline(MAX_COMMAND_BYTES + 1)
                except OSError:
                    return
                if not line:
                    return
                if len(line) > MAX_COMMAND_BYTES and not line.endswith(b"\n"):
                    # One over-long command is one refusal, not thousands of fragments.
                    while line and not line.endswith(b"\n") and not self._stop.is_set():
                        try:
                            line = stream.readline(MAX_COMMAND_BYTES + 1)
                        except OSError:
                            return
                    reply = {"ok": False, "error": f"bad command: over {MAX_COMMAND_BYTES} bytes"}
                else:
                    reply = self._run_line(line)
                try:
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()
                except OSError:  # the client went away before its reply
                    return


def read_scenario(path: Path) -> str:
    """A scenario file's text, read bounded: only a regular file (a FIFO, a device such as
    /dev/zero or a directory is refused before it is read, and a FIFO never blocks the
    open), at most MAX_SCENARIO_BYTES, UTF-8. Errors never echo the file's contents."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(f"{path}: not a scenario (not a regular file)")
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped after the stat
            raise ConfigError(f"{path}: not a scenario (not a regular file)")
        try:
            raw = handle.read(MAX_SCENARIO_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ConfigError(f"{path}: not a scenario (larger than {MAX_SCENARIO_BYTES} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a scenario (not UTF-8 text)") from None


def load_scenario(path: Path) -> list[dict[str, Any]]:
    """Scenario TOML -> commands, with errors naming the step and key. A file that is not
    TOML is refused without its parse position (which would tell what it holds)."""
    try:
        data = tomllib.loads(read_scenario(path))
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"{path}: not a scenario (not TOML)") from None
    if not isinstance(data.get("steps"), list):
        raise ConfigError(f"{path}: not a scenario (no [[steps]])")
    root = Section(data, str(path))
    steps = []
    for step in root.tables("steps"):
        action = step.text("do")
        command: dict[str, Any] = {"cmd": action}
        if "value" in step.data:
            command["value"] = step.text("value")
        if "seconds" in step.data:
            command["seconds"] = float(step.decimal("seconds", minimum=Decimal(0)))
        if "uid" in step.data:  # a secure card's message beside this UID (an emulator)
            command["uid"] = step.text("uid")
        steps.append(command)
    if not steps:
        raise ConfigError(f"{path}: a scenario needs at least one [[steps]]")
    return steps


def send_command(
    port: int, command: Mapping[str, Any], host: str = "127.0.0.1", timeout_s: float = 10.0
) -> dict[str, Any]:
    """The client side of `pos-client sim ...`."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.sendall(json.dumps(dict(command)).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            connection.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data or b'{"ok": false, "error": "no reply"}')
    return reply
