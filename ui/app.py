"""The Kivy terminal app: cashier and kiosk modes over the core.

A thin shell: the properties kv binds to, the widget tree, and the wiring of the controllers
in `ui.controllers`, which hold the behaviour. The app depends on the core's
`RunningTerminalPort`, never on the composition root that builds it. Background threads
(drivers, scan router, sync) only publish events on the core's bus; the app re-posts each
one onto the Kivy clock, where its controller applies it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition

from drivers.wedge import WedgeClassifier, WedgeThresholds
from pos_client.events import (
    CameraFrame,
    OperationDead,
    OperationSynced,
    ReaderStatus,
    ScanEvent,
    SyncStatus,
)
from pos_client.ports import RunningTerminalPort
from pos_client.printing import PrinterStatus
from pos_client.program_updates import ProgramChanged
from pos_client.scanning import CardRemoved, IdentificationFailed, MemberIdentified
from pos_client.settings import BackendKind
from pos_client.staff import mode_store, pin_guard
from ui.controllers.input import InputController
from ui.controllers.member import MemberController, ScreenDrawn
from ui.controllers.navigation import Navigator
from ui.controllers.printing import PrintController
from ui.controllers.sale import SaleController
from ui.controllers.staff import StaffController
from ui.controllers.state import Activity, Customer
from ui.controllers.status import StatusController
from ui.controllers.texts import Texts
from ui.controllers.wallet import WalletController
from ui.dialogs import ask
from ui.screens import LazyScreens, load_layouts
from ui.widgets import BusyOverlay, MessageBar, StatusBar


def _libc_malloc_trim() -> Callable[[], None] | None:
    """glibc's malloc_trim(0), or None elsewhere (musl, macOS)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


# Back at idle for this long (nobody at the terminal), freed memory goes back to the system.
# Not at once: pages returned are faulted in again by the next screens, which made taps
# right after idle measurably slower (idle -> phone p50 ~40 -> ~100 ms on a busy machine).
RETURN_MEMORY_AFTER_S = 5.0


class Root(BoxLayout):
    pass


