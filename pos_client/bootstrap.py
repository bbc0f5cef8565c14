"""The composition root: settings -> program, storage, backend, sync, checkout.

The only module that knows every part. Drivers and the UI are built here too, imported
lazily inside the functions that need them, so the core never depends on them.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pos_client.backends.switch import NetworkSwitch
from pos_client.checkout import Checkout, CheckoutPolicy
from pos_client.configfile import ConfigError
from pos_client.deferred import Deferred
from pos_client.errors import LedgerSchemaError
from pos_client.events import EventBus
from pos_client.files import private_dir, private_file, tighten_descriptor, tighten_folder
from pos_client.heartbeat import HeartbeatPolicy, ReaderStates
from pos_client.outbox import Outbox
from pos_client.ports import Backend
from pos_client.printing import PrintService
from pos_client.privacy import OfflineLookupKey, PhoneHasher, load_or_create_key
from pos_client.program import load_program, load_program_document, resolve_program_path
from pos_client.program_updates import (
    PROGRAM_CACHE_FILE,
    ProgramCache,
    ProgramChanged,
    ProgramUpdater,
)
from pos_client.queue_service import QueueService
from pos_client.rules import Program
from pos_client.settings import BackendKind, Settings
from pos_client.sync import SyncPolicy, SyncWorker

if TYPE_CHECKING:
    from pos_client.ledger import Ledger

log = logging.getLogger(__name__)
EMBEDDED_EXPIRY_AT = time(3, 30)  # store time: the embedded ledger's daily expiry run


@dataclass
class Terminal:
    """Everything one terminal runs on, with one lifecycle."""

    settings: Settings
    program: Program
    bus: EventBus
    outbox: Outbox
    network: NetworkSwitch
    sync: SyncWorker
    checkout: Checkout
    ledger: Ledger | None = None  # set for the embedded backend
    _closers: list[Callable[[], None]] = field(default_factory=list)
    queue: QueueService = field(init=False)  # staff's report, retry and sync now

    def __post_init__(self) -> None:
        self.queue = QueueService(self.outbox, self.sync)

    def adopt_program(self, program: Program, version: str) -> None:
        """Preview with the store server's programme from now on (the sync thread calls
        this; the UI hears ProgramChanged and follows on its own clock)."""
        self.program = program
        self.checkout.program = program
        self.checkout.program_version = version
        self.bus.publish(ProgramChanged(program.id, version))

    def close(self) -> None:
        self.sync.stop()
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def build_ledger(settings: Settings, program: Program) -> Ledger:
    # Imported here: SQLAlchemy costs ~26 MB and ~0.5 s, and a terminal on the store
    # server's HTTP backend never needs it.
    from zoneinfo import ZoneInfo

    from pos_client.ledger import Ledger, make_engine, sqlite_url

    private_dir(settings.storage.data_dir)
    if not settings.storage.ledger_url:
        private_file(settings.storage.ledger_path)
    url = settings.storage.ledger_url or sqlite_url(settings.storage.ledger_path)
    ledger = Ledger(
        make_engine(url),
        program,
        zone=ZoneInfo(settings.store.timezone),
        merchant=settings.terminal.merchant,
    )
    ledger.create_schema()
    return ledger


def _embedded(settings: Settings, program: Program) -> tuple[Backend, Ledger | None]:
    from pos_client.backends.embedded import EmbeddedBackend

    ledger = build_ledger(settings, program)
    return EmbeddedBackend(ledger, _card_keys(settings), settings.terminal.id), ledger


def _card_keys(settings: Settings) -> Any:
    """The embedded ledger's secure-card keys, or None (its terminal then refuses secure
    cards: it cannot check them). A bad file is a ConfigError with its reason."""
    from pos_client.sun import load_sun_keys

    name = settings.backend.card_keys_file
    if not name:
        return None
    try:
        return load_sun_keys(Path(name).expanduser())
    except ValueError as exc:
        raise ConfigError(f"config key 'backend.card_keys_file': {exc}") from None


MAX_TOKEN_BYTES = 512


def _token_problem(token: str) -> str | None:
    if len(token) > MAX_TOKEN_BYTES or not token.isascii() or not token.isprintable():
        return f"not a token (printable ASCII of at most {MAX_TOKEN_BYTES} characters)"
    if any(char.isspace() for char in token):
        return "not a token (it holds spaces)"
    return None


def _read_token_file(path: Path) -> str:
    """The token file's text: a regular file (never followed through a symbolic link, a
    FIFO never blocks), read bounded, ASCII. Raises ConfigError naming what is wrong."""
    refused = f"config key 'backend.token_file': {path}"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{refused} is a symbolic link: not read") from None
        raise ConfigError(f"{refused} cannot be read: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError(f"{refused} is not a regular file: not read")
        tighten_descriptor(handle.fileno())
        try:
            raw = handle.read(MAX_TOKEN_BYTES + 2)
        except OSError as exc:
            raise ConfigError(f"{refused} cannot be read: {exc.strerror}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{refused} is not a token (not ASCII text)") from None
    problem = _token_problem(token)
    if problem:
        raise ConfigError(f"{refused} is {problem}")
    return token


def read_token(settings: Settings) -> str:
    """The terminal token: POS_CLIENT_TOKEN, else backend.token_file, else token in data_dir."""
    token = os.environ.get("POS_CLIENT_TOKEN", "").strip()
    if token:
        problem = _token_problem(token)
        if problem:
            raise ConfigError(f"POS_CLIENT_TOKEN is {problem}")
        return token
    path = Path(settings.backend.token_file or settings.storage.data_dir / "terminal.token")
    token = _read_token_file(path.expanduser())
    if not token:
        raise ConfigError(
            f"config key 'backend.token_file': no terminal token in {path};"
            " pair the terminal first (pos-client pair URL CODE)"
        )
    return token


def _http(settings: Settings, program: Program) -> tuple[Backend, Ledger | None]:
    from pos_client.backends.http import HttpBackend

    backend = HttpBackend(
        settings.backend.url,
        read_token(settings),
        settings.backend.connect_timeout_s,
        settings.backend.read_timeout_s,
    )
    return backend, None


BACKEND_BUILDERS: dict[BackendKind, Callable[[Settings, Program], tuple[Backend, Any]]] = {
    BackendKind.EMBEDDED: _embedded,
    BackendKind.HTTP: _http,
}


def build_readers(settings: Settings, sink: Callable[[Any], None]) -> list[Any]:
    """Readers from config through the driver registry; not opened yet."""
    from drivers.base import DriverUnavailable, build_reader

    readers = []
    for index, reader in enumerate(settings.readers):
        options = dict(reader.options)
        if reader.kind == "simulated":
            options.setdefault("port_file", str(settings.storage.data_dir / "sim.port"))
        try:
            readers.append(build_reader(reader.kind, reader.name, options, sink))
        except DriverUnavailable as exc:
            raise ConfigError(f"config key 'readers[{index}].kind': {exc}") from None
    return readers


def build_printers(settings: Settings) -> list[Any]:
    """Printers from config through the driver registry; nothing opened (a job opens the
    link to its printer)."""
    from drivers.base import DriverUnavailable, build_printer

    printers = []
    for index, printer in enumerate(settings.printers):
        try:
            printers.append(build_printer(printer.kind, printer.name, printer.options))
        except DriverUnavailable as exc:
            raise ConfigError(f"config key 'printers[{index}]': {exc}") from None
    return printers


def open_readers(readers: list[Any], report: Callable[[str, str], None]) -> list[Any]:
    """Open each reader; one that cannot open is reported and left out, not fatal."""
    from drivers.base import DriverUnavailable

    opened = []
    for reader in readers:
        try:
            reader.open()
        except DriverUnavailable as exc:
            report(reader.name, str(exc))
            continue
        opened.append(reader)
    return opened


RUN_LOCK = "terminal.run.lock"


def hold_run_lock(data_dir: Path) -> int:
    """A shared flock on the data folder's run lock, held while a terminal has its readers
    open (the kernel drops it if the process dies); several terminals may share it."""
    private_dir(data_dir)
    descriptor = os.open(data_dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


def terminal_running(data_dir: Path) -> bool:
    """Whether a running terminal has readers open on this data folder (its run lock held)."""
    try:
        descriptor = os.open(data_dir / RUN_LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
    finally:
        os.close(descriptor)  # also releases the lock if it was taken
    return False


@dataclass
class RunningTerminal:
    """A terminal with its readers open and scans routed to identification."""

    terminal: Terminal
    readers: list[Any]
    router: Any
    run_lock: int | None = None
    printing: PrintService | None = None  # None: no printer configured

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        if self.printing is not None:
            self.printing.close()
        self.router.stop()
        self.terminal.close()
        if self.run_lock is not None:
            os.close(self.run_lock)
            self.run_lock = None

    def __enter__(self) -> RunningTerminal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def run_terminal(
    settings: Settings,
    report: Callable[[str, str], None] = lambda _name, _problem: None,
    on_terminal: Callable[[Terminal], None] | None = None,
) -> RunningTerminal:
    """Everything a terminal runs: core, sync, readers, and the scan router; in the mode
    staff last switched it to (`terminal.settings` says which)."""
    from pos_client.scanning import ScanRouter

    terminal = build_terminal(with_saved_mode(settings), start_sync=True)
    run_lock: int | None = None
    try:
        run_lock = hold_run_lock(settings.storage.data_dir)
        printers = build_printers(settings)  # a bad printer table stops the start here
        if on_terminal is not None:  # subscribers in place before the first reader event
            on_terminal(terminal)
        router = ScanRouter(terminal.checkout, terminal.bus, terminal.network)
        router.start()
        readers = open_readers(build_readers(settings, terminal.bus.publish), report)
    except Exception:
        terminal.close()
        if run_lock is not None:
            os.close(run_lock)
        raise
    printing = PrintService(printers, terminal.bus.publish) if printers else None
    if printing is not None:
        printing.open()
    return RunningTerminal(terminal, readers, router, run_lock, printing)


def with_saved_mode(settings: Settings) -> Settings:
    """The settings with the mode staff switched this terminal to on its staff screen (kept
    in the data folder), else as configured."""
    from pos_client.settings import Mode
    from pos_client.staff import mode_store

    configured = settings.terminal.mode.value
    mode = mode_store(settings.storage.data_dir).load(configured)
    if mode == configured:
        return settings
    log.info("terminal mode %s (switched by staff; configured: %s)", mode, configured)
    return replace(settings, terminal=replace(settings.terminal, mode=Mode(mode)))


def doctor_checks(settings: Settings) -> list[Any]:
    """Every check `pos-client doctor` prints: core and hardware."""
    from drivers import probes
    from pos_client import doctor

    rows = [*doctor.check_clock(), *doctor.check_disk(settings.storage.data_dir)]
    rows += doctor.check_outbox(settings.storage.outbox_path)
    mode = with_saved_mode(settings).terminal.mode.value
    rows += doctor.check_staff_pin(mode, settings.admin.pin)
    try:
        program = load_program(settings.program, settings.config_dir)
        backend, _ledger = BACKEND_BUILDERS[settings.backend.kind](settings, program)
    except ConfigError as exc:
        rows.append(doctor.Check("backend", False, str(exc)))
    except LedgerSchemaError as exc:  # newer release, foreign, damaged: left as it was
        rows.append(doctor.Check("ledger", False, str(exc)))
    else:
        rows += doctor.check_backend(backend, settings.backend.kind.value)
        backend.close()
    rows += doctor.check_simulated_readers(
        [reader.kind for reader in settings.readers],
        settings.backend.kind.value,
        settings.backend.url,
    )
    pcsc_required = any(reader.kind == "pcsc" for reader in settings.readers)
    try:
        card_keys = _card_keys(settings)
    except ConfigError as exc:
        card_keys = None  # an embedded backend's row above said it too; `card issue` uses it
        rows.append(doctor.Check("card keys", settings.backend.kind.value != "embedded", str(exc)))
    for weakness in card_keys.weaknesses(issuing=True) if card_keys else []:
        rows.append(doctor.Check.warning("card keys", weakness))
    rows += probes.probe_pcsc(pcsc_required, card_keys) + probes.probe_serial_ports()
    # Beside a running terminal, opening its readers would take its scans (a serial port
    # read twice) or its device: only a simulated reader, which knows it is in use (an
    # flock on its port file) and says so, is asked; the others are left alone.
    running = terminal_running(settings.storage.data_dir)
    for reader in build_readers(settings, lambda _event: None):
        if running and getattr(reader, "kind", "") != "simulated":
            rows.append(
                doctor.Check(
                    f"reader {reader.name}",
                    True,
                    f"in use by a terminal running on {settings.storage.data_dir}: not "
                    "opened (stop the terminal to probe it)",
                )
            )
        else:
            rows += probes.probe_readers([reader])
    return rows + printer_checks(settings)


def printer_checks(settings: Settings) -> list[Any]:
    """Each configured printer asked how it is (real-time status where its link answers)."""
    from pos_client import doctor
    from pos_client.printing import PrinterState

    try:
        printers = build_printers(settings)
    except ConfigError as exc:
        return [doctor.Check("printers", False, str(exc))]
    from concurrent.futures import ThreadPoolExecutor

    # Asked at once: several printers that do not answer cost one timeout, not one each.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(printers)))) as pool:
        states = list(pool.map(lambda printer: printer.state(), printers))
    rows = []
    for printer, state in zip(printers, states, strict=True):
        detail = f"{printer.describe()}: {state.value.replace('_', ' ')}"
        if state is PrinterState.UNKNOWN:
            detail += " (prints; its link does not answer status queries)"
        name = f"printer {printer.name}"
        if state is PrinterState.PAPER_LOW:
            rows.append(doctor.Check.warning(name, detail))
        else:
            rows.append(doctor.Check(name, state.prints, detail))
    return rows


def build_app(settings: Settings, running: RunningTerminal) -> Any:
    """The Kivy app over a running terminal (window options set before any window), in the
    terminal's mode: the configured one or the one staff switched it to."""
    from pos_client.staff import MODE_FILE, kiosk_pin_problem
    from ui.window import configure_kivy

    configured = settings.terminal.mode
    settings = running.terminal.settings
    problem = kiosk_pin_problem(settings.terminal.mode.value, settings.admin.pin)
    if problem is not None:
        if settings.terminal.mode is not configured:  # the config file says otherwise
            problem += (
                f"; this terminal was switched to {settings.terminal.mode.value} mode on its"
                f" staff screen (kept in {settings.storage.data_dir / MODE_FILE}: delete that"
                f" file to start in the configured {configured.value} mode)"
            )
        raise ConfigError(problem)
    configure_kivy(settings.terminal.fullscreen, settings.terminal.mode.value == "kiosk")
    from ui.app import PosApp  # after configure_kivy: importing the app creates the window

    return PosApp(running)


