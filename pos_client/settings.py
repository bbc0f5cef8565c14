"""Typed settings: config/default.toml, then a user file, then environment overrides.

Environment: POS_CLIENT_CONFIG=FILE picks the user file; POS_CLIENT__SECTION__KEY=value
overrides one key; POS_CLIENT_CONFIG_DIR points at another config folder (presets).
Every problem is one ConfigError line naming the key and where it was set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pos_client.configfile import ConfigError, Section, load_toml

ENV_PREFIX = "POS_CLIENT__"
ENV_CONFIG_FILE = "POS_CLIENT_CONFIG"
ENV_CONFIG_DIR = "POS_CLIENT_CONFIG_DIR"
LANGUAGES = ("en", "ru", "uk", "el")


class Mode(StrEnum):
    CASHIER = "cashier"
    KIOSK = "kiosk"


class BackendKind(StrEnum):
    EMBEDDED = "embedded"
    HTTP = "http"


@dataclass(frozen=True)
class TerminalSettings:
    id: str
    mode: Mode
    language: str
    fullscreen: bool = False
    inactivity_s: float = 45.0
    # A purchase above this amount (in the programme's currency) is confirmed before it is
    # recorded: a slip on the keypad (700 for 7.00) must not earn a fortune.
    confirm_amount_over: Decimal = Decimal("1000.00")
    # The most one sale may total; the store server refuses more (LOYALTY_SERVER_MAX_SALE_
    # AMOUNT, the same default): refused here before it is recorded, not after it syncs.
    max_sale_amount: Decimal = Decimal("100000")
    # The coalition merchant whose till this is ("" = the operator's, or no coalition): the
    # preview earns at its rates; the store server applies its own record of the terminal.
    merchant: str = ""


@dataclass(frozen=True)
class AdminSettings:
    pin: str
    max_attempts: int
    lockout_s: float


@dataclass(frozen=True)
class StoreSettings:
    name: str
    region: str
    timezone: str


@dataclass(frozen=True)
class BackendSettings:
    kind: BackendKind
    url: str
    token_file: str
    connect_timeout_s: float
    read_timeout_s: float
    card_keys_file: str = ""  # embedded: the secure cards' keys (pos_client.sun.load_sun_keys)


@dataclass(frozen=True)
class StorageSettings:
    data_dir: Path
    ledger_url: str

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    @property
    def lookup_key_path(self) -> Path:
        return self.data_dir / "lookup.key"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite"


@dataclass(frozen=True)
class SyncSettings:
    batch_size: int
    interval_s: float
    backoff_base_s: float
    backoff_cap_s: float
    # Acknowledged entries are kept this long (for staff and receipts), then deleted.
    acked_retention_days: int = 30


@dataclass(frozen=True)
class OfflineSettings:
    redeem_cap_points: int
    redeem_on_uid: bool


@dataclass(frozen=True)
class KioskSettings:
    # A phone number is not a secret: at a kiosk (no staff watching) a member found by a
    # typed number alone may earn but not spend, unless this is set.
    spend_by_phone: bool = False


@dataclass(frozen=True)
class WedgeSettings:
    min_length: int
    max_gap_ms: Decimal
    max_length: int


@dataclass(frozen=True)
class ReaderSettings:
    kind: str  # a name in drivers.base.REGISTRY
    name: str
    options: dict[str, Any]  # driver-specific keys, checked by the driver


@dataclass(frozen=True)
class PrinterSettings:
    kind: str  # a connection in drivers.escpos_printer.CONNECTIONS: network, usb, serial, file
    name: str
    options: dict[str, Any]  # host, port, profile, ...: checked by the driver


@dataclass(frozen=True)
class Settings:
    terminal: TerminalSettings
    store: StoreSettings
    program: str
    backend: BackendSettings
    storage: StorageSettings
    sync: SyncSettings
    offline: OfflineSettings
    consent_text_id: str
    phone_key_file: Path
    config_dir: Path
    sources: tuple[str, ...]
    readers: tuple[ReaderSettings, ...] = ()
    printers: tuple[PrinterSettings, ...] = ()
    lookup_key_file: Path | None = None  # None: lookup.key in the data folder
    offline_lookup_days: int = 30
    wedge: WedgeSettings = WedgeSettings(4, Decimal(50), 128)
    admin: AdminSettings = AdminSettings("2468", 3, 60.0)
    kiosk: KioskSettings = KioskSettings()


def default_config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "config"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("pos-client", appauthor=False))


def _merge(
    base: dict[str, Any],
    layer: Mapping[str, Any],
    source: str,
    origins: dict[str, str],
    prefix: str = "",
) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"config key '{dotted}' ({source}): unknown key")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{dotted}' ({source}): expected a table")
            _merge(base[key], value, source, origins, f"{dotted}.")
        else:
            base[key] = value
            origins[dotted] = source


def env_layer(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    layer: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"environment variable {name}: use {ENV_PREFIX}SECTION__KEY")
        layer.setdefault(parts[0], {})[parts[1]] = value
    return layer


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    env = os.environ if env is None else env
    config_dir = config_dir or default_config_dir()
    default_path = config_dir / "default.toml"
    merged = load_toml(default_path)
    origins: dict[str, str] = {}
    sources = [str(default_path)]
    user_file = config_file or env.get(ENV_CONFIG_FILE)
    if user_file:
        user_path = Path(user_file).expanduser()
        _merge(merged, load_toml(user_path), str(user_path), origins)
        sources.append(str(user_path))
    for section, values in env_layer(env).items():
        if section not in merged:
            raise ConfigError(
                f"environment variable {ENV_PREFIX}{section.upper()}__...: "
                f"unknown section '{section}'"
            )
        _merge(merged, {section: values}, "environment", origins)
    if any(origin == "environment" for origin in origins.values()):
        sources.append("environment")
    return parse_settings(Section(merged, str(default_path), "", origins), config_dir, sources)


def parse_settings(root: Section, config_dir: Path, sources: list[str]) -> Settings:
    terminal = root.table("terminal")
    language = terminal.text("language")
    if language not in LANGUAGES:
        raise terminal.fail("language", f"expected one of {', '.join(LANGUAGES)}; got {language!r}")
    terminal_id = terminal.text("id")
    problem = terminal_id_problem(terminal_id)
    if problem:
        raise terminal.fail("id", problem)
    merchant = terminal.text("merchant", "")
    if merchant and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", str(merchant)):
        raise terminal.fail(
            "merchant", "a merchant id of the programme: up to 32 of a-z, 0-9, '-' and '_'"
        )
    store = root.table("store")
    timezone = store.text("timezone")
    if not known_timezone(timezone):
        raise store.fail(
            "timezone", f"not a known time zone: {timezone!r} (an IANA name, e.g. Europe/Riga)"
        )
    region = store.text("region").upper()
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise store.fail("region", f"not a known region code: {region!r} (e.g. US, RU, UA, GR)")
    storage = root.table("storage")
    data_dir = Path(storage.text("data_dir")).expanduser() if storage.text("data_dir") else None
    data_dir = data_dir or default_data_dir()
    backend = root.table("backend")
    kind = backend.choice("kind", BackendKind)
    url = backend.text("url")
    if kind is BackendKind.HTTP and not url.startswith(("http://", "https://")):
        raise backend.fail("url", "backend.kind is http, so url must start with https://")
    if kind is BackendKind.HTTP and url.startswith("http://") and not _loopback(url):
        # The token and phone numbers would cross the network in clear.
        raise backend.fail("url", "plain http:// only to this machine (loopback); use https://")
    sync = root.table("sync")
    offline = root.table("offline")
    privacy = root.table("privacy")
    key_file = privacy.text("phone_key_file")
    lookup_key = privacy.text("lookup_key_file")
    wedge = root.table("wedge")
    return Settings(
        terminal=TerminalSettings(
            id=terminal_id,
            mode=terminal.choice("mode", Mode),
            language=language,
            fullscreen=terminal.flag("fullscreen"),
            inactivity_s=float(terminal.decimal("inactivity_s", minimum=Decimal(5))),
            confirm_amount_over=terminal.decimal(
                "confirm_amount_over", Decimal("1000.00"), minimum=Decimal(0)
            ),
            max_sale_amount=terminal.decimal(
                "max_sale_amount", Decimal("100000"), minimum=Decimal(1)
            ),
            merchant=merchant,
        ),
        admin=parse_admin(root.table("admin")),
        store=StoreSettings(name=store.text("name"), region=region, timezone=timezone),
        program=root.table("program").text("preset"),
        backend=BackendSettings(
            kind=kind,
            url=url,
            token_file=backend.text("token_file"),
            connect_timeout_s=float(backend.decimal("connect_timeout_s", minimum=Decimal("0.1"))),
            read_timeout_s=float(backend.decimal("read_timeout_s", minimum=Decimal("0.1"))),
            card_keys_file=backend.text("card_keys_file", ""),
        ),
        storage=StorageSettings(data_dir=data_dir, ledger_url=storage.text("ledger_url")),
        sync=SyncSettings(
            batch_size=sync.integer("batch_size", minimum=1),
            interval_s=float(sync.decimal("interval_s", minimum=Decimal("0.01"))),
            backoff_base_s=float(sync.decimal("backoff_base_s", minimum=Decimal("0.001"))),
            backoff_cap_s=float(sync.decimal("backoff_cap_s", minimum=Decimal("0.001"))),
            acked_retention_days=bounded(sync, "acked_retention_days", 1, MAX_RETENTION_DAYS),
        ),
        offline=OfflineSettings(
            redeem_cap_points=offline.integer("redeem_cap_points", minimum=0),
            redeem_on_uid=offline.flag("redeem_on_uid"),
        ),
        kiosk=KioskSettings(spend_by_phone=root.table("kiosk").flag("spend_by_phone")),
        consent_text_id=root.table("enrollment").text("consent_text_id"),
        phone_key_file=Path(key_file).expanduser() if key_file else data_dir / "phone.key",
        lookup_key_file=Path(lookup_key).expanduser() if lookup_key else None,
        offline_lookup_days=bounded(privacy, "offline_lookup_days", 1, MAX_OFFLINE_LOOKUP_DAYS),
        config_dir=config_dir,
        sources=tuple(sources),
        readers=parse_readers(root),
        printers=parse_printers(root),
        wedge=WedgeSettings(
            min_length=wedge.integer("min_length", minimum=2),
            max_gap_ms=wedge.decimal("max_gap_ms", minimum=Decimal(1)),
            max_length=wedge.integer("max_length", minimum=4),
        ),
    )


TERMINAL_ID_MAX = 64


def terminal_id_problem(value: str) -> str | None:
    """Why a terminal id would break every sale (it is sent with each), or None."""
    if not value or not value.strip():
        return "must not be empty"
    if len(value) > TERMINAL_ID_MAX:
        return f"at most {TERMINAL_ID_MAX} characters, got {len(value)}"
    if not value.isprintable() or value != value.strip():
        return "letters, digits and punctuation only: no control characters or edge spaces"
    return None


def known_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or not name.isascii() or "\x00" in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def parse_admin(admin: Section) -> AdminSettings:
    pin = admin.text("pin")
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise admin.fail("pin", "a staff PIN is 4 to 12 digits 0-9")
    return AdminSettings(
        pin=pin,
        max_attempts=admin.integer("max_attempts", minimum=1),
        lockout_s=float(admin.decimal("lockout_s", minimum=Decimal(1))),
    )


MAX_TCP_PORT = 65535  # 0: any free port, where a reader allows it


def driver_tables(
    root: Section, array: str, noun: str
) -> list[tuple[Section, str, dict[str, Any]]]:
    """Each `[[array]]` table with its unique name ("reader0" when unnamed) and its
    driver-specific options (every key but kind and name, checked by the driver)."""
    tables = []
    names: set[str] = set()
    for index, table in enumerate(root.tables(array)):
        name = table.text("name", f"{noun}{index}")
        if not name.strip() or len(name) > 64 or not name.isprintable():
            raise table.fail("name", "expected a short name of printable characters")
        if name in names:
            raise table.fail("name", f"two {noun}s are called {name!r}")
        names.add(name)
        options = {k: v for k, v in table.data.items() if k not in ("kind", "name")}
        tables.append((table, name, options))
    return tables


def parse_readers(root: Section) -> tuple[ReaderSettings, ...]:
    readers = []
    for reader, name, options in driver_tables(root, "readers", "reader"):
        if not isinstance(options.get("port"), str | None):  # a TCP port (a serial one is a path)
            reader.integer("port", minimum=0, maximum=MAX_TCP_PORT)
        readers.append(ReaderSettings(reader.text("kind"), name, options))
    return tuple(readers)


def parse_printers(root: Section) -> tuple[PrinterSettings, ...]:
    return tuple(
        PrinterSettings(printer.text("kind"), name, options)
        for printer, name, options in driver_tables(root, "printers", "printer")
    )


MAX_RETENTION_DAYS = 3650  # as long as a lifetime may be (a date past that overflows)
MAX_OFFLINE_LOOKUP_DAYS = 3650  # ten years: past that a date overflows, and it is no "lifetime"


def bounded(section: Any, name: str, minimum: int, maximum: int) -> int:
    value: int = section.integer(name, minimum=minimum)
    if value > maximum:
        raise section.fail(name, f"must be at most {maximum}, got {value}")
    return value


def _loopback(url: str) -> bool:
    """Whether the URL's host is this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
