"""The X/SDL input path: the real app in a real X window (Xvfb), clicked by xdotool like a
mouse, through idle -> phone -> member -> purchase -> receipt.

Where to click comes from the app itself: with POS_UI_DEBUG_LAYOUT=path it keeps a JSON of
the buttons on screen and their rectangles in window pixels; the window's position on the X
screen comes from xdotool. Progress is checked in the data folder (the outbox, through
`pos-client queue status`) and on screenshots of the X screen (imagemagick's `import`).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pos_client.demo import DEMO_MEMBERS
from ui.controllers.input import SCREEN_CHANGE_GUARD_S

BOB = DEMO_MEMBERS[1]
CLI = [sys.executable, "-m", "pos_client.cli"]
REPO = Path(__file__).resolve().parents[2]
SCREEN_WAIT_S = 15.0

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")),
    reason="needs Xvfb and xdotool (scripts/system-packages.txt: xvfb, xdotool)",
)


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process this test started, by its own handle (never by name)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server on a free display number (Xvfb picks it: -displayfd)."""
    yield from x_server("1024x768x24")


@pytest.fixture
def wide_display() -> Iterator[str]:
    """An X server whose screen is neither SDL's default window size nor 4:3."""
    yield from x_server("1280x720x24")


def x_server(screen: str) -> Iterator[str]:
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        ready, _w, _x = select.select([read_end], [], [], 10)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not report a display number within 10 s")
        yield f":{number}"
    finally:
        os.close(read_end)
        stop(server)


