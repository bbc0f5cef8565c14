"""The use cases a terminal offers: identify -> show -> preview -> earn/redeem -> receipt,
and enrollment. Offline-capable: the member cache answers lookups, every sale goes to the
outbox first, and offline redemption is limited by the last known balance."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pos_client import rules
from pos_client.deferred import Deferred
from pos_client.domain import (
    Consent,
    Identity,
    IdentityKind,
    MemberStats,
    MemberView,
    OfferLeft,
    Purchase,
    mask_name,
    money_in,
    money_problem,
    name_problem,
    tidy_name,
    utcnow,
    uuid7,
)
from pos_client.errors import CodedError
from pos_client.events import EventBus, SaleRecorded
from pos_client.identify import (
    IdentifyError,
    gs1_check_digit,
    identify,
    parse_phone,
    readings,
)
from pos_client.operations import (
    MAX_TEXT,
    PARTNER_ACCOUNT_MAX,
    ActionOp,
    EnrollOp,
    GiveOp,
    OpRejected,
    RedemptionRequest,
    SaleOp,
    StaffAward,
    partner_account_problem,
    sendable_problem,
)
from pos_client.outbox import Outbox
from pos_client.pins import PinRefused, pin_problem
from pos_client.ports import Backend, BackendUnavailable, CardRefused
from pos_client.privacy import OfflineLookupKey, PhoneHasher
from pos_client.rules import EarnBreakdown, Program, RedemptionPlan, RulesError

log = logging.getLogger(__name__)


# What the store server would refuse as malformed text (too long, control characters).
TEXT_INVALID = "text_invalid"


class CheckoutError(CodedError):
    """A refusal: an English detail (str) for logs, a code and parameters for the screen."""


class MemberNotFound(CheckoutError):
    def __init__(
        self, identity: Identity, message: str = "no member with this card or phone"
    ) -> None:
        super().__init__(message, "member_not_found")
        self.identity = identity


class AmbiguousInput(IdentifyError):
    """Input read several ways (no hint), each finding a different member."""


def describe_reading(identity: Identity) -> str:
    """A reading named for staff without the identifier in clear (masked)."""
    names = {
        IdentityKind.PHONE: "a phone number",
        IdentityKind.CARD_UID: "a card UID",
        IdentityKind.CARD_NUMBER: "a card number",
        IdentityKind.MEMBER_NUMBER: "a member number",
        IdentityKind.SECURE_CARD: "a secure card",
    }
    name = names.get(identity.kind, identity.kind.value)
    detail = f" ({identity.symbology})" if identity.symbology else ""
    return f"{name}{detail} {identity.masked()}"


class AlreadyMember(CheckoutError):
    def __init__(self, session: MemberSession) -> None:
        super().__init__("this phone number already belongs to a member", "already_member")
        self.session = session


SECURE_UID_BYTES = 7  # an NTAG 424 DNA's UID
# A first PIN is set only for a member found by their card (a phone number is anyone's).
PIN_SETTING_IDENTIFICATIONS = frozenset({"secure_card", "card_number", "member_number"})


@dataclass(frozen=True)
class CheckoutPolicy:
    terminal_id: str
    region: str
    channel: str  # "cashier" or "kiosk"
    consent_text_id: str
    offline_redeem_cap: int
    redeem_on_uid: bool
    # At a kiosk no one checks who typed a phone number, and a number is not a secret:
    # spending on a number alone needs this switch (a cashier may, staff are present).
    kiosk_spend_by_phone: bool = False
    max_sale_amount: Decimal = Decimal("100000")  # as the store server's default
    merchant: str = ""  # the coalition merchant of this till: its earning rates
    timezone: str = "UTC"  # the store's: the day a partner offer is open on


@dataclass(frozen=True)
class MemberSession:
    """A member identified at this terminal, with what is still unsynced for them."""

    view: MemberView
    identity: Identity
    online: bool  # the view is fresh from the backend
    pending_points: int = 0
    pending_redemptions: int = 0
    pin_verified: bool = False  # found by phone, then gave their PIN: "phone_pin"

    @property
    def identified_by(self) -> str:
        """How the member was identified here, as programmes' spending policies name it."""
        return "phone_pin" if self.pin_verified else self.identity.kind.value

    @property
    def spendable(self) -> int:
        return max(0, self.view.balance - self.pending_redemptions)


@dataclass(frozen=True)
class Receipt:
    key: str
    kind: str
    member_name: str
    expected_points: int
    redeemed_points: int
    discount: Decimal
    cash_due: Decimal
    reward_id: str | None
    offline: bool
    breakdown: tuple[str, ...]
    recorded_at: datetime
    free_count: int = 0  # nights or purchases free by the programme's every-Nth rule
    free_value: Decimal = Decimal(0)
    offers: tuple[rules.AppliedOffer, ...] = ()  # partner offers the sale got by itself


