"""The running app's speed and size, beside the goals of issue 16.

  tap -> next screen drawn: real touches through the harness of ui/touch.py (a
                 UnitTestTouch posted through the Window, the path a finger takes) on buttons
                 that change the screen, cycling idle -> phone -> idle -> phone -> (keys typed)
                 Find -> member -> purchase -> member -> rewards -> member -> give -> member
                 -> Done -> idle; each timed from the touch-down dispatch (down and up
                 dispatched back to back) to the first frame flipped with the new screen
                 current. Goal: p95 <= 100 ms.
  reader event -> member screen drawn: a simulated reader tap, beside a bare switch to the
                 same screen (the frame's own cost, no reader/router/lookup).
  cold start:    process spawn -> first frame flipped, median of several processes (the
                 files are in the page cache: "cold" is a fresh process, not a cold disk).
                 Goal: <= 1.5 s.
  memory:        resident set size of the running app after start and after the taps,
                 with what the GL driver (Mesa) maps, and a bare Kivy app (one label, same
                 window) as the floor. Goal: <= 150 MB.
The app is built as `pos-client run` builds it (default config, embedded ledger, the
simulated reader, demo members seeded), without pytest or the test helpers in the process.
Cold start and memory after start are also measured for a terminal on the HTTP backend (the
production configuration: the store server's client, no SQLAlchemy in the process) against a
stub server on loopback that answers the health check only (no lookups: start figures only).
Runs offscreen (SDL over EGL, Mesa llvmpipe) when there is no display. Prints the machine's
load average beside the figures: on a busy machine the timings are not the app's.
Usage: python benchmarks/ui_latency.py [--taps 200] [--starts 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")

GOAL_TAP_P95_S = 0.100
GOAL_COLD_START_S = 1.5
GOAL_RSS_MB = 150.0
SETTLE_S = 0.12  # a person's pause between taps (the app idles, frames keep coming)
MULTISAMPLES = "0"  # as ui.window.configure_kivy sets it
DRIVER_MAPS = ("libLLVM", "/dri/", "libGL", "libEGL", "libgbm", "libglapi", "libdrm")


def memory_mb() -> dict[str, float]:
    """RSS and PSS of this process, and the RSS of the GL driver's mapped libraries."""
    rss = pss = driver = 0
    name = ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping's first line: range perms offset dev inode path
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif head == "Rss:":
                kb = int(line.split()[1])
                rss += kb
                if any(part in name for part in DRIVER_MAPS):
                    driver += kb
            elif head == "Pss:":
                pss += int(line.split()[1])
    return {"rss": rss / 1024, "pss": pss / 1024, "driver": driver / 1024}


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_settings(data: Path, backend_url: str = "") -> Any:
    """The default config (as `pos-client run` loads it) in a throwaway data folder; with
    `backend_url`, the HTTP backend at that URL instead of the embedded ledger."""
    from pos_client.settings import BackendKind, load_settings

    settings = load_settings(None, env={}, config_dir=ROOT / "config")
    settings = replace(
        settings,
        storage=replace(settings.storage, data_dir=data, ledger_url=""),
        phone_key_file=data / "phone.key",
    )
    if backend_url:
        backend = replace(settings.backend, kind=BackendKind.HTTP, url=backend_url)
        settings = replace(settings, backend=backend)
    return settings