def terminal_program(settings: Settings) -> tuple[Program, str, ProgramCache | None]:
    """The programme a terminal starts with and its version: on the store server's backend,
    the server's programme as last cached (the local preset until the server answered once);
    on the embedded ledger, the local preset it applies."""
    document = load_program_document(settings.program, settings.config_dir)
    origin = str(resolve_program_path(settings.program, settings.config_dir))
    if settings.backend.kind is not BackendKind.HTTP:
        return document.parse(origin), document.version, None
    cache = ProgramCache(settings.storage.data_dir / PROGRAM_CACHE_FILE)
    cached = cache.load()
    if cached is not None:
        log.info("previewing with the store programme version %s (cached)", cached[0].version)
        return cached[1], cached[0].version, cache
    return document.parse(origin), document.version, cache


def check_merchant(settings: Settings, program: Program) -> None:
    """`terminal.merchant` must be a merchant of the programme's coalition (on the embedded
    ledger, which applies it; on the store server's, whose programme may change, a mismatch
    is logged and the till previews at the programme's base rates)."""
    merchant = settings.terminal.merchant
    if not merchant:
        return
    known = [m.id for m in program.coalition.merchants] if program.coalition else []
    if merchant in known:
        return
    problem = (
        f"no merchant {merchant!r} in programme {program.id} ({', '.join(known)})"
        if known
        else f"programme {program.id} is no coalition: it has no merchants"
    )
    if settings.backend.kind is BackendKind.HTTP:
        log.warning("terminal.merchant: %s; previewing at the base rates", problem)
        return
    raise ConfigError(f"config key 'terminal.merchant': {problem}")