class Terminal:
    """The app under X, seen through its layout file and clicked through xdotool."""

    def __init__(self, display: str, layout: Path, process: subprocess.Popen[Any]) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.layout_path = layout
        self.process = process
        self.origin = (0, 0)

    def layout(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.layout_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {"screen": None, "widgets": []}

    def wait_screen(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + SCREEN_WAIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the app exited ({self.process.returncode}) waiting for {name!r}")
            layout = self.layout()
            if layout.get("screen") == name and layout["widgets"]:
                # A person looks at a new screen before the next click; a click sooner is
                # swallowed by the app's touch guard (a double click must not fall through).
                time.sleep(SCREEN_CHANGE_GUARD_S)
                return layout
            time.sleep(0.1)
        pytest.fail(f"waited {SCREEN_WAIT_S} s for screen {name!r}; on {self.layout()['screen']!r}")

    def find_window(self) -> None:
        """Where SDL put the window on the X screen (no window manager here)."""
        deadline = time.monotonic() + SCREEN_WAIT_S
        while time.monotonic() < deadline:
            found = self.xdotool(
                "search", "--onlyvisible", "--pid", str(self.process.pid), check=False
            )
            for window_id in found.split():
                shell = self.xdotool("getwindowgeometry", "--shell", window_id)
                geometry = dict(line.split("=", 1) for line in shell.split())
                size = [int(geometry["WIDTH"]), int(geometry["HEIGHT"])]
                if size == self.layout().get("window"):
                    self.origin = (int(geometry["X"]), int(geometry["Y"]))
                    return
            time.sleep(0.2)
        pytest.fail("the app's X window was not found")

    def xdotool(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=10
        )
        if check and done.returncode != 0:
            pytest.fail(f"xdotool {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def click(self, text: str) -> None:
        layout = self.layout()
        matches = [w for w in layout["widgets"] if w["text"] == text and not w["disabled"]]
        if len(matches) != 1:
            shown = [w["text"] for w in layout["widgets"]]
            pytest.fail(f"{len(matches)} buttons {text!r} on screen {layout['screen']!r}: {shown}")
        x, y = matches[0]["centre"]
        self.xdotool("mousemove", str(self.origin[0] + x), str(self.origin[1] + y), "click", "1")
        time.sleep(0.15)  # a person's pace; the app draws between clicks

    def screenshot(self, path: Path) -> Path | None:
        if not shutil.which("import"):
            return None
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True)
        return path


def queue_status(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*CLI, "--config", str(config), "queue", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_mouse_clicks_through_idle_phone_member_purchase_receipt(
    tmp_path: Path, display: str
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "terminal.toml"
    config.write_text(
        f"""
[terminal]
id = "X-SMOKE"
mode = "cashier"
language = "en"
[store]
name = "X smoke"
region = "US"
[storage]
data_dir = "{data}"
[sync]
interval_s = 0.5
backoff_base_s = 0.2
backoff_cap_s = 1.0
[[readers]]
kind = "simulated"
name = "sim"
port = 0
""",
        encoding="utf-8",
    )
    subprocess.run(
        [*CLI, "--config", str(config), "seed-demo"],
        check=True,
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    layout = tmp_path / "layout.json"
    log = (tmp_path / "app.log").open("w")
    env = {
        **os.environ,
        "DISPLAY": display,
        "KIVY_HOME": str(tmp_path / "kivy"),
        "KIVY_NO_ARGS": "1",
        "POS_UI_DEBUG_LAYOUT": str(layout),
    }
    app = subprocess.Popen(
        [*CLI, "--config", str(config), "run"], env=env, stdout=log, stderr=log, cwd=REPO
    )
    shots: dict[str, Path | None] = {}
    try:
        terminal = Terminal(display, layout, app)
        terminal.wait_screen("idle")
        terminal.find_window()
        shots["idle"] = terminal.screenshot(tmp_path / "1-idle.png")
        terminal.click("Type phone number")
        terminal.wait_screen("phone")
        for key in BOB.phone:
            terminal.click(key)
        shots["phone"] = terminal.screenshot(tmp_path / "2-phone.png")
        terminal.click("Find me")
        terminal.wait_screen("member")
        terminal.click("Record purchase")
        terminal.wait_screen("earn")
        for key in "12.50":
            terminal.click(key)
        terminal.click("Confirm")
        terminal.wait_screen("receipt")
        shots["receipt"] = terminal.screenshot(tmp_path / "3-receipt.png")
        status = queue_status(config)
    finally:
        stop(app)
        log.close()
    assert status["dead"] == 0
    assert status["pending"] + status["sending"] + status["acked"] == 1, status
    if shots["idle"] is not None:
        from PIL import Image, ImageChops

        images = {name: Image.open(path).convert("RGB") for name, path in shots.items() if path}
        for name, image in images.items():
            assert len(image.getcolors(maxcolors=1_000_000) or []) > 20, f"{name} looks blank"
        assert ImageChops.difference(images["idle"], images["receipt"]).getbbox() is not None


def test_fullscreen_kiosk_without_window_manager_fills_the_screen(
    tmp_path: Path, wide_display: str
) -> None:
    """A fullscreen kiosk under X with no window manager: its window is the screen's size at
    the screen's corner, and the app lays out for that size (it used to draw for the screen
    inside an 800x600 X window, parts of it off the window)."""
    data = tmp_path / "data"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        (REPO / "config" / "examples" / "kiosk.toml")
        .read_text(encoding="utf-8")
        .split("[[readers]]")[0]
        + f"""
[admin]
pin = "97531"
[storage]
data_dir = "{data}"
[[readers]]
kind = "simulated"
name = "sim"
port = 0
""",
        encoding="utf-8",
    )
    layout = tmp_path / "layout.json"
    log = (tmp_path / "app.log").open("w")
    env = {
        **os.environ,
        "DISPLAY": wide_display,
        "KIVY_HOME": str(tmp_path / "kivy"),
        "KIVY_NO_ARGS": "1",
        "POS_UI_DEBUG_LAYOUT": str(layout),
    }
    app = subprocess.Popen(
        [*CLI, "--config", str(config), "run"], env=env, stdout=log, stderr=log, cwd=REPO
    )
    try:
        terminal = Terminal(wide_display, layout, app)
        terminal.wait_screen("idle")
        screen = [int(n) for n in terminal.xdotool("getdisplaygeometry").split()]
        assert screen == [1280, 720]
        windows = terminal.xdotool("search", "--onlyvisible", "--pid", str(app.pid)).split()
        geometries = []
        for window_id in windows:
            shell = terminal.xdotool("getwindowgeometry", "--shell", window_id)
            geometry = dict(line.split("=", 1) for line in shell.split())
            geometries.append([int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT")])
        assert geometries == [[0, 0, *screen]], geometries
        assert terminal.layout()["window"] == screen
    finally:
        stop(app)
        log.close()