class StubServer:
    """A loopback HTTP server answering GET /v1/health (200) and nothing else (503): enough
    for a terminal on the HTTP backend to start online. Stopped by its own handle."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = self.path == "/v1/health"
                body = b'{"status": "ok"}' if ok else b"{}"
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def record_first_frame(app: Any, results: dict[str, Any], spawned: float) -> None:
    """Cold start: the first frame flipped, counted from the parent's spawn (monotonic clock,
    one for every process on Linux)."""
    original = app.on_start

    def on_start() -> None:
        from kivy.core.window import Window

        def first(*_args: Any) -> None:
            Window.unbind(on_flip=first)
            results["cold_start_s"] = time.perf_counter() - spawned
            # CPU seconds of the process (all threads) to the first frame: unlike the wall
            # clock, barely moved by other processes on a busy machine.
            results["cold_start_cpu_s"] = time.process_time()

        Window.bind(on_flip=first)
        original()

    app.on_start = on_start


class FlipClock:
    """Times of the frames flipped on the Window while `wanted()` holds."""

    def __init__(self) -> None:
        from kivy.core.window import Window

        self.wanted: Callable[[], bool] | None = None
        self.at: float | None = None
        Window.bind(on_flip=self._flipped)

    def arm(self, wanted: Callable[[], bool]) -> None:
        self.wanted, self.at = wanted, None

    def _flipped(self, *_args: Any) -> None:
        if self.wanted is not None and self.at is None and self.wanted():
            self.at = time.perf_counter()
            self.wanted = None


def shows(app: Any, screen: str) -> bool:
    return bool(app.sm.current == screen)


def touch_cycle(app: Any, phone: str) -> list[tuple[str, dict[str, Any], str, str]]:
    """One walk through the screens: (label, what to tap, screen it is on, screen it opens).
    The phone number's keys are typed before Find (untimed: they do not change screen)."""
    tr = app.tr
    back = {"text": tr("common.back")}
    return [
        ("idle -> phone", {"text": tr("idle.phone")}, "idle", "phone"),
        ("phone Back -> idle", back, "phone", "idle"),
        ("idle -> phone", {"text": tr("idle.phone")}, "idle", "phone"),
        ("phone Find -> member", {"text": tr("phone.find")}, "phone", "member"),
        ("member -> purchase", {"text": tr("member.earn")}, "member", "earn"),
        ("purchase Back -> member", back, "earn", "member"),
        ("member -> rewards", {"text": tr("member.redeem")}, "member", "redeem"),
        ("rewards Back -> member", back, "redeem", "member"),
        ("member -> give", {"text": tr("member.give")}, "member", "give"),
        ("give Back -> member", back, "give", "member"),
        ("member Done -> idle", {"text": tr("common.done")}, "member", "idle"),
    ]


def touch_taps(app: Any, taps: int, results: dict[str, Any]) -> Generator[Any, None, None]:
    """`taps` timed touches on screen-changing buttons; the first cycle goes through the
    harness's checked press (fails if anything else would take the touch)."""
    from kivy.tests.common import UnitTestTouch

    from pos_client.demo import DEMO_MEMBERS
    from ui.touch import (
        centre,
        find_widget,
        hidden_because,
        press,
        release,
        tap_keys,
        wait_out_guard,
    )

    phone = DEMO_MEMBERS[0].phone
    clock = FlipClock()
    samples: list[float] = []
    by_step: dict[str, list[float]] = {}
    checked = False
    while len(samples) < taps:
        for label, find, on, opens in touch_cycle(app, phone):
            if len(samples) >= taps:
                break
            if app.sm.current != on:
                raise AssertionError(f"{label}: on {app.sm.current!r}, expected {on!r}")
            if opens == "member" and on == "phone":
                yield from tap_keys(phone)
                yield SETTLE_S
            # A tap within the app's touch guard (ui.controllers.input) after the last screen
            # change is swallowed on purpose: a person's next tap comes after it, too.
            yield from wait_out_guard()
            target = find_widget(**find)
            reason = hidden_because(target)
            if reason is not None:
                raise AssertionError(f"{label}: cannot tap {find}: {reason}")
            x, y = centre(target)
            clock.arm(partial(shows, app, opens))
            start = time.perf_counter()
            if checked:
                touch = UnitTestTouch(x, y)
                touch.touch_down()
                touch.touch_up()
            else:  # the harness's checks: the touch reached the button and it took it
                release(press(target))
            yield lambda: clock.at is not None
            assert clock.at is not None
            samples.append(clock.at - start)
            by_step.setdefault(label, []).append(clock.at - start)
            yield SETTLE_S
        checked = True
    results["touch_s"] = samples
    results["touch_first_cycle"] = len(touch_cycle(app, phone))
    results["touch_by_step_s"] = by_step


