"""A console user in tests: a requests session that signs in through the login form and
sends forms with the page's CSRF token, as a browser would (no shortcut into the server)."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import requests

from tests.integration.server_helpers import ServerProcess

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
ERROR = re.compile(r'id="error">([^<]+)<')


def add_user(server: ServerProcess, name: str, role: str, password: str = PASSWORD) -> None:
    """`loyalty-server user add`, the password on stdin, as a script gives it."""
    done = subprocess.run(
        server.command("user", "add", name, "--role", role),
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=server.env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


class ConsoleUser:
    def __init__(self, server: ServerProcess) -> None:
        self.base = server.url + "/console"
        self.http = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def log_in(self, name: str, password: str = PASSWORD) -> requests.Response:
        form = self.get("/login")
        token = LOGIN_CSRF.search(form.text)
        assert token, form.text[:500]
        return self.http.post(
            self.base + "/login",
            data={"name": name, "password": password, "login_csrf": token.group(1)},
            timeout=30,
            allow_redirects=False,
        )

    def csrf(self, page: str = "/") -> str:
        found = CSRF.search(self.get(page).text)
        assert found, "no CSRF token on " + page
        return found.group(1)

    def post(
        self, path: str, data: dict[str, Any], page: str = "/", csrf: bool = True
    ) -> requests.Response:
        body = {**data, "csrf": self.csrf(page)} if csrf else data
        return self.http.post(self.base + path, data=body, timeout=30, allow_redirects=False)


def error_of(response: requests.Response) -> str:
    found = ERROR.search(response.text)
    return found.group(1) if found else ""
