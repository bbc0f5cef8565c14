"""The running app's speed and size, measured in one run.

  tap-to-screen: a simulated reader event -> the member screen drawn (the frame flipped),
                 over 200 taps, beside a bare switch to the same screen (the frame limit);
  cold start:    process start -> first frame of the idle screen, 3 runs;
  memory:        resident set size after start and after the 200 taps.
Runs offscreen (SDL over EGL) when there is no display.
Usage: python benchmarks/ui_latency.py [--taps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

START = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def child(taps: int, result_file: Path) -> None:
    """One app process: report cold start, then tap `taps` times."""
    from pos_client.bootstrap import build_app, run_terminal
    from pos_client.demo import DEMO_MEMBERS, seed_demo_members
    from tests.conftest import make_settings
    from ui.demo import on, simulated
    from ui.script import run_app_with_script

    data = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    settings = make_settings(data)
    results: dict[str, Any] = {}
    with run_terminal(settings) as running:
        assert running.terminal.ledger is not None
        seed_demo_members(running.terminal.ledger, running.terminal.checkout.hasher)
        app = build_app(settings, running)
        drawn: list[float] = []
        app.on_screen_drawn = lambda _event, at: drawn.append(at)

        def script(app: Any) -> Generator[Any, None, None]:
            from kivy.core.window import Window

            results["cold_start_s"] = time.perf_counter() - START
            results["rss_start_mb"] = rss_mb()
            sim = simulated(app)
            uids = [m.card_uid for m in DEMO_MEMBERS if m.card_uid]
            sessions = [app.running.terminal.checkout.identify(uid, "nfc") for uid in uids]
            tap_samples, bare_samples = [], []
            for index in range(taps):
                app.nav.go_idle()
                yield 0.02
                before = len(drawn)
                start = time.perf_counter()
                sim.inject({"cmd": "tap", "value": uids[index % len(uids)]})
                yield lambda before=before: len(drawn) > before
                tap_samples.append(drawn[-1] - start)
                # The limit: drawing the same screen for an already identified member
                # (text layout and one frame), with no reader, router or lookup.
                app.nav.go("idle")
                yield 0.02
                flips: list[float] = []

                def flipped(*_args: Any, flips: list[float] = flips) -> None:
                    flips.append(time.perf_counter())

                start = time.perf_counter()
                app.customer.session = sessions[(index + 2) % len(sessions)]  # other text to draw
                app.nav.go("member")
                Window.bind(on_flip=flipped)
                yield lambda flips=flips: bool(flips)
                Window.unbind(on_flip=flipped)
                bare_samples.append(flips[0] - start)
            yield on(app, "member")
            results["tap_s"] = tap_samples
            results["bare_s"] = bare_samples
            results["rss_end_mb"] = rss_mb()

        run_app_with_script(app, script)
    result_file.write_text(json.dumps(results))


def measure(taps: int) -> list[dict[str, Any]]:
    """Three app processes: the first taps `taps` times; all three give a cold start."""
    runs = []
    for index in range(3):
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        env = {**os.environ, "KIVY_HOME": tempfile.mkdtemp(prefix="kivy-")}
        command = [
            sys.executable,
            __file__,
            "--child",
            str(out),
            "--taps",
            str(taps if index == 0 else 1),
        ]
        subprocess.run(
            command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        runs.append(json.loads(out.read_text()))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.taps, Path(args.child))
        return
    runs = measure(args.taps)
    first = runs[0]
    tap, bare = first["tap_s"], first["bare_s"]
    print(f"machine: {os.cpu_count()} cores; offscreen={not os.environ.get('DISPLAY')}")
    print(f"{'':<46} {'p50 ms':>9} {'p95 ms':>9} {'n':>5}")
    print(
        f"{'tap-to-member-screen drawn (simulated reader)':<46} "
        f"{pct(tap, 0.5) * 1e3:>9.1f} {pct(tap, 0.95) * 1e3:>9.1f} {len(tap):>5}"
    )
    print(
        f"{'  limit: member screen drawn, no reader/lookup':<46} "
        f"{pct(bare, 0.5) * 1e3:>9.1f} {pct(bare, 0.95) * 1e3:>9.1f} {len(bare):>5}"
    )
    print(f"  ratio tap / bare frame (p50): {pct(tap, 0.5) / pct(bare, 0.5):.2f}x")
    colds = [run["cold_start_s"] for run in runs]
    print(
        f"cold start to first frame: median {statistics.median(colds):.2f} s"
        f" (runs: {', '.join(f'{c:.2f}' for c in colds)})"
    )
    print(
        f"resident memory: {first['rss_start_mb']:.0f} MB after start,"
        f" {first['rss_end_mb']:.0f} MB after {len(tap)} taps"
    )


if __name__ == "__main__":
    main()