def reader_taps(app: Any, taps: int, results: dict[str, Any]) -> Generator[Any, None, None]:
    """The reader-event row: a simulated card tap -> member screen drawn, beside a bare
    switch to the member screen of an already identified member (the frame's own cost)."""
    from pos_client.demo import DEMO_MEMBERS
    from ui.demo import simulated

    drawn: list[float] = []
    app.on_screen_drawn = lambda _event, at: drawn.append(at)
    sim = simulated(app)
    uids = [m.card_uid for m in DEMO_MEMBERS if m.card_uid]
    sessions = [app.running.terminal.checkout.identify(uid, "nfc") for uid in uids]
    clock = FlipClock()
    tap_samples, bare_samples = [], []
    for index in range(taps):
        app.nav.go_idle()
        yield 0.02
        before = len(drawn)
        start = time.perf_counter()
        sim.inject({"cmd": "tap", "value": uids[index % len(uids)]})
        yield lambda before=before: len(drawn) > before
        tap_samples.append(drawn[-1] - start)
        app.nav.go("idle")
        yield 0.02
        clock.arm(lambda: bool(app.sm.current == "member"))
        start = time.perf_counter()
        app.customer.session = sessions[(index + 2) % len(sessions)]  # other text to draw
        app.nav.go("member")
        yield lambda: clock.at is not None
        assert clock.at is not None
        bare_samples.append(clock.at - start)
    app.nav.go_idle()
    yield 0.1
    results["reader_s"] = tap_samples
    results["bare_s"] = bare_samples


def seed(data: Path) -> None:
    """The store's data folder with the demo members, made before any timed start."""
    from pos_client.bootstrap import build_terminal
    from pos_client.demo import seed_demo_members

    with build_terminal(bench_settings(data)) as terminal:
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)


def child(
    taps: int, reader: int, data: Path, result_file: Path, spawned: float, backend_url: str = ""
) -> None:
    """One app process, built as `pos-client run` builds it (over an already seeded data
    folder): first frame, memory, then the taps."""
    from pos_client.bootstrap import build_app, run_terminal
    from ui.script import run_app_with_script

    settings = bench_settings(data, backend_url)
    results: dict[str, Any] = {}
    with run_terminal(settings) as running:
        app = build_app(settings, running)
        record_first_frame(app, results, spawned)

        def script(app: Any) -> Generator[Any, None, None]:
            from kivy.core.window import Window

            results["window"] = list(Window.size)
            results["memory_start"] = memory_mb()
            results["sqlalchemy_loaded"] = "sqlalchemy" in sys.modules
            if taps:
                yield from touch_taps(app, taps, results)
            if reader:
                yield from reader_taps(app, reader, results)
            results["memory_end"] = memory_mb()
            if taps or reader:  # then nobody at the terminal: the app returns freed memory
                from ui.app import RETURN_MEMORY_AFTER_S

                results["idle_wait_s"] = RETURN_MEMORY_AFTER_S + 1
                yield RETURN_MEMORY_AFTER_S + 1
                results["memory_idle"] = memory_mb()

        run_app_with_script(app, script)
    result_file.write_text(json.dumps(results))


def bare_child(result_file: Path, spawned: float) -> None:
    """The floor: a Kivy app showing one label in the same window, nothing else."""
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.config import Config
    from kivy.uix.label import Label

    # The app's window options (ui.window.configure_kivy), without importing the app.
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("graphics", "multisamples", MULTISAMPLES)
    results: dict[str, Any] = {}

    app = App()

    def drawn(*_args: Any) -> None:
        from kivy.core.window import Window

        Window.unbind(on_flip=drawn)
        Clock.schedule_once(done, 0.5)  # as the app's script starts

    def done(_dt: float) -> None:
        results["memory_start"] = memory_mb()
        app.stop()

    def on_start() -> None:
        from kivy.core.window import Window

        Window.bind(on_flip=drawn)

    app.build = lambda: Label(text="Demo Store")
    app.on_start = on_start
    record_first_frame(app, results, spawned)
    app.run()
    result_file.write_text(json.dumps(results))


def byte_compile() -> None:
    """The project's modules compiled to bytecode, as on an installed terminal (pip compiles
    a wheel's modules; an editable install caches them on first run). Under
    PYTHONDONTWRITEBYTECODE (set on some dev machines) every start compiled ~50 modules from
    source again: ~0.35 s of CPU that no terminal in a store spends."""
    import compileall

    for package in ("pos_client", "drivers", "ui"):
        compileall.compile_dir(ROOT / package, quiet=1)


