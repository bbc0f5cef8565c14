"""The Reader protocol and the registry that picks a driver from config by name.

A driver is built with its config section and a sink (a callable taking ScanEvent or
ReaderStatus); `open()` starts its work (a thread, a socket), `close()` stops it. Nothing
opens a device at import time; optional libraries are imported inside `open()`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pos_client.events import ReaderStatus, ScanEvent

Sink = Callable[[ScanEvent | ReaderStatus | Any], None]


class DriverUnavailable(RuntimeError):
    """A driver's library or device is missing; the message says what to install or check."""


class ReaderInUse(DriverUnavailable):
    """Another process (a running terminal) has this reader open: it was left alone."""


class Reader(Protocol):
    name: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str:
        """One line for `doctor` and the admin screen: what it is and how it is doing."""
        ...

    def problem(self) -> str | None:
        """What is wrong with this reader now, or None when it works."""
        ...


# name -> "module:Class", imported only when a config asks for that driver.
REGISTRY: dict[str, str] = {
    "pcsc": "drivers.pcsc:PcscReader",
    "serial": "drivers.serial_scanner:SerialScanner",
    "wedge-evdev": "drivers.wedge:EvdevWedgeReader",
    "simulated": "drivers.simulated:SimulatedReader",
    "camera": "drivers.camera:CameraReader",
}


def driver_class(kind: str) -> type[Any]:
    target = REGISTRY.get(kind)
    if target is None:
        known = ", ".join(sorted(REGISTRY))
        raise DriverUnavailable(f"unknown reader driver {kind!r} (known: {known})")
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    cls: type[Any] = getattr(module, class_name)
    return cls


def build_reader(kind: str, name: str, options: Mapping[str, Any], sink: Sink) -> Reader:
    reader: Reader = driver_class(kind)(name=name, options=options, sink=sink)
    return reader


# Printer kinds (the link to the printer) -> "module:Class"; all speak ESC/POS today.
PRINTERS: dict[str, str] = {
    kind: "drivers.escpos_printer:EscposPrinter" for kind in ("network", "usb", "serial", "file")
}


def build_printer(kind: str, name: str, options: Mapping[str, Any]) -> Any:
    """A printer driver from its config table; opens nothing (each job opens the link)."""
    target = PRINTERS.get(kind)
    if target is None:
        known = ", ".join(sorted(PRINTERS))
        raise DriverUnavailable(f"unknown printer kind {kind!r} (known: {known})")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(name=name, kind=kind, options=options)


def require_module(module: str, install_hint: str) -> Any:
    """Import an optional hardware library, or say clearly how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DriverUnavailable(f"{module} is not installed ({exc}); {install_hint}") from None
