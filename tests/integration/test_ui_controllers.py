"""The UI controllers' parts that need no window, over a real terminal core (its SQLite
ledger): what the screens show and do is tested through the window in tests/ui, by real
input only; these check the texts and decisions the controllers hand the screens."""

from __future__ import annotations

from pos_client.bootstrap import Terminal
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.queue_service import DeadEntry, QueueReport
from pos_client.staff import PinGuard
from ui import i18n
from ui.controllers.member import member_lines
from ui.controllers.sale import purchase_of
from ui.controllers.staff import StaffController, queue_text
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts


class Shell:
    mode = "cashier"


def texts(terminal: Terminal, language: str = "en") -> Texts:
    return Texts(lambda: language, terminal.program, terminal.settings.store.timezone)


def test_member_lines_show_the_member_masked_with_balance_and_progress(
    terminal: Terminal,
) -> None:
    assert terminal.ledger is not None
    seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    session = terminal.checkout.identify(DEMO_MEMBERS[0].card_uid or "", "nfc")
    lines = member_lines(session, terminal.program, texts(terminal))
    assert lines.name_text.startswith("Anna K.") and lines.name_text.endswith("89")
    assert lines.balance_text == "5,700 points"
    assert lines.tier_text.startswith(i18n.translate("en", "member.tier") + ": ")
    assert 0 <= lines.reward_progress <= 1 and 0 <= lines.tier_progress <= 1
    assert not lines.offline and lines.rewards_text


def test_the_queue_report_reads_as_before() -> None:
    report = QueueReport(2, 1, 7, 42.4, (DeadEntry("0190-abcdef12345678", "bad", "no"),))
    assert queue_text(report).splitlines() == [
        "Unsent: 2 · Failed: 1 · Delivered: 7",
        "Oldest unsent: " + i18n.format_age(42.4, "en"),
        "Failed 12345678: refused by the server",
    ]
    assert queue_text(report, "ru").startswith("Не отправлено: 2 · Ошибки: 1")
    # the English detail goes to the log; staff read that the queue cannot be read
    assert queue_text(QueueReport(problem="outbox is not open")) == (
        "The sales queue cannot be read now"
    )


def test_staff_unlock_says_wrong_then_locked(terminal: Terminal) -> None:
    now = [0.0]
    guard = PinGuard("7391", 2, 60, clock=lambda: now[0])
    staff = StaffController(Shell(), guard, terminal.queue, [], texts(terminal))
    assert staff.unlock("1111") == "Wrong PIN: 1 try left"
    assert (staff.unlock("1111") or "").startswith("Locked")
    now[0] = 61
    assert staff.unlock("7391") is None
    assert staff.report() == ("none", "Unsent: 0 · Failed: 0 · Delivered: 0")
    shell = Shell()
    StaffController(shell, guard, terminal.queue, [], texts(terminal)).toggle_mode()
    assert shell.mode == "kiosk"
    default = PinGuard("2468", 2, 60, clock=lambda: now[0])
    said: list[str] = []
    refused = Shell()
    StaffController(
        refused, default, terminal.queue, [], texts(terminal), say=said.append
    ).toggle_mode()
    assert refused.mode == "cashier" and said  # never a kiosk on the default PIN


def test_staff_queue_actions_say_when_the_queue_cannot_be_used(terminal: Terminal) -> None:
    said: list[str] = []
    guard = PinGuard("7391", 2, 60)
    staff = StaffController(Shell(), guard, terminal.queue, [], texts(terminal), say=said.append)
    assert staff.sync_now() == "Nothing pending: every sale is sent"
    terminal.outbox.close()  # the queue's file went away under the terminal
    assert staff.sync_now() == "The sales queue cannot be read now"
    assert staff.retry() == "The sales queue cannot be read now"
    assert said[-2:] == ["The sales queue cannot be read now"] * 2


def test_typed_lines_become_a_purchase_or_nothing() -> None:
    purchase = purchase_of([("10.50", ""), (".", "x"), ("", "y"), ("2", "cosmetics")])
    assert purchase is not None and str(purchase.total) == "12.50"
    assert purchase_of([("1.2.3", "")]) is None and purchase_of([]) is None


def test_the_customer_is_forgotten_but_the_last_receipt_is_kept() -> None:
    receipt = object()
    customer = Customer(session=None, pending_phone="+1650", last_receipt=receipt)  # type: ignore[arg-type]
    customer.forget()
    assert customer.pending_phone == "" and customer.session is None
    assert customer.last_receipt is receipt
    now = [5.0]
    activity = Activity(clock=lambda: now[0])
    now[0] = 7.5
    assert activity.idle_for() == 2.5
    activity.touch()
    assert activity.idle_for() == 0


def test_a_refused_sale_and_a_reader_fault_are_said_in_the_language(terminal: Terminal) -> None:
    """Issue 16: the message bar showed the server's English detail and the reader's."""
    from pos_client.events import OperationDead, ReaderStatus
    from ui.controllers.status import StatusController

    class Nav:
        def __init__(self) -> None:
            self.said: list[str] = []

        def show_message(self, text: str) -> None:
            self.said.append(text)

    class Bar:
        status_online, status_pending, status_dead, status_readers = True, 0, 0, ""

    nav, bar = Nav(), Bar()
    status = StatusController(bar, terminal.queue, [], nav, texts(terminal, "el"))  # type: ignore[arg-type]
    status.on_dead(OperationDead("k-1", "sale", "insufficient_points", "balance 3 < 50"))
    status.on_reader_status(ReaderStatus("pcsc:front", "error", "SCARD_E_NO_SERVICE"))
    assert nav.said == [
        i18n.dead_message("el", "insufficient_points"),
        i18n.translate("el", "error.card_reader"),
    ]
    assert not any("balance" in text or "SCARD" in text for text in nav.said)
    assert bar.status_readers == "pcsc:front: σφάλμα"


def test_the_touch_guard_swallows_touches_for_a_moment_after_a_screen_change() -> None:
    from types import SimpleNamespace

    from ui.controllers.input import SCREEN_CHANGE_GUARD_S, TouchGuard

    now = [100.0]
    guard = TouchGuard(clock=lambda: now[0])
    first, second, third = (SimpleNamespace(uid=n) for n in (1, 2, 3))
    assert not guard.down(first) and not guard.up(first)  # nothing changed yet
    guard.arm()
    now[0] += SCREEN_CHANGE_GUARD_S / 2
    assert guard.down(second) and guard.swallowed(second)
    now[0] += SCREEN_CHANGE_GUARD_S  # its move and lift are swallowed too, even after
    assert guard.move(second) and guard.up(second) and not guard.swallowed(second)
    assert guard.remaining() == 0
    assert not guard.down(third) and not guard.up(third)