def offers_discount(offers: tuple[rules.AppliedOffer, ...]) -> Decimal:
    return sum((offer.discount for offer in offers), Decimal(0))


# Cache lookups written since phones are keyed with the slow KDF carry this form; rows
# without it were written by earlier versions (phones under the fast HMAC).
CACHE_FORM = "k2:"


def cache_lookup_key(kind: str, value: str) -> str:
    """Where the offline cache keeps a member: for a phone, `value` is already the KDF."""
    return CACHE_FORM + legacy_cache_lookup_key(kind, value)


def legacy_cache_lookup_key(kind: str, value: str) -> str:
    """The lookup of earlier versions (phones' `value` being the fast HMAC)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def new_card_number(prefix: str = "29") -> str:
    """An in-house EAN-13 (GS1 prefixes 20-29 are for in-store numbering)."""
    body = prefix + "".join(str(secrets.randbelow(10)) for _ in range(12 - len(prefix)))
    return body + str(gs1_check_digit(body))


class Checkout:
    def __init__(
        self,
        backend: Backend,
        outbox: Outbox,
        program: Program,
        hasher: PhoneHasher,
        policy: CheckoutPolicy,
        bus: EventBus | None = None,
        wake_sync: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        cache_hasher: OfflineLookupKey | None = None,
        cache_lifetime: timedelta | None = None,
        server_hashes_phones: bool = False,
        cache_writer: Deferred | None = None,
    ) -> None:
        self.backend = backend
        self.outbox = outbox
        self.program = program
        self.program_version: str | None = None  # told in each sale: the preview's rules
        self.hasher = hasher
        # The offline member cache is keyed under this terminal's own key (never the
        # store-wide one), phones with a slow KDF, and forgets members not seen for
        # `cache_lifetime`. With no key given, one for this process only.
        self.cache_hasher = cache_hasher or OfflineLookupKey(secrets.token_bytes(32))
        # Caching a member found online (a KDF for a phone) runs here, off the lookup's
        # path; None: at once, on the caller's thread.
        self.cache_writer = cache_writer
        self.cache_lifetime = cache_lifetime
        # Paired without the store-wide phone key: the backend keys the numbers it is sent.
        self.server_hashes_phones = server_hashes_phones
        self.policy = policy
        self.bus = bus or EventBus()
        self.wake_sync = wake_sync
        self.clock = clock

    def set_channel(self, channel: str) -> None:
        """Staff switched the terminal between cashier and kiosk."""
        self.policy = replace(self.policy, channel=channel)

    # ------------------------------------------------------------ identify

    def parse(self, raw: str, hint: str | None = None) -> Identity:
        return identify(raw, self.policy.region, hint)

    def readings(self, raw: str, hint: str | None = None) -> list[Identity]:
        return readings(raw, self.policy.region, hint)

    def identify(self, raw: str, hint: str | None = None) -> MemberSession:
        """Raw input -> member session; IdentifyError for bad input, MemberNotFound if unknown.
        Input with several readings (no hint; e.g. digits that are both a card UID and a
        phone number of the store's region) is looked up under each: resolved when exactly
        one member matches, else a clear error naming the readings."""
        return self.find_any(self.readings(raw, hint))

    def find_any(self, identities: list[Identity]) -> MemberSession:
        if len(identities) == 1:
            return self.find(identities[0])
        matches: dict[str, MemberSession] = {}
        for identity in identities:
            try:
                session = self.find(identity)
            except MemberNotFound:
                continue
            matches.setdefault(session.view.member_id, session)
        named = " or ".join(describe_reading(identity) for identity in identities)
        if len(matches) == 1:
            return next(iter(matches.values()))
        if not matches:
            raise MemberNotFound(identities[0], f"no member with this input read as {named}")
        raise AmbiguousInput(
            f"this input matches {len(matches)} members, read as {named}: "
            "enter it with its source (a phone number on the phone keypad, a card by tapping)"
        )

    def find(self, identity: Identity, card_uid: bytes = b"") -> MemberSession:
        """The member for an identity; `card_uid`: for a secure card, the UID the reader
        saw beside its message (the backend checks the message proves it)."""
        if identity.kind is IdentityKind.SECURE_CARD:
            return self._secure_card(identity, card_uid)
        view, online = self._lookup(identity)
        if view is None:
            raise MemberNotFound(identity)
        return self._session(view, identity, online=online)

    def _lookup(self, identity: Identity) -> tuple[MemberView | None, bool]:
        """The member's view (None if unknown) and whether the backend answered (else the
        terminal's cache did)."""
        kind, value = self.backend_ref(identity)
        try:
            view = self.backend.lookup(kind, value)
        except BackendUnavailable:
            self.forget_expired()
            self.settle()  # a member cached a moment ago is found
            cached = self.outbox.cached_member(self.cache_key(identity))  # the KDF: here
            if cached is None:
                log.info("offline and %s not in the member cache", identity.redacted())
            return cached, False
        if view is not None:
            self.remember(identity, view)
        return view, True

    def _secure_card(self, identity: Identity, card_uid: bytes) -> MemberSession:
        """A secure card's message, verified by the store server (the terminal holds no
        card keys): the member; MemberNotFound for a genuine card linked to no one;
        CardRefused for a copy, a forgery, or when it cannot be checked now. The message
        is never cached (it changes on every tap), but the UID it proved is: offline, a
        card verified here before is found by that UID alone, and counts as what it then
        is, a tag (its spending follows `redeem_on_uid` and the programme's policy)."""
        if len(card_uid) != SECURE_UID_BYTES:
            card_uid = b""  # no NTAG 424 DNA UID (none read, a random ID): nothing to bind
        uid = Identity(IdentityKind.CARD_UID, card_uid.hex().upper()) if card_uid else None
        try:
            view = self.backend.tap(identity.value, card_uid or None)
        except CardRefused as refused:
            if refused.code == "card_blocked" and uid is not None:
                self.outbox.forget_cached(self._secure_cache_key(uid))  # nor offline, then
            raise
        except BackendUnavailable:
            cached = None
            if uid is not None:
                self.forget_expired()
                cached = self.outbox.cached_member(self._secure_cache_key(uid))
            if uid is None or cached is None:
                raise CardRefused(
                    "secure cards are checked by the store server, which cannot be reached "
                    "now; scan the card's barcode or enter a phone number",
                    "secure_card_offline",
                ) from None
            log.info("offline: a secure card verified before, found by its tag %s", uid.redacted())
            return self._session(cached, uid, online=False)
        if view is None:
            raise MemberNotFound(identity)
        if uid is not None:  # the backend proved this UID is the message's
            self.outbox.cache_member(self._secure_cache_key(uid), view)
        return self._session(view, identity, online=True)

    def remember(self, identity: Identity, view: MemberView) -> None:
        """Cache a member for offline lookups under this identity: for a phone that costs a
        slow KDF, so with a cache writer it runs there, after the answer is on its way."""

        if identity.kind is IdentityKind.SECURE_CARD:
            return  # a message that changes on every tap is no key to find a member by

        def write() -> None:
            self.outbox.cache_member(self.cache_key(identity), view)

        if self.cache_writer is None or identity.kind is not IdentityKind.PHONE:
            write()
        elif not self.cache_writer.submit(write):
            log.info("member cache busy: %s not cached this time", identity.redacted())

    def settle(self) -> None:
        """Wait for members being cached in the background to be written."""
        if self.cache_writer is not None:
            self.cache_writer.flush()

    def upgrade_cache(self) -> tuple[int, int]:
        """Cache rows written by earlier versions, whose phones are keyed with the fast HMAC:
        a card number row (provable from its view) is kept under the new form; every other
        (a phone, or a card UID: the two cannot be told apart) is deleted and overwritten.
        Those members are cached again the next time they are found online. (kept, dropped)"""

        def rekey(lookup: str, view: MemberView) -> str | None:
            number = view.card_number
            if number and lookup == legacy_cache_lookup_key("card_number", number):
                return cache_lookup_key("card_number", number)
            return None

        kept, dropped = self.outbox.rekey_cached_members(CACHE_FORM, rekey)
        if kept or dropped:
            log.info(
                "offline member cache upgraded: %d card number(s) kept, %d older entries "
                "(phones under the fast key, card UIDs) dropped until seen online again",
                kept,
                dropped,
            )
        return kept, dropped

    def backend_ref(self, identity: Identity) -> tuple[str, str]:
        """How the backend is asked for this identity: a phone as the store's keyed HMAC,
        or, on a terminal without the store-wide key, as the number for the server to key."""
        if identity.kind is IdentityKind.PHONE and self.server_hashes_phones:
            return "phone_number", identity.value
        return identity.kind.value, self.hasher.lookup_value(identity)

    def _secure_cache_key(self, uid: Identity) -> str:
        """Where a secure card verified here is cached: apart from tags, so a plain tag
        carrying a copied UID never finds it, online or off."""
        return cache_lookup_key("secure_card_uid", uid.value)

    def cache_key(self, identity: Identity) -> str:
        """Where the offline cache keeps a member seen under this identity: phones under
        this terminal's own key, so the store-wide key never unlocks the cache."""
        return cache_lookup_key(identity.kind.value, self.cache_hasher.lookup_value(identity))

    def forget_expired(self) -> int:
        """Drop cached members not seen within the configured lifetime."""
        if self.cache_lifetime is None:
            return 0
        return self.outbox.forget_members_before(self.clock() - self.cache_lifetime)

    def refresh(self, session: MemberSession) -> MemberSession:
        """The member's view again; how they were identified (a PIN given) stays."""
        try:
            view = self.backend.member(session.view.member_id)
        except BackendUnavailable:
            view = self.outbox.cached_member_by_id(session.view.member_id) or session.view
            fresh = self._session(view, session.identity, online=False)
            return replace(fresh, pin_verified=session.pin_verified)
        if view is None:
            return session
        self.remember(session.identity, view)
        fresh = self._session(view, session.identity, online=True)
        return replace(fresh, pin_verified=session.pin_verified)

    def pin_would_spend(self, session: MemberSession) -> bool:
        """A member found by phone who may not spend so: would their PIN let them?"""
        return (
            session.identity.kind is IdentityKind.PHONE
            and not session.pin_verified
            and self.spend_refusal(session) is not None
            and self.program.spending.allows("phone_pin")
        )

    def _session(self, view: MemberView, identity: Identity, online: bool) -> MemberSession:
        points, redemptions = self.outbox.unsynced_for_member(view.member_id)
        if not online:
            view = self._reprice(view, view.balance - redemptions)
        return MemberSession(view, identity, online, points, redemptions)

    def _reprice(self, view: MemberView, spendable: int) -> MemberView:
        """A cached view's rewards and progress, recomputed for what can be spent now."""
        try:
            tier = self.program.tiers.by_id(view.tier_id)
        except KeyError:
            return view
        offers = rules.reward_offers(self.program, max(0, spendable), tier, view.birthday_reward)
        nearest = rules.next_reward(self.program, max(0, spendable), tier)
        return replace(
            view,
            rewards=offers,
            next_reward_name=nearest[0] if nearest else None,
            next_reward_remaining=nearest[1] if nearest else None,
        )

    def tier_of(self, session: MemberSession) -> rules.Tier:
        try:
            return self.program.tiers.by_id(session.view.tier_id)
        except KeyError:
            return self.program.tiers.tiers[0]

    # ------------------------------------------------------------ who may spend

    def spend_refusal(self, session: MemberSession) -> CheckoutError | None:
        """Why points may not be spent (rewards, transfers, donations) for the member as they
        were identified here, or None. Earning is never refused on these grounds."""
        kind = session.identity.kind
        spending = self.program.spending
        if not spending.allows(session.identified_by):
            if spending.identified_by == frozenset({IdentityKind.SECURE_CARD.value}):
                return CheckoutError(
                    "this programme spends points only on a tap of the member's secure card",
                    "secure_card_to_spend",
                )
            return CheckoutError(
                "this programme does not spend points on this kind of identification: "
                "tap or scan the member card",
                "identification_cannot_spend",
            )
        if session.pin_verified:
            return None  # a number and its PIN: a secret given, as a card tapped
        tag_spends = self.policy.redeem_on_uid
        phone_spends = self.policy.channel != "kiosk" or self.policy.kiosk_spend_by_phone
        if kind is IdentityKind.CARD_UID and not tag_spends:
            if not phone_spends:  # nor would a phone number: only the card's code is left
                return CheckoutError(
                    "spending needs the member card's barcode scanned", "scan_card_to_spend"
                )
            return CheckoutError(
                "spending needs a phone number or a member card, not a bare tag",
                "uid_cannot_spend",
            )
        if kind is IdentityKind.PHONE and not phone_spends:
            if not tag_spends:
                return CheckoutError(
                    "spending needs the member card's barcode scanned", "scan_card_to_spend"
                )
            return CheckoutError(
                "at a kiosk a phone number alone cannot spend points: tap or scan the card",
                "phone_cannot_spend",
            )
        return None

    # ------------------------------------------------------------ member PINs

    def set_pin(self, session: MemberSession, pin: str, current_pin: str | None = None) -> None:
        """The member chooses their PIN at the desk: found by their card (a phone number
        is anyone's to type), or changing it with the current one. CheckoutError: a PIN
        that cannot be one, the card needed, the current PIN needed or wrong, offline."""
        problem = pin_problem(pin)
        if problem:
            raise CheckoutError(problem, "pin_invalid")
        if current_pin is None and session.identified_by not in PIN_SETTING_IDENTIFICATIONS:
            raise CheckoutError(
                "a PIN is chosen with the member's card scanned or tapped, not a phone number",
                "pin_needs_card",
            )
        try:
            self.backend.set_pin(session.view.member_id, pin, current_pin)
        except PinRefused as refused:
            raise CheckoutError(str(refused), refused.code) from None
        except ValueError as exc:
            raise CheckoutError(str(exc), "pin_invalid") from None
        except BackendUnavailable:
            raise CheckoutError(
                "PINs are kept by the store server, which cannot be reached now", "pin_offline"
            ) from None

    def verify_pin(self, session: MemberSession, pin: str) -> MemberSession:
        """The member found by phone gives their PIN: the session that may spend as
        `phone_pin`. CheckoutError: wrong (tries left), locked, none chosen, offline."""
        try:
            check = self.backend.check_pin(session.view.member_id, pin)
        except BackendUnavailable:
            raise CheckoutError(
                "PINs are checked by the store server, which cannot be reached now",
                "pin_offline",
            ) from None
        if check.ok:
            return replace(session, pin_verified=True)
        if check.no_pin:
            raise CheckoutError(
                "this member has no PIN yet: one is chosen at the desk", "pin_not_set"
            )
        if check.locked_until is not None:
            raise CheckoutError("too many wrong PINs: locked for a while", "pin_locked")
        raise CheckoutError(
            f"wrong PIN ({check.remaining} tries left)", "pin_wrong", remaining=check.remaining
        )

    def check_can_spend(self, session: MemberSession) -> None:
        refusal = self.spend_refusal(session)
        if refusal is not None:
            raise refusal

    # ------------------------------------------------------------ preview and plans

    def preview(
        self, session: MemberSession, purchase: Purchase, plan: RedemptionPlan | None = None
    ) -> EarnBreakdown:
        return self._preview(session, purchase, plan, self.sale_offers(session, purchase, plan))

    def _preview(
        self,
        session: MemberSession,
        purchase: Purchase,
        plan: RedemptionPlan | None,
        offers: tuple[rules.AppliedOffer, ...],
    ) -> EarnBreakdown:
        breakdown = rules.earn_points(
            self.till_program,
            purchase,
            self.tier_of(session),
            birthday_bonus_due=session.view.birthday_reward and self.program.birthday.points > 0,
            discount=(plan.discount if plan else Decimal(0)) + offers_discount(offers),
            free=self.free_items(session, purchase, plan),
        )
        bonus = sum(offer.points for offer in offers)
        if not bonus:
            return breakdown
        return replace(breakdown, points=breakdown.points + bonus, offer_points=bonus)

    def today(self) -> date:
        """The store's day now."""
        return self.clock().astimezone(ZoneInfo(self.policy.timezone)).date()

    def sale_offers(
        self, session: MemberSession, purchase: Purchase, plan: RedemptionPlan | None = None
    ) -> tuple[rules.AppliedOffer, ...]:
        """The member's partner offers this sale gets by itself: those the member's view
        says are left, still open today (the view may be an offline copy), met by the sale
        (the store server checks each again)."""
        if not self.program.offers or not session.view.offers:
            return ()
        today = self.today()
        tier = self.tier_of(session)
        pending = self.outbox.offer_uses_since(session.view.member_id, session.view.as_of)
        still_open = [
            OfferLeft(left.offer_id, left.uses_left - pending.get(left.offer_id, 0))
            for left in session.view.offers
            if (offer := self.program.offer(left.offer_id)) is not None
            and rules.offer_open(self.program, offer, tier, session.view.stats, today)
        ]
        spent = plan.discount if plan is not None else Decimal(0)
        left_to_pay = purchase.total - self.free_items(session, purchase, plan).value - spent
        return rules.offers_for_sale(self.program, still_open, purchase, left_to_pay)

    def free_items(
        self, session: MemberSession, purchase: Purchase, plan: RedemptionPlan | None = None
    ) -> rules.FreeItems:
        """The free nights or purchase this sale reaches by the programme's every-Nth rule,
        from the member's counts as last read (the store server decides again on sync);
        none when points are spent as money and the rule may not be combined."""
        spent = plan.discount if plan is not None else Decimal(0)
        return rules.free_for_member(self.till_program, purchase, session.view.stats, spent)

    @property
    def till_program(self) -> Program:
        """The programme as this till earns under it (a coalition merchant's rates)."""
        return rules.program_at_merchant(self.program, self.policy.merchant)

    def plan_redemption(
        self,
        session: MemberSession,
        *,
        reward_id: str | None = None,
        blocks: int | None = None,
        all_blocks: bool = False,
        option: int | None = None,
        purchase_total: Decimal = Decimal(0),
    ) -> RedemptionPlan:
        """Check a redemption against the program and this terminal's offline policy."""
        self.check_can_spend(session)
        try:
            if reward_id is not None:
                plan = rules.plan_reward(
                    self.program,
                    reward_id,
                    session.spendable,
                    self.tier_of(session),
                    option=option,
                    birthday_available=session.view.birthday_reward,
                )
            elif blocks is not None or all_blocks:
                plan = rules.plan_money_blocks(
                    self.program, None if all_blocks else blocks, session.spendable, purchase_total
                )
            else:
                raise CheckoutError("choose a reward or a number of blocks", "choose_reward")
        except RulesError as exc:
            raise CheckoutError(str(exc), exc.code, **exc.params) from None
        if not session.online and plan.points > self.policy.offline_redeem_cap:
            raise CheckoutError(
                f"offline: at most {self.policy.offline_redeem_cap} {self.program.unit_name}"
                " can be redeemed until the connection is back",
                "offline_cap",
                points=self.policy.offline_redeem_cap,
            )
        return plan

    # ------------------------------------------------------------ recording

    def _record(self, body: dict[str, Any], now: datetime) -> None:
        """Record an operation durably, unless the store server would refuse it as it
        stands (a category with an escape, a 300-character SKU, a 200-letter name): refused
        here, before it is recorded, by the rules the server parses with."""
        refusal = sendable_problem(body)
        if refusal is not None:
            raise CheckoutError(refusal.message, TEXT_INVALID)
        self.outbox.add(body, now=now)

    def checked_purchase(self, purchase: Purchase) -> Purchase:
        """The purchase with each amount in the currency's decimals; refused here, before it
        is recorded, when the store server would refuse it (10.555 dollars, 1E+9)."""
        currency = self.program.currency
        for line in purchase.lines:
            problem = money_problem(line.amount, currency)
            if problem is not None:
                raise CheckoutError(f"amount {problem}", "amount_invalid")
        checked = Purchase(
            tuple(replace(line, amount=money_in(line.amount, currency)) for line in purchase.lines)
        )
        if checked.total > self.policy.max_sale_amount:
            raise CheckoutError(
                f"a sale may total at most {self.policy.max_sale_amount} {currency} here",
                "amount_over_limit",
                amount=self.policy.max_sale_amount,
            )
        return checked

    def earn(
        self,
        session: MemberSession,
        purchase: Purchase,
        plan: RedemptionPlan | None = None,
        redemption: RedemptionRequest | None = None,
    ) -> Receipt:
        """Record a sale (earning and any redemption) durably; sync happens after."""
        purchase = self.checked_purchase(purchase)
        if purchase.total <= 0 and plan is None:
            raise CheckoutError("the purchase amount must be above zero", "amount_zero")
        free = self.free_items(session, purchase, plan)
        if plan is not None and free.value and plan.discount + free.value > purchase.total:
            raise CheckoutError(
                "the points spent as money are more than what is left to pay after the free one",
                "not_combinable",
            )
        offers = self.sale_offers(session, purchase, plan)  # read once: the outbox's uses
        breakdown = self._preview(session, purchase, plan, offers)
        if plan is not None and redemption is None:
            redemption = RedemptionRequest(
                reward_id=plan.reward_id,
                option=plan.option,  # else the backend charges the reward's full points
                blocks=plan.blocks or None,
                points=plan.points,
            )
        op = SaleOp(
            key=uuid7(),
            member_id=session.view.member_id,
            terminal_id=self.policy.terminal_id,
            occurred_at=self.clock(),
            purchase=purchase,
            redemption=redemption,
            expected_points=breakdown.points,
            offline=not session.online,
            program_version=self.program_version,
            offers=tuple(offer.offer_id for offer in offers),
        )
        self._record(op.to_body(), op.occurred_at)
        self.bus.publish(
            SaleRecorded(op.key, op.member_id, breakdown.points, op.redeem_points, op.offline)
        )
        self.wake_sync()
        return Receipt(
            key=op.key,
            kind=op.kind,
            member_name=session.view.display_name,
            expected_points=breakdown.points,
            redeemed_points=op.redeem_points,
            discount=plan.discount if plan else Decimal(0),
            cash_due=max(
                purchase.total
                - (plan.discount if plan else 0)
                - free.value
                - offers_discount(offers),
                Decimal(0),
            ),
            reward_id=plan.reward_id if plan else None,
            offline=op.offline,
            breakdown=tuple(breakdown.explain()),
            recorded_at=op.occurred_at,
            free_count=free.count,
            free_value=free.value,
            offers=offers,
        )

    def redeem(self, session: MemberSession, reward_id: str, option: int | None = None) -> Receipt:
        """Redeem a catalog reward on its own (no purchase to earn on)."""
        plan = self.plan_redemption(session, reward_id=reward_id, option=option)
        purchase = Purchase.of_amount(plan.cash_due)
        return self.earn(session, purchase, plan)

    def give(
        self,
        session: MemberSession,
        target_id: str,
        points: int,
        partner_account: str | None = None,
    ) -> Receipt:
        """Transfer points to a partner programme (to the member's account number there,
        required) or donate them to a charity (no account)."""
        self.check_can_spend(session)
        try:
            plan = rules.plan_give(self.program, target_id, points, session.spendable)
        except RulesError as exc:
            raise CheckoutError(str(exc), exc.code, **exc.params) from None
        if not session.online and plan.points > self.policy.offline_redeem_cap:
            raise CheckoutError(
                f"offline: at most {self.policy.offline_redeem_cap} {self.program.unit_name}"
                " can be spent until the connection is back",
                "offline_cap",
                points=self.policy.offline_redeem_cap,
            )
        account = None
        if plan.target.kind == "partner":
            problem = partner_account_problem(partner_account)
            if problem is not None:
                raise CheckoutError(
                    f"a transfer to {plan.target.name} needs the member's account number there"
                    f" (1 to {PARTNER_ACCOUNT_MAX} ASCII letters and digits)",
                    problem,
                    target_id=plan.target.id,
                    count=PARTNER_ACCOUNT_MAX,
                )
            account = partner_account
        op = GiveOp(
            key=uuid7(),
            member_id=session.view.member_id,
            target_id=target_id,
            points=plan.points,
            terminal_id=self.policy.terminal_id,
            occurred_at=self.clock(),
            partner_account=account,
        )
        self._record(op.to_body(), op.occurred_at)
        self.wake_sync()
        line = f"{plan.target.name}: {plan.points} -> {plan.converted} {plan.target.unit_name}"
        return Receipt(
            op.key,
            op.kind,
            session.view.display_name,
            0,
            plan.points,
            Decimal(0),
            Decimal(0),
            plan.target.id,
            not session.online,
            (line,),
            op.occurred_at,
        )

    def record_action(self, session: MemberSession, action_id: str) -> Receipt:
        try:
            points = rules.action_points(self.program, action_id)
        except RulesError as exc:
            raise CheckoutError(str(exc), exc.code, **exc.params) from None
        op = ActionOp(
            key=uuid7(),
            member_id=session.view.member_id,
            action=action_id,
            terminal_id=self.policy.terminal_id,
            occurred_at=self.clock(),
            expected_points=points,
        )
        self._record(op.to_body(), op.occurred_at)
        self.wake_sync()
        rule = self.program.actions[action_id]
        return Receipt(
            op.key,
            op.kind,
            session.view.display_name,
            points,
            0,
            Decimal(0),
            Decimal(0),
            None,
            not session.online,
            (f"{rule.name}: {points}",),
            op.occurred_at,
        )

    def pass_link(self, session: MemberSession) -> str:
        """A short-lived link to the member's wallet passes (the phone opens it from a QR
        code). CheckoutError `passes_off` where the backend makes none, `passes_offline`
        when the store server does not answer."""
        try:
            return self.backend.pass_link(session.view.member_id)
        except BackendUnavailable:
            raise CheckoutError("wallet passes need the store server", "passes_offline") from None
        except OpRejected as exc:
            code = "passes_off" if exc.code == "passes_off" else "member_not_found"
            raise CheckoutError(exc.message, code) from None

    def award(
        self,
        session: MemberSession,
        points: int,
        reason: str,
        staff: tuple[str, str],
        approver: tuple[str, str] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """A staff member's award of points to the member, with their PIN (and above the
        programme's approval size another staff member's): online only, checked and applied
        by the backend at once (no PIN is ever queued). CheckoutError with the refusal's
        code; offline, code `offline`; sent but not answered, code `outcome_unknown` with
        the award's `key`: the same award with that key again is never given twice."""
        policy = self.program.staff_awards
        if policy is None:
            raise CheckoutError("the programme has no staff awards", "no_staff_awards")
        if not 1 <= points <= policy.max_points:
            raise CheckoutError(
                f"an award gives 1 to {policy.max_points} points",
                "award_over_limit",
                count=policy.max_points,
            )
        if policy.needs_approval(points) and approver is None:
            raise CheckoutError(
                "another staff member's PIN approves this award",
                "approval_required",
                count=policy.approval_over,
            )
        award = StaffAward(
            key or uuid7(), session.view.member_id, points, reason, staff[0], staff[1], approver
        )
        try:
            self.backend.ping()
        except BackendUnavailable:
            raise CheckoutError("staff awards need the store server", "offline") from None
        try:
            result = self.backend.award(award)
        except BackendUnavailable:
            raise CheckoutError(
                f"no answer from the store server: the award may be recorded; give the same"
                f" award again with key {award.key} (it is never given twice)",
                "outcome_unknown",
                key=award.key,
            ) from None
        except OpRejected as exc:
            raise CheckoutError(exc.message, exc.code) from None
        log.info("staff award of %d points by %s", points, staff[0])
        return result

    def inviter(self, raw: str, hint: str | None = None) -> MemberSession:
        """The member who invites someone to join (by card or phone; `hint` as for
        identify), if they have an invitation left as last read (the ledger counts again)."""
        try:
            session = self.identify(raw, hint)
        except MemberNotFound:
            raise CheckoutError("the inviting member is not a member", "unknown_inviter") from None
        if session.view.invitations_left is not None and session.view.invitations_left <= 0:
            most = self.program.membership.invitations_per_member
            raise CheckoutError(
                f"the inviting member has given all {most} invitations", "invitations_used_up"
            )
        return session

    def enroll(
        self,
        phone_raw: str,
        first_name: str,
        last_name: str = "",
        *,
        consent: bool,
        marketing: bool = False,
        birthday: date | None = None,
        guardian_consent: bool = False,
        invited_by: str = "",
    ) -> MemberSession:
        """Enroll a new member by phone, with the consent they gave recorded (and, under a
        programme's age, their parent's or guardian's)."""
        if not consent:
            raise CheckoutError(
                "the customer must accept the programme terms to join", "consent_required"
            )
        if birthday is not None and birthday > self.clock().date() + timedelta(days=1):
            raise CheckoutError("the birthday is in the future", "invalid")
        gate = self.program.membership
        refusal = rules.enrollment_refusal(gate, birthday, self.today(), guardian_consent)
        if refusal is not None:
            raise CheckoutError(refusal[1], refusal[0], count=gate.min_age)
        if gate.invitation and not invited_by:
            raise CheckoutError("the programme is joined by invitation", "invitation_required")
        # Recorded only where it was needed: an adult's enrollment says no guardian.
        guardian = (
            guardian_consent
            and rules.enrollment_refusal(gate, birthday, self.today(), False) is not None
        )
        first_name, last_name = tidy_name(first_name), tidy_name(last_name)
        if not first_name:
            raise CheckoutError("a first name is needed", "name_required")
        for name in (first_name, last_name):
            if len(name) > MAX_TEXT:
                raise CheckoutError(f"name: 1 to {MAX_TEXT} characters", TEXT_INVALID)
            problem = name_problem(name)
            if problem is not None:
                raise CheckoutError(f"name: {problem}", "name_invalid")
        identity = parse_phone(phone_raw, self.policy.region)
        existing, online = self._lookup(identity)
        if existing is not None:
            raise AlreadyMember(self._session(existing, identity, online=online))
        now = self.clock()
        card_number = new_card_number()
        op = EnrollOp(
            key=uuid7(),
            member_id=uuid7(),
            first_name=first_name,
            last_name=last_name,
            phone_key="" if self.server_hashes_phones else self.hasher.phone_key(identity.value),
            phone_last=identity.value[-2:],
            card_number=card_number,
            consent=Consent(
                self.policy.consent_text_id, now, self.policy.channel, marketing, guardian
            ),
            occurred_at=now,
            birthday=birthday,
            invited_by=invited_by if gate.invitation else "",
        )
        body = op.to_body()
        if self.server_hashes_phones:  # the server keys it; pruned here once it has it
            del body["phone_key"]
            body["phone"] = identity.value
        self._record(body, now)
        first_tier = self.program.tiers.tiers[0]
        upcoming = rules.next_tier(self.program.tiers, MemberStats())
        nearest = rules.next_reward(self.program, 0, first_tier)
        view = MemberView(
            member_id=op.member_id,
            display_name=mask_name(op.first_name, op.last_name),
            phone_hint="•" * 9 + op.phone_last,
            tier_id=first_tier.id,
            tier_name=first_tier.name,
            balance=0,
            stats=MemberStats(),
            next_tier_name=upcoming[0].name if upcoming else None,
            next_tier_remaining=upcoming[1] if upcoming else None,
            next_reward_name=nearest[0] if nearest else None,
            next_reward_remaining=nearest[1] if nearest else None,
            rewards=rules.reward_offers(self.program, 0, first_tier, False),
            card_number=card_number,
            as_of=now,
            # A welcome offer is the new member's from the first sale on.
            offers=rules.offers_left(self.program, first_tier, MemberStats(), self.today(), {}),
        )
        self.outbox.cache_member(cache_lookup_key("card_number", card_number), view)
        self.remember(identity, view)
        self.wake_sync()
        # Online, the backend has just said who is (not) a member: the new view is as fresh
        # as any it could send. Offline, it is a view the backend has not seen yet.
        return self._session(view, identity, online=online)


__all__ = [
    "AlreadyMember",
    "AmbiguousInput",
    "Checkout",
    "CheckoutError",
    "CheckoutPolicy",
    "IdentifyError",
    "MemberNotFound",
    "MemberSession",
    "Receipt",
    "describe_reading",
]
