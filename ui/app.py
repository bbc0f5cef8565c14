"""The Kivy terminal app: cashier and kiosk modes over the core.

Background threads (drivers, scan router, sync) only publish events on the core's bus; this
app re-posts each one onto the Kivy clock and applies it there. No business rule lives in a
widget: screens call the methods below, which call the core's services.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from drivers.wedge import KeyStroke, Scanned, Typed, WedgeClassifier, WedgeThresholds
from pos_client.bootstrap import RunningTerminal
from pos_client.checkout import AlreadyMember, CheckoutError, MemberSession, Receipt
from pos_client.domain import Purchase, PurchaseLine, utcnow
from pos_client.events import (
    OperationDead,
    OperationSynced,
    ReaderStatus,
    ScanEvent,
    SyncStatus,
)
from pos_client.identify import IdentifyError
from pos_client.outbox import EntryState, OutboxError
from pos_client.scanning import CardRemoved, IdentificationFailed, MemberIdentified
from pos_client.staff import PinGuard
from ui import i18n
from ui.screens import load_layouts
from ui.screens.admin import AdminScreen
from ui.screens.earn import EarnScreen
from ui.screens.enroll import EnrollScreen
from ui.screens.give import GiveScreen
from ui.screens.idle import IdleScreen
from ui.screens.member import MemberScreen
from ui.screens.phone import PhoneScreen
from ui.screens.receipt import ReceiptScreen
from ui.screens.redeem import RedeemScreen
from ui.widgets import BusyOverlay, MessageBar, StatusBar

log = logging.getLogger(__name__)

SCREENS = {
    "idle": IdleScreen,
    "phone": PhoneScreen,
    "member": MemberScreen,
    "earn": EarnScreen,
    "redeem": RedeemScreen,
    "enroll": EnrollScreen,
    "give": GiveScreen,
    "receipt": ReceiptScreen,
    "admin": AdminScreen,
}
SPINNER_DELAY_S = 1.0  # Nielsen: past 1 s, show that something is happening
MESSAGE_S = 6.0
ENTER_KEYS = {13: "\r", 271: "\r", 9: "\t"}


def configure_kivy(fullscreen: bool, kiosk: bool) -> None:
    """Window options must be set before the first window exists."""
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0" if kiosk else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")


class Root(BoxLayout):
    pass


class PosApp(App):
    lang = StringProperty("en")
    mode = StringProperty("cashier")
    status_online = BooleanProperty(True)
    status_pending = NumericProperty(0)
    status_dead = NumericProperty(0)
    status_readers = StringProperty("-")
    message = StringProperty("")
    busy = BooleanProperty(False)

    def __init__(self, running: RunningTerminal, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.running = running
        self.terminal = running.terminal
        self.checkout = running.terminal.checkout
        self.program = running.terminal.program
        settings = running.terminal.settings
        self.settings = settings
        self.lang = settings.terminal.language
        self.mode = settings.terminal.mode.value
        self.title = f"{settings.store.name} · {self.program.name}"
        self.session: MemberSession | None = None
        self.pending_phone = ""
        self.last_receipt: Receipt | None = None
        self.reader_states: dict[str, str] = {}
        self.pin_guard = PinGuard(
            settings.admin.pin, settings.admin.max_attempts, settings.admin.lockout_s
        )
        wedge = settings.wedge
        self.wedge = WedgeClassifier(
            WedgeThresholds(wedge.min_length, float(wedge.max_gap_ms) / 1000, wedge.max_length)
        )
        self.last_activity = time.monotonic()
        self.images = Path(tempfile.mkdtemp(prefix="pos-ui-"))
        self._spinner_event: Any = None
        self._wait_started = 0.0
        self._message_event: Any = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.on_screen_drawn: Callable[[MemberIdentified, float], None] | None = None
        self._awaiting_draw: MemberIdentified | None = None

    # ------------------------------------------------------------ building

    def build(self) -> Root:
        from kivy.core.window import Window

        load_layouts()
        root = Root(orientation="vertical")
        root.add_widget(StatusBar())
        layers = FloatLayout()
        self.sm = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.sm.add_widget(screen_class(name=name))
        layers.add_widget(self.sm)
        layers.add_widget(MessageBar())  # a toast over the screens: it never moves them
        layers.add_widget(BusyOverlay())
        root.add_widget(layers)
        Window.bind(
            on_key_down=self._key_down,
            on_textinput=self._text_input,
            on_touch_down=self._touched,
            on_flip=self._flipped,
        )
        return root

    def on_start(self) -> None:
        subscriptions: dict[type, Callable[[Any], None]] = {
            MemberIdentified: self._identified,
            IdentificationFailed: self._failed,
            CardRemoved: lambda _event: None,
            SyncStatus: self._sync_status,
            ReaderStatus: self._reader_status,
            OperationSynced: self._synced,
            OperationDead: self._dead,
            ScanEvent: self._scan_started,
        }
        bus = self.terminal.bus
        for event_type, handler in subscriptions.items():
            self._unsubscribe.append(bus.subscribe(event_type, self._on_clock(handler)))
        for reader in self.running.readers:
            problem = reader.problem() if hasattr(reader, "problem") else None
            self.reader_states[reader.name] = "ok" if problem is None else "error"
        self._show_readers()
        Clock.schedule_interval(self._tick, 0.25)
        self.terminal.sync.publish_status()
        self.go("idle")
        from ui.touch import watch_layout

        watch_layout()  # POS_UI_DEBUG_LAYOUT=path: what is on screen, for X-level tools

    def on_stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    @staticmethod
    def _on_clock(handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """Background threads post; the handler runs on the Kivy clock (main thread)."""

        def post(event: Any) -> None:
            Clock.schedule_once(lambda _dt: handler(event), 0)

        return post

    # ------------------------------------------------------------ text and formats

    def tr(self, key: str, _lang: str | None = None, **values: object) -> str:
        return i18n.translate(self.lang, key, **values)

    def number(self, value: int | float | Decimal) -> str:
        return i18n.format_number(int(value) if isinstance(value, float) else value, self.lang)

    def money(self, amount: Decimal) -> str:
        return i18n.format_money(amount, self.program.currency, self.lang)

    def points(self, value: int) -> str:
        return f"{self.number(value)} {self.program.unit_name}"

    def set_language(self, language: str) -> None:
        if language in i18n.LOCALES:
            self.lang = language
            self._refresh_current()

    # ------------------------------------------------------------ navigation

    def go(self, name: str) -> None:
        if name != "idle" and name != "phone" and name != "admin" and self.session is None:
            name = "idle"
        screen = self.sm.get_screen(name)
        self.sm.current = name
        screen.refresh()
        self.last_activity = time.monotonic()

    def go_idle(self) -> None:
        self.session = None  # forget the member: nothing of them stays on screen
        self.pending_phone = ""
        self.go("idle")

    def _refresh_current(self) -> None:
        self.sm.current_screen.refresh()

    def show_message(self, text: str) -> None:
        self.message = text
        if self._message_event is not None:
            self._message_event.cancel()
        self._message_event = Clock.schedule_once(
            lambda _dt: setattr(self, "message", ""), MESSAGE_S
        )

    def begin_wait(self) -> None:
        if self._spinner_event is None:
            self._wait_started = time.monotonic()
            self._spinner_event = Clock.schedule_once(self._maybe_spin, SPINNER_DELAY_S)

    def _maybe_spin(self, _dt: float) -> None:
        # Kivy counts timeouts from the start of the current frame: check real time.
        remaining = SPINNER_DELAY_S - (time.monotonic() - self._wait_started)
        if remaining > 0:
            self._spinner_event = Clock.schedule_once(self._maybe_spin, remaining)
            return
        self.busy = True

    def end_wait(self) -> None:
        if self._spinner_event is not None:
            self._spinner_event.cancel()
            self._spinner_event = None
        self.busy = False

    def run_async(
        self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """Slow work (backend calls) off the main thread; the result comes back on the clock."""
        self.begin_wait()

        def worker() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # handed to `done` on the main thread
                result, error = None, exc

            def finish(_dt: float) -> None:
                self.end_wait()
                done(result, error)

            Clock.schedule_once(finish, 0)

        threading.Thread(target=worker, name="ui-work", daemon=True).start()

    # ------------------------------------------------------------ events from the core

    def _scan_started(self, _event: ScanEvent) -> None:
        self.last_activity = time.monotonic()
        self.begin_wait()

    def _identified(self, event: MemberIdentified) -> None:
        self.end_wait()
        self.session = event.session
        self.message = ""
        self._awaiting_draw = event
        self.go("member")

    def _failed(self, event: IdentificationFailed) -> None:
        self.end_wait()
        if event.can_enroll and event.source == "keypad" and self.pending_phone:
            screen = self.sm.get_screen("enroll")
            self.session = None
            self.sm.current = "enroll"
            screen.refresh()
            screen.phone_hint = "•" * 6 + self.pending_phone[-2:]
            return
        texts = {
            "unknown": self.tr("error.unknown"),
            "invalid": self.tr("error.invalid"),
            "reader": self.tr("error.reader", detail=event.message),
        }
        self.show_message(texts.get(event.reason, event.message))

    def _sync_status(self, status: SyncStatus) -> None:
        if self.status_online and not status.online:
            self.show_message(self.tr("error.backend"))  # once, when the link drops
        self.status_online = status.online
        self.status_pending = status.pending
        self.status_dead = status.dead

    def _reader_status(self, status: ReaderStatus) -> None:
        self.reader_states[status.source] = {"connected": "ok"}.get(status.state, status.state)
        self._show_readers()
        if status.state in ("error", "disconnected"):
            self.show_message(self.tr("error.reader", detail=status.detail))

    def _show_readers(self) -> None:
        states = set(self.reader_states.values())
        if not states:
            self.status_readers = "-"
        elif states == {"ok"}:
            self.status_readers = f"{len(self.reader_states)} ok"
        else:
            bad = [name for name, state in self.reader_states.items() if state != "ok"]
            self.status_readers = ", ".join(f"{name}: {self.reader_states[name]}" for name in bad)

    def _synced(self, event: OperationSynced) -> None:
        receipt = self.sm.get_screen("receipt")
        if self.last_receipt is not None and event.key == self.last_receipt.key:
            receipt.synced = True
        self.terminal.sync.publish_status()

    def _dead(self, event: OperationDead) -> None:
        self.show_message(self.tr("error.refused", detail=event.error))

    def _flipped(self, *_args: Any) -> None:
        event = self._awaiting_draw
        if event is not None and self.sm.current == "member":
            self._awaiting_draw = None
            if self.on_screen_drawn is not None:
                self.on_screen_drawn(event, time.perf_counter())

    # ------------------------------------------------------------ keyboard-wedge input

    def _key_down(self, _window: Any, key: int, _scancode: int, _text: Any, _mods: Any) -> bool:
        self.last_activity = time.monotonic()
        terminator = ENTER_KEYS.get(key)
        if terminator is not None:
            self._feed_wedge(terminator)
        return False

    def _text_input(self, _window: Any, text: str) -> bool:
        for char in text:
            self._feed_wedge(char)
        return False

    def _feed_wedge(self, char: str) -> None:
        for result in self.wedge.feed(KeyStroke(char, time.monotonic())):
            self._wedge_result(result)

    def _wedge_result(self, result: Scanned | Typed) -> None:
        if isinstance(result, Scanned):
            self.terminal.bus.publish(ScanEvent("wedge:keyboard", "barcode", result.text))
        elif self.sm.current == "phone":
            screen = self.sm.get_screen("phone")
            for char in result.text:
                if char.isdigit() or char == "+":
                    screen.key(char)
                elif char == "\r":
                    screen.find()

    def _touched(self, *_args: Any) -> bool:
        self.last_activity = time.monotonic()
        return False

    def _tick(self, _dt: float) -> None:
        for result in self.wedge.flush(time.monotonic()):
            self._wedge_result(result)
        idle_for = time.monotonic() - self.last_activity
        if self.sm.current != "idle" and idle_for > self.settings.terminal.inactivity_s:
            self.go_idle()

    # ------------------------------------------------------------ phone entry

    def format_phone_as_typed(self, digits: str) -> str:
        import phonenumbers

        formatter = phonenumbers.AsYouTypeFormatter(self.settings.store.region)
        shown = ""
        for char in digits:
            shown = formatter.input_digit(char)
        return str(shown)

    def lookup_phone(self, digits: str) -> str | None:
        try:
            self.checkout.parse(digits, "phone")
        except IdentifyError as exc:
            return f"{self.tr('phone.invalid')}: {exc}"
        self.pending_phone = digits
        self.terminal.bus.publish(ScanEvent("keypad", "phone", digits))
        return None

    # ------------------------------------------------------------ member

    def fill_member_screen(self, screen: MemberScreen) -> None:
        session = self.session
        if session is None:
            return
        view = session.view
        screen.name_text = f"{view.display_name}   {view.phone_hint}"
        screen.tier_text = f"{self.tr('member.tier')}: {view.tier_name}"
        screen.balance_text = self.points(view.balance)
        pending = []
        if session.pending_points:
            pending.append(f"+{self.number(session.pending_points)}")
        if session.pending_redemptions:
            pending.append(f"-{self.number(session.pending_redemptions)}")
        screen.pending_text = (
            (" ".join(pending) + f" {self.tr('member.pending')}") if pending else ""
        )
        screen.offline = not session.online
        screen.birthday = view.birthday_reward
        if view.next_reward_name and view.next_reward_remaining is not None:
            screen.reward_progress_text = self.tr(
                "member.next_reward",
                points=self.points(view.next_reward_remaining),
                reward=view.next_reward_name,
            )
            total = view.balance + view.next_reward_remaining
            screen.reward_progress = view.balance / total if total else 0
        else:
            screen.reward_progress_text, screen.reward_progress = "", 1
        if view.next_tier_name and view.next_tier_remaining is not None:
            screen.tier_progress_text = self.tr(
                "member.next_tier",
                remaining=self.number(view.next_tier_remaining),
                tier=view.next_tier_name,
            )
            tier = self.program.tiers
            target = next((t.threshold for t in tier.tiers if t.name == view.next_tier_name), 0)
            screen.tier_progress = float(1 - view.next_tier_remaining / target) if target else 0
        else:
            screen.tier_progress_text, screen.tier_progress = self.tr("member.top_tier"), 1
        screen.rewards_text = (
            "\n".join(
                (
                    f"{r.name} — {self.points(r.cost)}"
                    if r.affordable
                    else f"[color=8a8f98]{r.name} — {self.points(r.cost)}[/color]"
                )
                for r in view.rewards
            )
            or "-"
        )

    def refresh_session(self) -> None:
        if self.session is None:
            return
        session = self.session

        def done(result: Any, error: BaseException | None) -> None:
            if error is None and self.session is not None and result is not None:
                self.session = result
                if self.sm.current == "member":
                    self._refresh_current()

        self.run_async(lambda: self.checkout.refresh(session), done)

    # ------------------------------------------------------------ earning

    def program_categories(self) -> list[str]:
        return ["", *sorted(self.program.earn.category_rates)]

    def _purchase(self, lines: list[tuple[str, str]]) -> Purchase | None:
        try:
            items = tuple(PurchaseLine(Decimal(a), c) for a, c in lines if a and a != ".")
        except (InvalidOperation, ValueError):
            return None
        return Purchase(items) if items else None

    def preview_lines(self, lines: list[tuple[str, str]]) -> tuple[str, str]:
        purchase = self._purchase(lines)
        if purchase is None or self.session is None:
            return "", ""
        breakdown = self.checkout.preview(self.session, purchase)
        total = self.money(purchase.total)
        return (
            f"{total}: " + self.tr("earn.preview", points=self.points(breakdown.points)),
            "\n".join(breakdown.explain()),
        )

    def confirm_earn(self, lines: list[tuple[str, str]]) -> None:
        purchase = self._purchase(lines)
        if purchase is None or self.session is None:
            self.show_message(self.tr("error.refused", detail=self.tr("earn.amount")))
            return
        self._record(lambda session: self.checkout.earn(session, purchase))

    def _record(self, action: Callable[[MemberSession], Receipt]) -> str | None:
        session = self.session
        if session is None:
            return None
        try:
            receipt = action(session)
        except CheckoutError as exc:
            return self.tr("error.refused", detail=str(exc))
        except OutboxError as exc:  # disk full, read-only: refuse, never lose
            self.show_message(self.tr("error.refused", detail=str(exc)))
            return str(exc)
        self.show_receipt(receipt)
        return None

    def show_receipt(self, receipt: Receipt) -> None:
        from pos_client.cards import render_card

        self.last_receipt = receipt
        screen = self.sm.get_screen("receipt")
        rows = []
        if receipt.expected_points:
            rows.append(f"{self.tr('receipt.earned')}: +{self.points(receipt.expected_points)}")
        if receipt.redeemed_points:
            rows.append(f"{self.tr('receipt.redeemed')}: -{self.points(receipt.redeemed_points)}")
        if receipt.kind == "sale":
            rows.append(f"{self.tr('receipt.cash_due')}: {self.money(receipt.cash_due)}")
        rows.extend(receipt.breakdown if receipt.kind == "give" else ())
        screen.summary_text = "\n".join(rows)
        screen.synced = False
        screen.when_text = i18n.format_moment(
            receipt.recorded_at, self.settings.store.timezone, self.lang
        )
        screen.key_text = receipt.key
        image = render_card(
            receipt.key.replace("-", ""), "code128", self.images / f"key-{receipt.key}.png"
        )
        screen.key_image = str(image)
        self.sm.current = "receipt"
        self.last_activity = time.monotonic()

    # ------------------------------------------------------------ redemption and giving

    def redemption_options(self) -> list[dict[str, Any]]:
        session = self.session
        if session is None:
            return []
        options: list[dict[str, Any]] = []
        for reward in session.view.rewards:
            label = f"{reward.name} — {self.points(reward.cost)}"
            options.append(
                {
                    "kind": "reward",
                    "reward_id": reward.reward_id,
                    "option": None,
                    "label": label,
                    "enabled": reward.cost <= session.spendable,
                }
            )
            try:
                alternatives = self.program.reward(reward.reward_id).points_plus_cash
            except Exception:  # a reward the cached view knows but the programme no longer has
                alternatives = ()
            for index, (points, cash) in enumerate(alternatives):
                options.append(
                    {
                        "kind": "reward",
                        "reward_id": reward.reward_id,
                        "option": index,
                        "label": f"{reward.name} — {self.points(points)} + {self.money(cash)}",
                        "enabled": points <= session.spendable,
                    }
                )
        pam = self.program.points_as_money
        if pam is not None:
            blocks = session.spendable // pam.block_points
            for count in sorted({1, blocks} - {0}):
                options.append(
                    {
                        "kind": "blocks",
                        "blocks": count,
                        "enabled": True,
                        "label": self.tr(
                            "redeem.blocks",
                            blocks=count,
                            value=self.money(pam.block_value),
                            points=self.points(count * pam.block_points),
                        ),
                    }
                )
        return options

    def confirm_redemption(self, option: dict[str, Any]) -> str | None:
        if option["kind"] == "blocks":
            pam = self.program.points_as_money
            assert pam is not None
            total = pam.block_value * option["blocks"]

            def by_blocks(session: MemberSession) -> Receipt:
                plan = self.checkout.plan_redemption(
                    session, blocks=option["blocks"], purchase_total=total
                )
                return self.checkout.earn(session, Purchase.of_amount(total), plan)

            return self._record(by_blocks)
        return self._record(
            lambda session: self.checkout.redeem(session, option["reward_id"], option["option"])
        )

    def give_targets(self) -> list[dict[str, Any]]:
        return [
            {
                "id": t.id,
                "step": max(t.points_per_unit, t.min_points),
                "label": f"{t.name} ({self.points(t.points_per_unit)} = 1 {t.unit_name})",
            }
            for t in self.program.give_targets
        ]

    def confirm_give(self, target_id: str, points: int) -> str | None:
        return self._record(lambda session: self.checkout.give(session, target_id, points))

    # ------------------------------------------------------------ enrollment

    def enroll(self, first_name: str, consent: bool, marketing: bool) -> str | None:
        phone = self.pending_phone
        if not phone:
            return self.tr("phone.invalid")
        if not consent:
            return self.tr("enroll.consent")

        def done(session: Any, error: BaseException | None) -> None:
            screen = self.sm.get_screen("enroll")
            if isinstance(error, AlreadyMember):
                self.session = error.session
                self.go("member")
                return
            if error is not None:
                screen.error = self.tr("error.refused", detail=str(error))
                return
            from pos_client.cards import render_card

            self.session = session
            number = session.view.card_number or ""
            screen.card_number = number
            screen.card_image = str(
                render_card(number, "ean13", self.images / f"card-{number}.png")
            )

        self.run_async(
            lambda: self.checkout.enroll(phone, first_name, consent=consent, marketing=marketing),
            done,
        )
        return None

    # ------------------------------------------------------------ staff

    def unlock_admin(self, pin: str) -> str | None:
        result = self.pin_guard.check(pin)
        screen = self.sm.get_screen("admin")
        if result.ok:
            screen.unlocked = True
            return None
        if result.locked_for_s:
            return self.tr("admin.locked", seconds=int(result.locked_for_s + 0.999))
        return self.tr("admin.wrong_pin", left=result.attempts_left)

    def admin_report(self) -> tuple[str, str]:
        readers = "\n".join(reader.describe() for reader in self.running.readers) or "-"
        try:
            stats = self.terminal.outbox.stats()
            dead = self.terminal.outbox.entries(EntryState.DEAD, limit=5)
        except OutboxError as exc:
            return readers, str(exc)
        rows = [f"pending {stats.unsent}, dead {stats.dead}, acked {stats.acked}"]
        age = stats.oldest_pending_age(utcnow())
        if age is not None:
            rows.append(f"oldest unsent: {age:.0f} s")
        rows += [f"dead {entry.key[-8:]}: {entry.error_code}: {entry.last_error}" for entry in dead]
        return readers, "\n".join(rows)

    def admin_retry(self) -> None:
        self.terminal.outbox.requeue_dead()
        self.terminal.sync.wake()

    def admin_sync(self) -> None:
        self.terminal.outbox.make_due()
        self.terminal.sync.wake()

    def next_language(self) -> None:
        languages = list(i18n.LOCALES)
        self.set_language(languages[(languages.index(self.lang) + 1) % len(languages)])

    def toggle_mode(self) -> None:
        self.mode = "kiosk" if self.mode == "cashier" else "cashier"


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
