"""Finding the member (scan, tap or phone) and what the member screen says about them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pos_client import rules
from pos_client.checkout import Checkout, MemberSession
from pos_client.domain import MemberView, RewardOffer
from pos_client.events import EventBus, ScanEvent
from pos_client.identify import IdentifyError
from pos_client.rules import Program, Tier
from pos_client.scanning import IdentificationFailed, MemberIdentified
from ui import i18n
from ui.controllers.navigation import Navigator
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts

log = logging.getLogger(__name__)

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
    reward_bar: bool  # the reward bar means something (else it is hidden)
    tier_progress_text: str
    tier_progress: float
    tier_bar: bool
    rewards_text: str
    spend_note: str = ""  # why points cannot be spent here as identified ("tap your card")
    expiring_text: str = ""  # points of the balance expiring within 30 days
    identified_text: str = ""  # how the member was identified here ("by secure card")
    pin_offer: bool = False  # found by phone, may not spend so: their PIN would let them
    offers_text: str = ""  # partners' offers open to the member today, with uses left


def _reward_progress(
    session: MemberSession, program: Program, texts: Texts, tier: Tier
) -> tuple[str, float, bool]:
    """The line about the next reward, how far along it the member is, and whether a bar
    means anything (it does not when the next reward waits for a higher level)."""
    view, language = session.view, texts.language
    if view.next_reward_name and view.next_reward_remaining is not None:
        remaining = view.next_reward_remaining
        cost = next((r.cost for r in program.catalog if r.name == view.next_reward_name), None)
        pam = program.points_as_money
        if cost is None and pam is not None:
            cost = pam.block_points
        total = cost if cost else view.balance + remaining
        progress = min(1.0, max(0.0, 1 - remaining / total)) if total else 0.0
        return i18n.next_reward_text(language, program, view), progress, True
    locked = [r for r in program.catalog if not rules.reward_allowed(program, r, tier)]
    if locked:
        order = [t.id for t in program.tiers.tiers]
        first = min(locked, key=lambda r: (order.index(r.min_tier or tier.id), r.cost))
        text = texts.tr(
            "member.reward_locked",
            reward=first.display_name(language),
            tier=program.tier_name(first.min_tier or tier.id, language),
        )
        return text, 0.0, False
    if any(r.affordable and r.cost > 0 for r in view.rewards):
        return texts.tr("member.rewards_ready"), 1.0, True
    return "", 0.0, False


def _tier_progress(
    view: MemberView, program: Program, texts: Texts, tier: Tier
) -> tuple[str, float, bool]:
    """The line about the next level and how far along it; nothing in a one-level programme,
    and "top level" only at the programme's last level."""
    levels = program.tiers.tiers
    if len(levels) <= 1:
        return "", 0.0, False
    if view.next_tier_name and view.next_tier_remaining is not None:
        target = program.tier_by_name(view.next_tier_name)
        text = i18n.next_tier_text(texts.language, program, view)
        if target is None:
            return text, 0.0, False
        span = target.threshold - tier.threshold
        done = span - view.next_tier_remaining
        progress = float(done / span) if span > 0 else 0.0
        return text, min(1.0, max(0.0, progress)), True
    if tier.id == levels[-1].id:
        return texts.tr("member.top_tier"), 1.0, True
    return "", 0.0, False  # a view without its next level: say nothing rather than "top"


def member_lines(
    session: MemberSession,
    program: Program,
    texts: Texts,
    spend_note: str = "",
    offer_uses_pending: Mapping[str, int] | None = None,
) -> MemberLines:
    view, language = session.view, texts.language
    try:
        tier = program.tiers.by_id(view.tier_id)
    except KeyError:
        tier = program.tier_by_name(view.tier_name) or program.tiers.tiers[0]
    pending = []
    if session.pending_points:
        pending.append(f"+{texts.number(session.pending_points)}")
    if session.pending_redemptions:
        pending.append(f"-{texts.number(session.pending_redemptions)}")
    reward_text, reward_progress, reward_bar = _reward_progress(session, program, texts, tier)
    tier_text, tier_progress, tier_bar = _tier_progress(view, program, texts, tier)

    def reward_row(offer: RewardOffer) -> str:
        name = program.reward_name(offer.reward_id, language, offer.name)
        row = f"{name} — {texts.points(offer.cost)}"
        return row if offer.affordable else f"[color=8a8f98]{row}[/color]"

    rewards = "\n".join(reward_row(r) for r in view.rewards)
    return MemberLines(
        name_text=f"{view.display_name}   {view.phone_hint}",
        tier_text=f"{texts.tr('member.tier')}: {i18n.tier_name(language, program, view)}",
        balance_text=texts.points(view.balance),
        pending_text=(" ".join(pending) + f" {texts.tr('member.pending')}") if pending else "",
        offline=not session.online,
        birthday=view.birthday_reward,
        reward_progress_text=reward_text,
        reward_progress=reward_progress,
        reward_bar=reward_bar,
        tier_progress_text=tier_text,
        tier_progress=tier_progress,
        tier_bar=tier_bar,
        rewards_text=rewards or "-",
        spend_note=spend_note,
        identified_text=texts.tr(i18n.IDENTIFIED_BY_KEYS[session.identified_by]),
        expiring_text=expiring_text(texts, view),
        offers_text=offers_text(texts, program, view, offer_uses_pending or {}),
    )


