"""Hardware probes for `pos-client doctor`: PC/SC readers and cards, serial ports, and
whether each configured driver opens and finds its device."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from drivers.base import DriverUnavailable, ReaderInUse
from drivers.pcsc import CardReadError, connected_card, parse_atr
from pos_client.doctor import Check
from pos_client.ntag424 import (
    SELECT_NDEF_APPLICATION,
    NoUrl,
    Ntag424Error,
    read_url,
    read_version,
)
from pos_client.sun import SunKeys, SunRefused


def probe_pcsc(required: bool, card_keys: SunKeys | None = None) -> list[Check]:
    """PC/SC readers and cards; a missing service is a problem only if a pcsc reader is set.
    A secure card (NTAG 424 DNA) on a reader is named, and its message verified when this
    terminal holds the card keys."""
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
                if not info.storage:  # ISO 14443-4: maybe a secure card
                    secure = probe_secure_card(reader, card_keys)
                    if secure is not None:
                        rows.append(secure)
                        continue
            else:
                detail = f"{reader}: no card"
            rows.append(Check("pc/sc reader", True, detail))
        return rows
    finally:
        scard.SCardReleaseContext(context)


def probe_secure_card(reader: str, keys: SunKeys | None) -> Check | None:
    """An NTAG 424 DNA on `reader`: blank, or issued and whether its message verifies with
    the card keys (a read raises the card's counter; nothing is recorded). None: the card
    on the reader is no NTAG 424 DNA."""
    name = "pc/sc secure card"
    try:
        with connected_card(reader) as card:
            if card.transmit(SELECT_NDEF_APPLICATION)[-2:] != b"\x90\x00":
                return None
            version = read_version(card.transmit)
            if version.name is None:
                return None
            try:
                url = read_url(card.transmit)
            except NoUrl:
                return Check(name, True, f"{reader}: {version.name}, blank (not issued)")
            except Ntag424Error as exc:
                return Check(
                    name,
                    True,
                    f"{reader}: {version.name} holding another NDEF message ({exc}): not "
                    "issued by this programme",
                )
    except (CardReadError, Ntag424Error) as exc:
        return Check.warning(name, f"{reader}: the card could not be read: {exc}")
    if keys is None:
        return Check(
            name,
            True,
            f"{reader}: {version.name} with a secure message (the store server verifies it "
            "at a tap: this terminal holds no card keys)",
        )
    try:
        tap = keys.verify_url(url)
    except SunRefused as refused:
        return Check.warning(
            name,
            f"{reader}: {version.name} whose message does not verify ({refused.reason}): "
            "another programme's card, a copy, or one partly issued here (run `pos-client "
            "card issue` again to finish it)",
        )
    return Check(
        name, True, f"{reader}: {version.name}, its message verifies (read counter {tap.counter})"
    )


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