class PosApp(App):
    lang = StringProperty("en")
    mode = StringProperty("cashier")
    status_online = BooleanProperty(True)
    status_pending = NumericProperty(0)
    status_dead = NumericProperty(0)
    status_readers = StringProperty("-")
    status_printer = StringProperty("")  # printers that cannot print, in words; "" all fine
    wallet_passes = BooleanProperty(False)  # a store server that may make wallet passes
    message = StringProperty("")
    busy = BooleanProperty(False)
    # Kivy's own settings panel (F1) would let anyone at a kiosk change the window, the
    # log level and the keyboard: a terminal has none.
    use_kivy_settings = False

    def open_settings(self, *_args: Any) -> bool:
        return False

    # The controllers, made in build() once the screen manager exists.
    nav: Navigator
    status: StatusController
    input: InputController
    member: MemberController
    sale: SaleController
    staff: StaffController
    printer: PrintController
    wallet: WalletController

    def __init__(self, running: RunningTerminalPort, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.running = running
        settings = self.settings = running.terminal.settings
        program = running.terminal.program
        self.lang = settings.terminal.language
        self.wallet_passes = settings.backend.kind is BackendKind.HTTP
        self.mode = settings.terminal.mode.value
        self.texts = Texts(lambda: str(self.lang), program, settings.store.timezone)
        self.title = self.texts.title(settings.store.name)
        self.customer = Customer()
        self.activity = Activity()
        self.images = Path(tempfile.mkdtemp(prefix="pos-ui-"))
        self.on_screen_drawn: ScreenDrawn | None = None  # a hook for the latency benchmark
        self._unsubscribe: list[Callable[[], None]] = []

    def _make_controllers(self) -> None:
        terminal, settings = self.running.terminal, self.settings
        readers = self.running.readers
        self.nav = Navigator(self, self.sm, self.customer, self.activity)
        self.status = StatusController(self, terminal.queue, readers, self.nav, self.texts)
        self.printer = PrintController(
            self, self.running.printing, self.nav, self.texts, settings.store.name
        )
        wedge = settings.wedge
        thresholds = WedgeThresholds(
            wedge.min_length, float(wedge.max_gap_ms) / 1000, wedge.max_length
        )
        self.input = InputController(
            WedgeClassifier(thresholds),
            terminal.bus,
            self.nav,
            self.activity,
            settings.terminal.inactivity_s,
            kiosk=lambda: self.mode == "kiosk",
        )
        self.member = MemberController(
            terminal.checkout,
            terminal.program,
            terminal.bus,
            settings.store.region,
            self.nav,
            self.texts,
            self.customer,
            self.activity,
            self._screen_drawn,
        )
        self.sale = SaleController(
            terminal.checkout,
            terminal.program,
            self.nav,
            self.texts,
            self.customer,
            self.activity,
            self.images,
            settings.terminal.confirm_amount_over,
            self.printer,
        )
        self.wallet = WalletController(
            terminal.checkout, self.nav, self.texts, self.customer, self.activity, self.images
        )
        admin = settings.admin
        guard = pin_guard(admin.pin, admin.max_attempts, admin.lockout_s, settings.storage.data_dir)
        self.staff = StaffController(
            self,
            guard,
            terminal.queue,
            readers,
            self.texts,
            self.status.reader_states,
            say=self.nav.show_message,
            modes=mode_store(settings.storage.data_dir),
            ask=ask,
        )

    def build(self) -> Root:
        from kivy.core.window import Window

        load_layouts()
        self.sm = LazyScreens(transition=NoTransition())
        self._make_controllers()
        root = Root(orientation="vertical")
        root.add_widget(StatusBar())
        layers = FloatLayout()
        self.sm.get_screen("idle")  # the first screen; the others when first shown
        self._malloc_trim = _libc_malloc_trim()
        self._trim_event: Any = None
        self.sm.bind(current=self._screen_shown)
        layers.add_widget(self.sm)
        layers.add_widget(MessageBar())  # a toast over the screens: it never moves them
        layers.add_widget(BusyOverlay())
        root.add_widget(layers)
        self.input.bind(Window)
        self.sm.bind(current=self.input.guard.arm)  # a new screen: no stray second tap
        Window.bind(on_flip=self.member.frame_drawn)
        return root

    def on_start(self) -> None:
        subscriptions: list[tuple[type, Callable[[Any], None]]] = [
            (MemberIdentified, self.member.on_identified),
            (IdentificationFailed, self.member.on_failed),
            (CardRemoved, lambda _event: None),
            (SyncStatus, self.status.on_sync_status),
            (ReaderStatus, self.status.on_reader_status),
            (PrinterStatus, self.printer.on_printer_status),
            (CameraFrame, self.show_camera_frame),
            (OperationSynced, self.sale.on_synced),  # the receipt turns synced first
            (OperationSynced, self.status.on_synced),
            (OperationDead, self.status.on_dead),
            (SyncStatus, self.staff_report_follows),  # the open staff report stays true
            (ScanEvent, self.member.on_scan_started),
            (ProgramChanged, self.on_program_changed),
        ]
        bus = self.running.terminal.bus
        for event_type, handler in subscriptions:
            self._unsubscribe.append(bus.subscribe(event_type, self._on_clock(handler)))
        self.input.start()
        self.status.start()
        self.follow_mode()
        self.nav.go("idle")
        from ui.touch import watch_layout

        watch_layout()  # POS_UI_DEBUG_LAYOUT=path: what is on screen, for X-level tools

    def on_program_changed(self, _event: ProgramChanged) -> None:
        """The store server's programme: previews, names and units follow it."""
        program = self.running.terminal.program
        for holder in (self.texts, self.member, self.sale):
            holder.use_program(program)

    def show_camera_frame(self, frame: CameraFrame) -> None:
        """A kiosk camera's live preview on the idle screen (frames come from the camera's
        thread through the clock; none are drawn while another screen is shown)."""
        if self.sm.current == "idle":
            preview = self.sm.get_screen("idle").ids.camera_preview
            preview.show_frame(frame.width, frame.height, frame.rgb)

    def staff_report_follows(self, _event: Any) -> None:
        screen = self.sm.current_screen
        if self.sm.current == "admin" and getattr(screen, "unlocked", False):
            screen.update()

    def on_lang(self, _app: Any, _language: str) -> None:
        """Text the app sets itself (not kv) follows the language: title, readers' state."""
        self.title = self.texts.title(self.settings.store.name)
        if hasattr(self, "status"):
            self.status.show_readers()
            self.printer.show()

    def on_mode(self, _app: Any, mode: str) -> None:
        # The core's rules follow the mode too (a kiosk does not spend on a typed phone).
        self.running.terminal.checkout.set_channel(mode)
        self.follow_mode()

    def follow_mode(self) -> None:
        """A kiosk ignores Escape (customers must not quit it); a cashier's terminal quits on
        Escape. Follows the mode at run time, as staff switch it."""
        from kivy.config import Config

        Config.set("kivy", "exit_on_escape", "0" if self.mode == "kiosk" else "1")

    def on_stop(self) -> None:
        if self._trim_event is not None:
            self._trim_event.cancel()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _on_clock(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """Background threads post; the handler runs on the Kivy clock (main thread), and
        only while this app runs: an event posted just before it stopped must not reach
        widgets and a closed outbox after it (nor the next app in the same process)."""

        def post(event: Any) -> None:
            def deliver(_dt: float) -> None:
                if App.get_running_app() is self:
                    handler(event)

            Clock.schedule_once(deliver, 0)

        return post

    def _screen_shown(self, _sm: Any, name: str) -> None:
        """Back at idle (a customer served): give the memory freed since back to the system.
        Each visit to the member's screens frees megabytes of text textures, layouts and
        driver buffers that glibc keeps in the heap (~20 MB more RSS over a few hundred
        taps, kept, though no object outlived its visit); malloc_trim returns the
        free pages (in about a millisecond) once the terminal has stayed idle a while."""
        if self._trim_event is not None:
            self._trim_event.cancel()
            self._trim_event = None
        if name == "idle" and self._malloc_trim is not None:
            trim = self._malloc_trim
            self._trim_event = Clock.schedule_once(lambda _dt: trim(), RETURN_MEMORY_AFTER_S)

    def _screen_drawn(self, event: MemberIdentified, at: float) -> None:
        if self.on_screen_drawn is not None:
            self.on_screen_drawn(event, at)

    # ------------------------------------------------------------ text for kv

    def tr(self, key: str, _lang: str | None = None, **values: object) -> str:
        """kv passes app.lang as `_lang` so the text re-binds when the language changes."""
        return self.texts.tr(key, **values)

    def number(self, value: int | float | Decimal) -> str:
        return self.texts.number(value)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
