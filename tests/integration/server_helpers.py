"""A real loyalty server process on loopback, a throwaway PostgreSQL cluster, and paired
terminals talking to it over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from loyalty_server.terminals import add_terminal
from pos_client.bootstrap import Terminal, build_terminal
from pos_client.demo import seed_demo_members
from pos_client.ledger import Ledger, make_engine
from pos_client.privacy import PhoneHasher, load_or_create_key
from pos_client.program import load_program
from pos_client.settings import BackendKind
from tests.conftest import CONFIG_DIR, REPO, make_settings

Answer = tuple[int, bytes | None]  # a status and a JSON body (None: no body at all)


def json_answer(payload: object, status: int = 200) -> Answer:
    return status, json.dumps(payload).encode()


class LoopbackServer:
    """A stand-in store server on 127.0.0.1, served from a thread of its own: a subclass
    answers each GET with `get(path)` and each POST with `post(its body, parsed as JSON)`.
    Set a subclass's own fields before calling this __init__, which starts serving."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _send(self, answer: Answer) -> None:
                status, body = answer
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(owner.get(self.path))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self._send(owner.post(json.loads(self.rfile.read(length))))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def get(self, path: str) -> Answer:
        return json_answer({"status": "ok"})

    def post(self, payload: Any) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The store's abuse limits lifted, for benchmarks that send thousands of sales a second from
# one terminal (over its per-minute allowance and one member's daily cap and review flag).
LIMITS_LIFTED = {
    "LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY": "100000000",
    "LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE": "100000000",
    "LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY": "1000000000",
}


class ServerProcess:
    def __init__(self, database_url: str, workdir: Path, **env: str) -> None:
        self.database_url = database_url
        self.workers = 1  # more: uvicorn worker processes behind one port (serve --workers)
        self.workdir = workdir
        self.key_file = workdir / "store-phone.key"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "LOYALTY_SERVER_CONFIG_DIR": str(CONFIG_DIR)}
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "loyalty_server.cli",
            *args,
            "--database-url",
            self.database_url,
            "--phone-key-file",
            str(self.key_file),
        ]

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command("serve", "--port", str(self.port), "--workers", str(self.workers)),
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/v1/health", timeout=1).status_code == 401:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def ledger(self) -> Ledger:
        return Ledger(make_engine(self.database_url), load_program("category_tiers", CONFIG_DIR))

    def hasher(self) -> PhoneHasher:
        return PhoneHasher(load_or_create_key(self.key_file))

    def seed(self) -> None:
        ledger = self.ledger()
        seed_demo_members(ledger, self.hasher())
        ledger.engine.dispose()

    def pairing_code(self, name: str = "desk", merchant: str = "") -> str:
        engine = make_engine(self.database_url)
        _terminal_id, code = add_terminal(engine, name, 600, merchant=merchant)
        engine.dispose()
        return code

    def pair(self, name: str = "desk", merchant: str = "") -> dict[str, str]:
        response = requests.post(
            self.url + "/v1/terminals/pair",
            json={"code": self.pairing_code(name, merchant)},
            timeout=10,
        )
        response.raise_for_status()
        data: dict[str, str] = response.json()
        return data


def http_terminal(
    server: ServerProcess,
    data_dir: Path,
    url: str | None = None,
    read_timeout_s: float = 10.0,
    answer: dict[str, str] | None = None,
    program: str = "category_tiers",
    **config: str,
) -> Terminal:
    """A terminal paired with the server (or with the pairing `answer` given), its outbox
    draining over HTTP; `config`: settings as POS_CLIENT__SECTION__KEY would give them."""
    answer = answer or server.pair(data_dir.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "terminal.token").write_text(answer["token"])
    if answer.get("phone_key"):  # a server that still shares the store-wide key
        (data_dir / "phone.key").write_text(answer["phone_key"])
    settings = make_settings(data_dir, program, **config)
    settings = replace(
        settings,
        backend=replace(
            settings.backend,
            kind=BackendKind.HTTP,
            url=url or server.url,
            read_timeout_s=read_timeout_s,
            connect_timeout_s=2.0,
        ),
        sync=replace(settings.sync, batch_size=100),
    )
    return build_terminal(settings)


def postgres_unavailable_reason() -> str | None:
    if shutil.which("runuser") is None or not list(Path("/usr/lib/postgresql").glob("*/bin")):
        return "PostgreSQL is not installed (make test installs it when run as root)"
    if os.geteuid() != 0:
        return "the throwaway cluster is started as the postgres user, which needs root"
    return None


class PostgresCluster:
    """initdb in a temp dir (initdb refuses root: it runs as postgres), pg_ctl on loopback."""

    def __init__(self) -> None:
        import tempfile

        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        workdir = Path(tempfile.mkdtemp(prefix="pos-pg-"))
        workdir.chmod(0o755)  # the postgres user must reach it
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.sockets = workdir / "pgsock"
        self.port = free_port()
        self.databases = 0

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    def start(self) -> str:
        for path in (self.data, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, "postgres")
        self.data.chmod(0o700)
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "log"),
            "-o",
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1",
            "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        self.databases += 1
        name = f"loyalty{self.databases}"
        self._as_postgres(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
