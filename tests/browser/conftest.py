"""The console in a real browser: Debian's Chromium driven by Selenium (chromium-driver),
against the store server as a real process on loopback. Never downloads a browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_client import add_user
from tests.integration.server_helpers import ServerProcess

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
DESKTOP = (1280, 900)
PHONE = (390, 844)


def start_browser(size: tuple[int, int] = DESKTOP) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root (CI) Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--lang=en-US",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not (shutil.which(CHROMEDRIVER) and Path(CHROMIUM).exists()):
        pytest.skip("chromium and chromium-driver are not installed (make test installs them)")
    from loyalty_server.cli import migrate

    workdir = tmp_path_factory.mktemp("store")
    url = f"sqlite+pysqlite:///{workdir}/store.sqlite"
    migrate(url)
    server = ServerProcess(
        url,
        workdir,
        LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY="3",
    )
    server.seed()
    server.start()
    add_user(server, "maria", "manager")
    add_user(server, "otto", "auditor")
    add_user(server, "lena", "manager")  # the one whose password is guessed
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(store: ServerProcess) -> Iterator[Any]:
    driver = start_browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: POS_CLIENT_SCREENSHOTS=DIR keeps them (the README's are made
    so), else a temporary folder."""
    kept = os.environ.get("POS_CLIENT_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("screenshots")
