"""Finding the member (scan, tap or phone) and what the member screen says about them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pos_client.checkout import Checkout, MemberSession
from pos_client.events import EventBus, ScanEvent
from pos_client.identify import IdentifyError
from pos_client.rules import Program
from pos_client.scanning import IdentificationFailed, MemberIdentified
from ui.controllers.navigation import Navigator
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts

ScreenDrawn = Callable[[MemberIdentified, float], None]


@dataclass(frozen=True)
class MemberLines:
    """Everything the member screen shows, as text and fractions; names match its properties."""

    name_text: str
    tier_text: str
    balance_text: str
    pending_text: str
    offline: bool
    birthday: bool
    reward_progress_text: str
    reward_progress: float
    tier_progress_text: str
    tier_progress: float
    rewards_text: str


def member_lines(session: MemberSession, program: Program, texts: Texts) -> MemberLines:
    view = session.view
    pending = []
    if session.pending_points:
        pending.append(f"+{texts.number(session.pending_points)}")
    if session.pending_redemptions:
        pending.append(f"-{texts.number(session.pending_redemptions)}")
    if view.next_reward_name and view.next_reward_remaining is not None:
        reward_text = texts.tr(
            "member.next_reward",
            points=texts.points(view.next_reward_remaining),
            reward=view.next_reward_name,
        )
        total = view.balance + view.next_reward_remaining
        reward_progress = view.balance / total if total else 0
    else:
        reward_text, reward_progress = "", 1
    if view.next_tier_name and view.next_tier_remaining is not None:
        tier_text = texts.tr(
            "member.next_tier",
            remaining=texts.number(view.next_tier_remaining),
            tier=view.next_tier_name,
        )
        tiers = program.tiers.tiers
        target = next((t.threshold for t in tiers if t.name == view.next_tier_name), 0)
        tier_progress = float(1 - view.next_tier_remaining / target) if target else 0
    else:
        tier_text, tier_progress = texts.tr("member.top_tier"), 1
    rewards = "\n".join(
        (
            f"{r.name} — {texts.points(r.cost)}"
            if r.affordable
            else f"[color=8a8f98]{r.name} — {texts.points(r.cost)}[/color]"
        )
        for r in view.rewards
    )
    return MemberLines(
        name_text=f"{view.display_name}   {view.phone_hint}",
        tier_text=f"{texts.tr('member.tier')}: {view.tier_name}",
        balance_text=texts.points(view.balance),
        pending_text=(" ".join(pending) + f" {texts.tr('member.pending')}") if pending else "",
        offline=not session.online,
        birthday=view.birthday_reward,
        reward_progress_text=reward_text,
        reward_progress=reward_progress,
        tier_progress_text=tier_text,
        tier_progress=tier_progress,
        rewards_text=rewards or "-",
    )


class MemberController:
    def __init__(
        self,
        checkout: Checkout,
        program: Program,
        bus: EventBus,
        region: str,
        nav: Navigator,
        texts: Texts,
        customer: Customer,
        activity: Activity,
        screen_drawn: ScreenDrawn,
    ) -> None:
        self._checkout = checkout
        self._program = program
        self._bus = bus
        self._region = region
        self._nav = nav
        self._texts = texts
        self._customer = customer
        self._activity = activity
        self._screen_drawn = screen_drawn
        self._awaiting_draw: MemberIdentified | None = None

    # ------------------------------------------------------------ the member screen

    def present(self) -> MemberLines | None:
        session = self._customer.session
        return None if session is None else member_lines(session, self._program, self._texts)

    def refresh_session(self) -> None:
        """Fetch the member again (off the clock) and redraw the member screen if shown."""
        session = self._customer.session
        if session is None:
            return

        def done(result: Any, error: BaseException | None) -> None:
            if error is None and self._customer.session is not None and result is not None:
                self._customer.session = result
                if self._nav.current == "member":
                    self._nav.refresh_current()

        self._nav.run_async(lambda: self._checkout.refresh(session), done)

    # ------------------------------------------------------------ phone entry

    def format_phone_as_typed(self, digits: str) -> str:
        import phonenumbers

        formatter = phonenumbers.AsYouTypeFormatter(self._region)
        shown = ""
        for char in digits:
            shown = formatter.input_digit(char)
        return str(shown)

    def lookup_phone(self, digits: str) -> str | None:
        """Look the number up (the answer comes as an event); a problem with it, or None."""
        try:
            self._checkout.parse(digits, "phone")
        except IdentifyError as exc:
            return f"{self._texts.tr('phone.invalid')}: {exc}"
        self._customer.pending_phone = digits
        self._bus.publish(ScanEvent("keypad", "phone", digits))
        return None

    # ------------------------------------------------------------ events (on the clock)

    def on_scan_started(self, _event: ScanEvent) -> None:
        self._activity.touch()
        self._nav.begin_wait()

    def on_identified(self, event: MemberIdentified) -> None:
        self._nav.end_wait()
        self._customer.session = event.session
        self._nav.clear_message()
        self._awaiting_draw = event
        self._nav.go("member")

    def on_failed(self, event: IdentificationFailed) -> None:
        self._nav.end_wait()
        phone = self._customer.pending_phone
        if event.can_enroll and event.source == "keypad" and phone:
            self._customer.session = None
            screen = self._nav.switch("enroll")
            screen.refresh()
            screen.phone_hint = "•" * 6 + phone[-2:]
            return
        texts = {
            "unknown": self._texts.tr("error.unknown"),
            "invalid": self._texts.tr("error.invalid"),
            "reader": self._texts.tr("error.reader", detail=event.message),
        }
        self._nav.show_message(texts.get(event.reason, event.message))

    def frame_drawn(self, *_args: Any) -> None:
        """Window on_flip: the member screen of an identification is on the glass."""
        event = self._awaiting_draw
        if event is not None and self._nav.current == "member":
            self._awaiting_draw = None
            self._screen_drawn(event, time.perf_counter())
