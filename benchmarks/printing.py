"""Receipt printing (issue 14): bytes per receipt and the time to print one on a network
ESC/POS printer on loopback (tests/escpos_test_printer.py: it keeps the bytes and answers
status queries), through the driver as a terminal prints: render, status query, send.
Beside it, rendering alone (no device) and a bare socket send of the same bytes.

Per language: English and Russian in the printer's code pages, Greek on a printer whose
profile has no Greek code page (its lines drawn as images).

Usage: python benchmarks/printing.py [--receipts 200]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from drivers.base import build_printer
from pos_client.printing import ReceiptLines, receipt_job
from tests.escpos_test_printer import LoopbackPrinter, wait_for

KEY = "0193c5a2-7f00-7abc-8def-0123456789ab"
RECEIPTS = {
    ("en", "default"): ReceiptLines(
        "Corner Shop",
        "26 Nov 2026, 21:30",
        "Member: Anna K.",
        ("Earned: +12 points", "Spent: 500 points on Coffee", "Balance: 1,240 points"),
        "Sale",
    ),
    ("ru", "default"): ReceiptLines(
        "Магазин у дома",
        "26 ноября 2026 г., 21:30",
        "Участник: Анна К.",
        ("Начислено: +12 баллов", "Списано: 500 баллов на Кофе", "Баланс: 1 240 баллов"),
        "Продажа",
    ),
    ("el", "simple"): ReceiptLines(
        "Μαγαζί της γειτονιάς",
        "26 Νοε 2026, 21:30",
        "Μέλος: Άννα Κ.",
        ("Κέρδος: +12 πόντοι", "Εξαργύρωση: 500 πόντοι για Καφέ", "Υπόλοιπο: 1.240 πόντοι"),
        "Πώληση",
    ),
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class PrintFigure:
    label: str
    receipt_bytes: int
    prints: list[float]  # seconds a receipt, through the driver
    renders: list[float]
    bare_sends: list[float]


def measure(receipts: int) -> list[PrintFigure]:
    figures = []
    with LoopbackPrinter() as printer:
        for (language, profile), lines in RECEIPTS.items():
            driver = build_printer(
                "network", "bench", {"host": "127.0.0.1", "port": printer.port, "profile": profile}
            )
            job = receipt_job(KEY, lines)
            data = driver.render(job)
            renders, prints, bares = [], [], []
            for _ in range(receipts):
                started = time.perf_counter()
                driver.render(job)
                renders.append(time.perf_counter() - started)
                started = time.perf_counter()
                driver.print_job(job)
                prints.append(time.perf_counter() - started)
                started = time.perf_counter()
                with socket.create_connection(("127.0.0.1", printer.port)) as bare:
                    bare.sendall(data)
                bares.append(time.perf_counter() - started)
            assert wait_for(lambda: len(printer.jobs) >= 2 * receipts, 30)
            printer.jobs.clear()
            figures.append(
                PrintFigure(f"{language} ({profile} profile)", len(data), prints, renders, bares)
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.receipts} receipts per row; printer on 127.0.0.1 (a loopback TCP server)")
    print(
        f"{'receipt':<24}{'bytes':>8}{'print p50 ms':>14}{'p95 ms':>9}"
        f"{'render p50':>12}{'bare send p50':>15}{'print / bare':>14}"
    )
    for figure in measure(args.receipts):
        p50, bare50 = statistics.median(figure.prints), statistics.median(figure.bare_sends)
        print(
            f"{figure.label:<24}{figure.receipt_bytes:>8}"
            f"{p50 * 1000:>14.2f}{percentile(figure.prints, 0.95) * 1000:>9.2f}"
            f"{statistics.median(figure.renders) * 1000:>12.2f}{bare50 * 1000:>15.3f}"
            f"{p50 / bare50:>13.1f}x"
        )


if __name__ == "__main__":
    main()
