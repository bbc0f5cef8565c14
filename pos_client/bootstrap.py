"""The composition root: settings -> program, storage, backend, sync, checkout.

The only module that knows every part. Drivers and the UI are built here too, imported
lazily inside the functions that need them, so the core never depends on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pos_client.backends.switch import NetworkSwitch
from pos_client.checkout import Checkout, CheckoutPolicy
from pos_client.configfile import ConfigError
from pos_client.events import EventBus
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.outbox import Outbox
from pos_client.ports import Backend
from pos_client.privacy import PhoneHasher, load_or_create_key
from pos_client.program import load_program
from pos_client.rules import Program
from pos_client.settings import BackendKind, Settings
from pos_client.sync import SyncPolicy, SyncWorker


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
    url = settings.storage.ledger_url or sqlite_url(settings.storage.ledger_path)
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(make_engine(url), program)
    ledger.create_schema()
    return ledger


def _embedded(settings: Settings, program: Program) -> tuple[Backend, Ledger | None]:
    from pos_client.backends.embedded import EmbeddedBackend

    ledger = build_ledger(settings, program)
    return EmbeddedBackend(ledger), ledger


def _http(settings: Settings, program: Program) -> tuple[Backend, Ledger | None]:
    raise ConfigError(
        "config key 'backend.kind' is 'http', but the HTTP backend is not part of this build "
        "yet; use 'embedded'"
    )


BACKEND_BUILDERS: dict[BackendKind, Callable[[Settings, Program], tuple[Backend, Any]]] = {
    BackendKind.EMBEDDED: _embedded,
    BackendKind.HTTP: _http,
}


def build_terminal(settings: Settings, *, start_sync: bool = False) -> Terminal:
    program = load_program(settings.program, settings.config_dir)
    try:
        hasher = PhoneHasher(load_or_create_key(settings.phone_key_file))
    except ValueError as exc:
        raise ConfigError(f"config key 'privacy.phone_key_file': {exc}") from None
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
        ),
        bus,
        wake_sync=sync.wake,
    )
    terminal = Terminal(settings, program, bus, outbox, network, sync, checkout, ledger, closers)
    if start_sync:
        sync.start()
    return terminal
