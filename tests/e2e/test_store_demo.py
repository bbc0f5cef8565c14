"""`loyalty-server demo` (what `make demo` starts beside the terminal): the console on
loopback over a demo store, with a login it prints, stopped when its command ends."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import REPO
from tests.console_client import LOGIN_CSRF
from tests.integration.server_helpers import free_port


def test_the_store_demo_prints_a_login_that_opens_the_console_and_stops_after(
    tmp_path: Path,
) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "loyalty_server.cli", "demo", "--folder", str(tmp_path / "store"),
         "--port", str(port), "--then", sys.executable, "-c", "import time; time.sleep(20)"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        address = demo.stdout.readline().strip()
        login = demo.stdout.readline()
        assert address == f"store console: http://127.0.0.1:{port}/console/"
        found = re.search(r"manager / (\S+)", login)
        assert found
        http = requests.Session()
        form = http.get(f"http://127.0.0.1:{port}/console/login", timeout=10)
        token = LOGIN_CSRF.search(form.text)
        assert token
        signed = http.post(
            f"http://127.0.0.1:{port}/console/login",
            data={"name": "manager", "password": found.group(1), "login_csrf": token.group(1)},
            timeout=30,
        )
        assert 'id="signed-in-as">manager' in signed.text
        anna = http.get(f"http://127.0.0.1:{port}/console/members", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', anna)
        assert csrf
        found = http.post(
            f"http://127.0.0.1:{port}/console/members",
            data={"csrf": csrf.group(1), "by": "phone", "value": "+79123456789"},
            timeout=10,
        )
        assert "Karenina" in found.text  # a phone the demo printed
        members = http.get(f"http://127.0.0.1:{port}/console/exports/members.csv", timeout=10)
        assert len(members.text.strip().splitlines()) == 1 + 4  # the demo's four members
        assert demo.wait(60) == 0
        try:
            requests.get(f"http://127.0.0.1:{port}/console/login", timeout=2)
            raise AssertionError("the demo's server still answers after the demo ended")
        except requests.ConnectionError:
            pass
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_stopping_the_store_demo_stops_its_server(tmp_path: Path) -> None:
    import signal

    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "loyalty_server.cli", "demo", "--folder", str(tmp_path / "store"),
         "--port", str(port), "--then", sys.executable, "-c", "import time; time.sleep(60)"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        assert demo.stdout.readline().startswith("store console:")
        assert requests.get(f"http://127.0.0.1:{port}/console/login", timeout=5).ok
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(30) == 0
        try:
            requests.get(f"http://127.0.0.1:{port}/console/login", timeout=2)
            raise AssertionError("the demo's server outlived the demo")
        except requests.ConnectionError:
            pass
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