def build_terminal(settings: Settings, *, start_sync: bool = False) -> Terminal:
    tighten_folder(private_dir(settings.storage.data_dir))
    program, version, program_cache = terminal_program(settings)
    check_merchant(settings, program)
    # A terminal paired without the store-wide phone key (the default since pairing asks
    # the server to keep it) sends numbers for the server to key; it never makes one up.
    server_hashes_phones = (
        settings.backend.kind is BackendKind.HTTP and not settings.phone_key_file.exists()
    )
    try:
        hasher = PhoneHasher(
            secrets.token_bytes(32)  # unused: only the server keys phones
            if server_hashes_phones
            else load_or_create_key(settings.phone_key_file)
        )
    except ValueError as exc:
        raise ConfigError(f"config key 'privacy.phone_key_file': {exc}") from None
    lookup_key_file = settings.lookup_key_file or settings.storage.lookup_key_path
    try:
        cache_hasher = OfflineLookupKey(load_or_create_key(lookup_key_file))
    except ValueError as exc:
        raise ConfigError(f"config key 'privacy.lookup_key_file': {exc}") from None
    bus = EventBus()
    outbox = Outbox(settings.storage.outbox_path).open()
    closers: list[Callable[[], None]] = [outbox.close]
    try:
        backend, ledger = BACKEND_BUILDERS[settings.backend.kind](settings, program)
    except Exception:
        outbox.close()
        raise
    network = NetworkSwitch(backend)
    closers.append(network.close)
    cache_writer = Deferred("member-cache")  # phone KDFs off the lookup's path
    closers.append(cache_writer.close)  # runs before the outbox closes
    sync = SyncWorker(
        outbox,
        network,
        bus,
        SyncPolicy(
            batch_size=settings.sync.batch_size,
            interval_s=settings.sync.interval_s,
            backoff_base_s=settings.sync.backoff_base_s,
            backoff_cap_s=settings.sync.backoff_cap_s,
        ),
        acked_retention=timedelta(days=settings.sync.acked_retention_days),
    )
    if settings.backend.kind is BackendKind.HTTP:
        # The store server's fleet page hears from this terminal while it syncs (every 30 s
        # at most), on a thread of its own: a slow answer never holds up the sync.
        heartbeats = Deferred("heartbeat", max_pending=1)
        closers.append(heartbeats.close)
        sync.heartbeat = HeartbeatPolicy(
            mode=settings.terminal.mode.value, readers=ReaderStates(bus), runner=heartbeats
        )
    checkout = Checkout(
        network,
        outbox,
        program,
        hasher,
        CheckoutPolicy(
            terminal_id=settings.terminal.id,
            region=settings.store.region,
            channel=settings.terminal.mode.value,
            consent_text_id=settings.consent_text_id,
            offline_redeem_cap=settings.offline.redeem_cap_points,
            redeem_on_uid=settings.offline.redeem_on_uid,
            kiosk_spend_by_phone=settings.kiosk.spend_by_phone,
            max_sale_amount=settings.terminal.max_sale_amount,
            merchant=settings.terminal.merchant,
            timezone=settings.store.timezone,
        ),
        bus,
        wake_sync=sync.wake,
        cache_hasher=cache_hasher,
        cache_lifetime=timedelta(days=settings.offline_lookup_days),
        server_hashes_phones=server_hashes_phones,
        cache_writer=cache_writer,
    )
    checkout.program_version = version
    checkout.upgrade_cache()
    checkout.forget_expired()
    sync.housekeeping_tasks.append(checkout.forget_expired)  # daily, on the sync thread
    terminal = Terminal(settings, program, bus, outbox, network, sync, checkout, ledger, closers)
    if program_cache is not None:
        sync.program_updater = ProgramUpdater(
            network.fetch_program,
            program_cache,
            terminal.adopt_program,
            version,
            program.currency,
            settings.sync.interval_s,
        )
    if start_sync:
        sync.start()
        if ledger is not None and program.expiry.enabled:
            # Expiry runs on the embedded ledger at start-up (in the background) and daily.
            from pos_client.ledger.expiry import ExpirySchedule

            schedule = ExpirySchedule(ledger, EMBEDDED_EXPIRY_AT, run_at_start=True)
            schedule.start()
            terminal._closers.append(schedule.stop)
    return terminal
