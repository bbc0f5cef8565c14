"""Hardware probes for `pos-client doctor`: PC/SC readers and cards, serial ports, and
whether each configured driver opens and finds its device."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from drivers.base import DriverUnavailable, ReaderInUse
from drivers.pcsc import parse_atr
from pos_client.doctor import Check


def probe_pcsc(required: bool) -> list[Check]:
    """PC/SC readers and cards; a missing service is a problem only if a pcsc reader is set."""
    unused = "" if required else " (not used: no pcsc reader in the config)"
    try:
        from smartcard import scard
    except ImportError:
        return [Check("pc/sc", not required, f"pyscard not installed: readers not checked{unused}")]
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        message = scard.SCardGetErrorMessage(hresult)
        return [
            Check(
                "pc/sc",
                not required,
                f"PC/SC service unavailable: {message} (is pcscd running?)" + unused,
            )
        ]
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult != 0 or not readers:
            return [Check("pc/sc", not required, "pcscd running, no reader connected" + unused)]
        rows = []
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE) for reader in readers]
        )
        for reader, state, atr in states if hresult == 0 else []:
            if state & scard.SCARD_STATE_PRESENT:
                info = parse_atr(bytes(atr))
                detail = f"{reader}: {info.name or 'a card'} present"
                if info.standard:
                    detail += f" ({info.standard})"
            else:
                detail = f"{reader}: no card"
            rows.append(Check("pc/sc reader", True, detail))
        return rows
    finally:
        scard.SCardReleaseContext(context)


def probe_serial_ports() -> list[Check]:
    try:
        from serial.tools import list_ports
    except ImportError:
        return [Check("serial", True, "pyserial not installed: serial ports not checked")]
    ports = list(list_ports.comports())
    if not ports:
        return [Check("serial", True, "no serial ports found")]
    return [Check("serial port", True, f"{port.device}: {port.description}") for port in ports]


def probe_readers(readers: Sequence[Any], settle_s: float = 1.5) -> list[Check]:
    """Open each configured reader, give it a moment to find its device, and report."""
    rows = []
    for reader in readers:
        try:
            reader.open()
        except ReaderInUse as exc:  # a running terminal has it: not ours to open or test
            rows.append(Check(f"reader {reader.name}", True, str(exc)))
            continue
        except DriverUnavailable as exc:
            rows.append(Check(f"reader {reader.name}", False, str(exc)))
            continue
        try:
            deadline = time.monotonic() + settle_s
            while reader.problem() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            problem = reader.problem()
            detail = reader.describe() if problem is None else problem
            rows.append(Check(f"reader {reader.name}", problem is None, detail))
        finally:
            reader.close()
    return rows