def offers_text(
    texts: Texts, program: Program, view: MemberView, pending: Mapping[str, int]
) -> str:
    """One partner offer a line, with its uses left (less those in unsynced sales)."""
    rows = []
    for left in view.offers:
        offer = program.offer(left.offer_id)
        uses = left.uses_left - pending.get(left.offer_id, 0)
        if offer is None or uses <= 0:  # the programme changed, or used up here meanwhile
            continue
        name = f"{offer.partner}: {offer.display_name(texts.language)}"
        rows.append(texts.tr("member.offer_left", name=name, count=uses))
    return "\n".join(rows)


def expiring_text(texts: Texts, view: MemberView) -> str:
    """What expires within 30 days, and from which day when known; for a prospect whose
    points are held until a first spend, what is held and what is still to spend."""
    if view.gate_remaining is not None:
        return texts.tr(
            "member.points_held",
            points=texts.points(view.points_held),
            amount=texts.money(view.gate_remaining),
        )
    if view.points_expiring <= 0:
        return ""
    points = texts.points(view.points_expiring)
    if view.expiring_on is None:
        return texts.tr("member.expiring", points=points)
    return texts.tr("member.expiring_on", points=points, day=texts.day(view.expiring_on))


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

    def use_program(self, program: Program) -> None:
        """The store server's new programme, from the next member on."""
        self._program = program

    def present(self) -> MemberLines | None:
        session = self._customer.session
        if session is None:
            return None
        # The core decides who may spend (a kiosk: not on a typed phone number alone).
        refusal = self._checkout.spend_refusal(session)
        note = "" if refusal is None else i18n.describe_error(self._texts.language, refusal)
        pending = self._checkout.outbox.offer_uses_since(session.view.member_id, session.view.as_of)
        lines = member_lines(session, self._program, self._texts, note, pending)
        return replace(lines, pin_offer=self._checkout.pin_would_spend(session))

    def verify_pin(self, pin: str, show_error: Callable[[str], None]) -> None:
        """The PIN typed on the PIN screen, checked off the clock: the member screen again
        with the session that may spend, or the reason on the PIN screen."""
        session = self._customer.session
        if session is None:
            self._nav.go_idle()
            return

        def done(result: Any, error: BaseException | None) -> None:
            if self._customer.session is not session:
                return  # the member left (idle) or another was found meanwhile: not theirs
            if error is not None:
                log.info("member PIN refused (%s)", getattr(error, "code", type(error).__name__))
                show_error(self._texts.error(error))
                return
            self._customer.session = result
            self._nav.go("member")

        self._nav.run_async(lambda: self._checkout.verify_pin(session, pin), done)

    def refresh_session(self) -> None:
        """Fetch the member again (off the clock) and redraw the member screen if shown."""
        session = self._customer.session
        if session is None:
            return

        def done(result: Any, error: BaseException | None) -> None:
            if error is None and self._customer.session is session and result is not None:
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
            log.info("phone number refused: %s", exc)  # the English detail, never the number
            return self._texts.error(exc)
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
        self._nav.show_message(
            i18n.error_text(self._texts.language, event.code, event.params, self._program)
        )

    def frame_drawn(self, *_args: Any) -> None:
        """Window on_flip: the member screen of an identification is on the glass."""
        event = self._awaiting_draw
        if event is not None and self._nav.current == "member":
            self._awaiting_draw = None
            self._screen_drawn(event, time.perf_counter())