def spawn(*args: str) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    kivy_home = tempfile.mkdtemp(prefix="kivy-")
    # A made-up terminal token for the HTTP rows (the stub server takes any).
    env = {**os.environ, "KIVY_HOME": kivy_home, "POS_BENCH_SPAWNED": ""}
    env["POS_CLIENT_TOKEN"] = "bench-terminal"
    env["POS_BENCH_SPAWNED"] = repr(time.perf_counter())
    subprocess.run(
        [sys.executable, __file__, *args, "--child", str(out)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return dict(json.loads(out.read_text()))
    finally:
        out.unlink(missing_ok=True)


def measure(taps: int = 200, starts: int = 5, reader: int | None = None) -> dict[str, Any]:
    """The tapping app process, `starts` more app processes (cold start and memory only),
    and the bare Kivy floor, over one seeded data folder; the load average before and after."""
    data = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    byte_compile()
    load_before = os.getloadavg()
    try:
        spawn("--seed", "--data", str(data))
        startups = [spawn("--data", str(data), "--taps", "0", "--reader", "0")]
        tapped = spawn(
            "--data",
            str(data),
            "--taps",
            str(taps),
            "--reader",
            str(taps if reader is None else reader),
        )
        startups += [
            spawn("--data", str(data), "--taps", "0", "--reader", "0") for _ in range(starts - 1)
        ]
        bare = spawn("--bare")
        stub = StubServer()
        try:
            http = [
                spawn("--data", str(data), "--taps", "0", "--reader", "0", "--backend", stub.url)
                for _ in range(starts)
            ]
        finally:
            stub.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {
        "tapped": tapped,
        "startups": startups,
        "http": http,
        "bare": bare,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cores": os.cpu_count(),
    }


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(result: dict[str, Any]) -> list[str]:
    tapped, bare = result["tapped"], result["bare"]
    touch = tapped.get("touch_s", [])
    colds = [tapped["cold_start_s"]] + [run["cold_start_s"] for run in result["startups"]]
    cold = statistics.median(colds)
    start_mem, end_mem = tapped["memory_start"], tapped["memory_end"]
    rss_all = [start_mem["rss"], end_mem["rss"]] + [
        run["memory_start"]["rss"] for run in result["startups"]
    ]
    rss_worst = max(rss_all)
    width, height = tapped["window"]
    lines = [
        f"machine: {result['cores']} cores; load average {fmt_load(result['load_before'])} before,"
        f" {fmt_load(result['load_after'])} after; window {width}x{height}"
        f" ({'display' if os.environ.get('DISPLAY') else 'offscreen, Mesa llvmpipe'})",
        f"{'':<48} {'p50':>8} {'p95':>8} {'n':>5}  goal",
    ]
    if touch:
        p95 = pct(touch, 0.95)
        lines.append(
            f"{'tap -> next screen drawn (real touches) ms':<48} {pct(touch, 0.5) * 1e3:>8.1f}"
            f" {p95 * 1e3:>8.1f} {len(touch):>5}  p95 <= {GOAL_TAP_P95_S * 1e3:.0f} ms:"
            f" {verdict(p95 <= GOAL_TAP_P95_S)}"
        )
        warm = touch[tapped.get("touch_first_cycle", 0) :]
        if warm and len(warm) < len(touch):
            lines.append(
                f"{'  after the first cycle (every screen built)':<48} {pct(warm, 0.5) * 1e3:>8.1f}"
                f" {pct(warm, 0.95) * 1e3:>8.1f} {len(warm):>5}  p95 <= {GOAL_TAP_P95_S * 1e3:.0f}"
                f" ms: {verdict(pct(warm, 0.95) <= GOAL_TAP_P95_S)}"
            )
        for label, samples in tapped["touch_by_step_s"].items():
            lines.append(
                f"{'  ' + label:<48} {pct(samples, 0.5) * 1e3:>8.1f}"
                f" {pct(samples, 0.95) * 1e3:>8.1f} {len(samples):>5}"
            )
    reader, frame = tapped.get("reader_s", []), tapped.get("bare_s", [])
    if reader:
        lines.append(
            f"{'reader event -> member screen drawn ms':<48} {pct(reader, 0.5) * 1e3:>8.1f}"
            f" {pct(reader, 0.95) * 1e3:>8.1f} {len(reader):>5}"
        )
        lines.append(
            f"{'  limit: member screen drawn, no reader/lookup':<48}"
            f" {pct(frame, 0.5) * 1e3:>8.1f} {pct(frame, 0.95) * 1e3:>8.1f} {len(frame):>5}"
        )
    lines.append(
        f"embedded ledger (default config): cold start to first frame: median {cold:.2f} s"
        f" of {len(colds)}"
        f" (runs {', '.join(f'{c:.2f}' for c in colds)}); bare Kivy label app"
        f" {bare['cold_start_s']:.2f} s; goal <= {GOAL_COLD_START_S} s:"
        f" {verdict(cold <= GOAL_COLD_START_S)}"
    )
    cpus = [run["cold_start_cpu_s"] for run in [tapped, *result["startups"]]]
    lines.append(
        f"  CPU time to first frame (less load-dependent): median"
        f" {statistics.median(cpus):.2f} s; bare Kivy label app {bare['cold_start_cpu_s']:.2f} s"
    )
    lines.append(
        f"embedded ledger (default config): resident memory: {start_mem['rss']:.0f} MB after"
        f" start, {end_mem['rss']:.0f} MB"
        f" after {len(touch) + len(reader) * 2} taps (worst of {len(rss_all)} readings"
        f" {rss_worst:.0f} MB); goal <= {GOAL_RSS_MB:.0f} MB: {verdict(rss_worst <= GOAL_RSS_MB)}"
    )
    if "memory_idle" in tapped:
        lines.append(
            f"  then {tapped['idle_wait_s']:.0f} s at idle (freed memory returned):"
            f" {tapped['memory_idle']['rss']:.0f} MB"
        )
    lines.append(
        f"  of which GL driver libraries (libLLVM, Mesa dri, GL/EGL) {start_mem['driver']:.0f} MB;"
        f" PSS {start_mem['pss']:.0f} MB; floor: a bare Kivy label app"
        f" {bare['memory_start']['rss']:.0f} MB (driver {bare['memory_start']['driver']:.0f} MB)"
    )
    http = result.get("http", [])
    if http:
        http_cold = statistics.median(run["cold_start_s"] for run in http)
        http_rss = [run["memory_start"]["rss"] for run in http]
        sqlalchemy = any(run.get("sqlalchemy_loaded") for run in http)
        runs = ", ".join(f"{run['cold_start_s']:.2f}" for run in http)
        lines.append(
            f"HTTP backend (production config, stub server on loopback; start figures only):"
            f" cold start median {http_cold:.2f} s of {len(http)}"
            f" (runs {runs}; CPU median"
            f" {statistics.median(run['cold_start_cpu_s'] for run in http):.2f} s):"
            f" {verdict(http_cold <= GOAL_COLD_START_S)}; RSS after start worst of"
            f" {len(http)} {max(http_rss):.0f} MB: {verdict(max(http_rss) <= GOAL_RSS_MB)};"
            f" SQLAlchemy {'LOADED' if sqlalchemy else 'not loaded'}"
        )
    return lines


def fmt_load(load: tuple[float, float, float] | list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", type=int, default=200)
    parser.add_argument("--reader", type=int, default=None, help="reader events (default: --taps)")
    parser.add_argument("--starts", type=int, default=5, help="more app processes for cold start")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    if args.child:
        spawned = float(os.environ.get("POS_BENCH_SPAWNED") or time.perf_counter())
        if args.bare:
            bare_child(Path(args.child), spawned)
        elif args.seed:
            seed(Path(args.data))
            Path(args.child).write_text("{}")
        else:
            child(
                args.taps,
                args.reader or 0,
                Path(args.data),
                Path(args.child),
                spawned,
                args.backend,
            )
        return
    result = measure(args.taps, args.starts, args.reader)
    if args.json:
        print(json.dumps(result, indent=1))
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
