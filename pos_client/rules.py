"""Program rules as pure functions over immutable program definitions.

Money is Decimal; points are int. Earned points are computed exactly per line and floored
once per sale, so splitting a basket into lines never loses a point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from pos_client.domain import (
    MINOR_UNIT_EXPONENT,
    MemberStats,
    OfferLeft,
    Purchase,
    RewardOffer,
)
from pos_client.errors import CodedError
from pos_client.plurals import plural_index

ZERO = Decimal("0")
ONE = Decimal("1")


class EarnMode(StrEnum):
    PER_AMOUNT = "per_amount"  # points per currency unit spent
    PER_PURCHASE = "per_purchase"  # fixed points per qualifying purchase (stars)


class TierBasis(StrEnum):
    POINTS = "points"  # points earned in the period (redeeming never drops a tier)
    SPEND = "spend"
    VISITS = "visits"
    UNITS = "units"  # the programme's earning unit counted (kilometres flown, nights)
    SEGMENTS = "segments"  # sale lines carrying units (flight segments, stays)


class UnitRounding(StrEnum):
    """How a sale's points earned by units are rounded to whole points."""

    FLOOR = "floor"
    NEAREST = "nearest"  # half up
    CEILING = "ceiling"


ROUNDING_MODES = {
    UnitRounding.FLOOR: ROUND_FLOOR,
    UnitRounding.NEAREST: ROUND_HALF_UP,
    UnitRounding.CEILING: ROUND_CEILING,
}


class TierPeriod(StrEnum):
    LIFETIME = "lifetime"
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"


class Downgrade(StrEnum):
    """When a member who no longer qualifies loses a tier."""

    IMMEDIATE = "immediate"  # as soon as the period's measure is below (the default)
    PERIOD_END = "period_end"  # a tier reached in a period holds to the end of the next
    NEVER = "never"  # a tier once reached is kept
    GRACE = "grace"  # kept `grace_months` after the last sale at which the member reached it


class TenureCount(StrEnum):
    """How a tier's `min_tenure_months` counts membership."""

    MONTHS = "months"  # whole months since enrollment
    ACTIVE_MONTHS = "active_months"  # calendar months with at least one sale


class RewardKind(StrEnum):
    ITEM = "item"
    GIFT_CARD = "gift_card"


class RulesError(CodedError, ValueError):
    """A request the program does not allow: an English detail, a code and parameters."""


@dataclass(frozen=True)
class LocalNames:
    """Display names per language (ISO 639-1 code -> name); the default name fills the gaps."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, names: Mapping[str, str]) -> LocalNames:
        return cls(tuple(sorted(names.items())))

    def get(self, language: str, default: str) -> str:
        for code, name in self.items:
            if code == language and name:
                return name
        return default


@dataclass(frozen=True)
class UnitForms:
    """A unit's words per language, one per plural form ("балл", "балла", "баллов")."""

    items: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, forms: Mapping[str, Sequence[str]]) -> UnitForms:
        return cls(tuple(sorted((code, tuple(words)) for code, words in forms.items())))

    def word(self, language: str, count: int) -> str | None:
        for code, words in self.items:
            if code == language and words:
                return words[min(plural_index(language, count), len(words) - 1)]
        return None


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class Tier:
    id: str
    name: str
    threshold: Decimal = ZERO
    multiplier: Decimal = ONE
    rate_floor: Decimal | None = None  # at least this many points per unit on every line
    perks: tuple[str, ...] = ()
    names: LocalNames = LocalNames()
    # Other ways to reach this tier: any one of these measures at its threshold
    # (an airline's "25,000 km or 30 segments").
    or_thresholds: tuple[tuple[TierBasis, Decimal], ...] = ()
    min_tenure_months: int = 0  # and only after this many months of membership

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class TierPolicy:
    basis: TierBasis
    period: TierPeriod
    tiers: tuple[Tier, ...]
    downgrade: Downgrade = Downgrade.IMMEDIATE
    tenure: TenureCount = TenureCount.MONTHS
    grace_months: int = 0  # downgrade = grace: months a tier is kept below its measure

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a program needs at least one tier")
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(thresholds) or thresholds[0] != 0:
            raise ValueError("tiers must be sorted by threshold, the first at 0")
        if self.tiers[0].min_tenure_months:
            raise ValueError("the first tier is everyone's: it needs no tenure")
        if self.downgrade is Downgrade.PERIOD_END and self.period is TierPeriod.LIFETIME:
            raise ValueError("downgrade at period end needs a period (calendar_year, rolling)")
        if (self.downgrade is Downgrade.GRACE) != (self.grace_months > 0):
            raise ValueError("downgrade = grace goes with grace_months (1 to 60), and only it")

    @property
    def keeps_tiers(self) -> bool:
        """Whether tiers reached are recorded and kept (never, or for a grace)."""
        return self.downgrade in (Downgrade.NEVER, Downgrade.GRACE)

    @property
    def needs_tenure(self) -> bool:
        return any(tier.min_tenure_months for tier in self.tiers)

    def by_id(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)


@dataclass(frozen=True)
class UnitEarning:
    """Earning by a unit other than price: `rate` points per `per` units of `unit` on each
    line that carries units (per-category rates beside it), a line counted as at least
    `minimum_per_line` units (an airline's minimum miles a segment), a line of more than
    `max_per_line` refused (bounds what a terminal can claim). With `with_amount` the
    lines also earn per currency as the programme says; without, units alone earn."""

    unit: str  # the unit's id and default word ("km", "nights", "litres")
    rate: Decimal = ONE
    per: Decimal = ONE
    rounding: UnitRounding = UnitRounding.FLOOR
    category_rates: Mapping[str, Decimal] = field(default_factory=dict)
    minimum_per_line: Decimal = ZERO
    max_per_line: Decimal = Decimal(100_000)
    with_amount: bool = False
    forms: UnitForms = UnitForms()
    decimals: int = 3  # a line's units carry at most this many (0: whole nights, miles)
    min_amount_per_unit: Decimal = ZERO  # a line's price a unit at least (and above 0)
    max_lines_per_sale: int = 20  # lines of one sale carrying units (segments, stays)

    def word(self, language: str, count: Decimal | int) -> str:
        whole = int(count) if count == int(count) else 2  # fractions read as plural
        return self.forms.word(language, whole) or self.unit

    def rate_for(self, category: str) -> tuple[Decimal, str]:
        if category and category in self.category_rates:
            return self.category_rates[category], f"units:{category}"
        return self.rate, "units"


class NthCount(StrEnum):
    """What `[every_nth]` counts toward the free one."""

    UNITS = "units"  # the programme's units (every fifth night)
    VISITS = "visits"  # purchases (the tenth coffee)


@dataclass(frozen=True)
class EveryNthFree:
    """Every `n`th unit (night) or purchase free, counted per member over the membership,
    applied by itself at the sale that reaches it. A line of an `excluded_categories`
    category is never the free one (its units still count); a free one is worth at most
    `max_value`; unless `with_points_as_money`, a sale that earns a free one cannot also
    spend points as money."""

    n: int
    count: NthCount
    name: str
    names: LocalNames = LocalNames()
    excluded_categories: frozenset[str] = frozenset()
    max_value: Decimal | None = None
    with_points_as_money: bool = False

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class FreeItems:
    """What a sale gets free: how many (nights, purchases) and their worth in money."""

    count: int = 0
    value: Decimal = ZERO
    # The value taken off each line (earns nothing); a detail of `value`, not compared.
    by_line: tuple[Decimal, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class EarnPolicy:
    mode: EarnMode = EarnMode.PER_AMOUNT
    rate: Decimal = ONE  # points per unit (per_amount) or per purchase (per_purchase)
    unit: Decimal = ONE  # currency amount that earns `rate` points
    category_rates: Mapping[str, Decimal] = field(default_factory=dict)
    featured_rates: Mapping[str, Decimal] = field(default_factory=dict)  # sku -> rate
    min_amount: Decimal = ZERO  # purchases below this earn nothing
    max_points_per_sale: int | None = None
    by_unit: UnitEarning | None = None  # earning by kilometres, nights, litres, ...


@dataclass(frozen=True)
class Reward:
    id: str
    name: str
    cost: int
    kind: RewardKind = RewardKind.ITEM
    value: Decimal | None = None  # face value of a gift card
    min_tier: str | None = None
    points_plus_cash: tuple[tuple[int, Decimal], ...] = ()  # (points, cash) alternatives
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class PointsAsMoney:
    """Points spent as money off a purchase in whole blocks (5,000 points = $5)."""

    block_points: int
    block_value: Decimal


@dataclass(frozen=True)
class BirthdayPolicy:
    reward_id: str | None = None  # a free item, redeemed at no cost, once a year
    points: int = 0  # or bonus points granted on the first purchase in the window
    window_days: int = 30  # from the birthday on


@dataclass(frozen=True)
class ActionRule:
    id: str
    name: str
    points: int
    max_per_day: int = 1
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class GiveTarget:
    """A partner programme points convert into, or a charity they are donated to."""

    id: str
    name: str
    kind: str  # "partner" or "charity"
    points_per_unit: int  # e.g. 100 points = 1 airline mile, 1000 points = $1 donated
    unit_name: str  # "miles", "USD"
    min_points: int = 0
    inbound_points_per_unit: int | None = None  # partner units -> our points (the other way)
    names: LocalNames = LocalNames()
    unit_forms: UnitForms = UnitForms()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)

    @property
    def unit_is_currency(self) -> bool:
        """A donation counted in money ("USD"): shown as an amount, not as a unit word."""
        return len(self.unit_name) == 3 and self.unit_name.isalpha() and self.unit_name.isupper()


@dataclass(frozen=True)
class GivePlan:
    target: GiveTarget
    points: int
    converted: Decimal  # partner units or donated money


# The ways a member can be identified, strongest first (pos_client.domain.IdentityKind
# values): what a programme's `[spending] identified_by` may list.
SPEND_IDENTIFICATIONS = (
    "secure_card",
    "phone_pin",  # a phone number, then the member's PIN
    "card_number",
    "member_number",
    "phone",
    "card_uid",
)


@dataclass(frozen=True)
class SpendingPolicy:
    """Which identifications may spend points under the programme (issue 12): None lets
    every one the terminal's own settings allow; a set restricts them all (e.g. only a
    secure card, which a copied UID or a photographed barcode cannot pass for)."""

    identified_by: frozenset[str] | None = None

    def allows(self, kind: str) -> bool:
        return self.identified_by is None or kind in self.identified_by


@dataclass(frozen=True)
class MembershipGate:
    """A qualification before points count: a prospect's purchases are recorded and earn as
    usual, but the points are held until the member has spent `min_spend` in all, then
    released at once (the sale that opens the gate)."""

    min_spend: Decimal | None = None
    # The age gate: a birthday at enrollment, and at least `min_age` years on the store day
    # of joining; from `guardian_from_age` a parent or guardian may consent for a minor.
    min_age: int | None = None
    guardian_from_age: int | None = None
    # Joining by invitation: an existing member invites, at most `invitations_per_member`.
    invitation: bool = False
    invitations_per_member: int = 5


def age_on(birthday: date, day: date) -> int:
    """Whole years from `birthday` to `day` (a 29 February birthday turns on 1 March)."""
    return day.year - birthday.year - ((day.month, day.day) < (birthday.month, birthday.day))


def enrollment_refusal(
    gate: MembershipGate, birthday: date | None, day: date, guardian: bool
) -> tuple[str, str] | None:
    """Why the age gate refuses an enrollment on the store day `day` (code, reason), or None."""
    if gate.min_age is None:
        return None
    adult = gate.min_age
    with_guardian = (
        f"; from {gate.guardian_from_age} with a parent's or guardian's consent"
        if gate.guardian_from_age
        else ""
    )
    if birthday is None:
        return (
            "birthday_required",
            f"the programme needs the member's birthday (from {adult}{with_guardian})",
        )
    age = age_on(birthday, day)
    if age >= adult:
        return None
    if gate.guardian_from_age is not None and age >= gate.guardian_from_age:
        if guardian:
            return None
        return "guardian_required", f"under {adult}: a parent or guardian must consent"
    return "too_young", f"members must be at least {adult}{with_guardian}"


@dataclass(frozen=True)
class Merchant:
    """A company of a coalition. Its terminals earn at its own `rate` (and category rates,
    over the programme's); each point it issues costs it `funding_rate` in money, paid to
    the merchant where the point is spent (nothing when spent at its own tills or expired)."""

    id: str
    name: str
    funding_rate: Decimal
    rate: Decimal | None = None
    category_rates: Mapping[str, Decimal] = field(default_factory=dict)
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class Coalition:
    """Several merchants sharing one programme run by `operator`. Points no merchant's till
    issued (partner transfers in, the server's own) are the operator's, at `funding_rate`;
    points sent to partners or charities are spent at the operator, who pays for them."""

    operator: str
    funding_rate: Decimal
    merchants: tuple[Merchant, ...]

    def merchant(self, merchant_id: str) -> Merchant | None:
        return next((m for m in self.merchants if m.id == merchant_id), None)

    def funding_of(self, merchant_id: str) -> Decimal:
        """What a point issued by `merchant_id` ("" = the operator) costs its issuer."""
        found = self.merchant(merchant_id)
        return self.funding_rate if found is None else found.funding_rate


def program_at_merchant(program: Program, merchant_id: str) -> Program:
    """The programme as a merchant's tills apply it: its earning rates over the programme's.
    The operator's ("") or a merchant the programme no longer names earn at the base rates."""
    found = program.coalition.merchant(merchant_id) if program.coalition else None
    if found is None or (found.rate is None and not found.category_rates):
        return program
    earn = replace(
        program.earn,
        rate=program.earn.rate if found.rate is None else found.rate,
        category_rates={**program.earn.category_rates, **found.category_rates},
    )
    return replace(program, earn=earn)


class OfferKind(StrEnum):
    DISCOUNT = "discount"  # money off the sale
    FREE_ITEM = "free_item"  # the dearest line of the offer's items or categories, free
    BONUS_POINTS = "bonus_points"  # points on top of what the sale earns


@dataclass(frozen=True)
class PartnerOffer:
    """A partner's offer that belongs to the member: no code, applied by itself at a sale
    of an identified member who is eligible (tier, months of membership, or the segment of
    members in their first months), within its dates (store days, inclusive) and its uses
    per member."""

    id: str
    partner: str
    name: str
    kind: OfferKind
    value: Decimal = ZERO  # discount: the money off; free item: the most it is worth
    points: int = 0  # bonus points
    # The sale must hold a line of these items or categories (the free item is the dearest
    # of them); none given: any sale.
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    min_spend: Decimal = ZERO  # the sale totals at least this
    valid_from: date | None = None
    valid_until: date | None = None
    max_uses_per_member: int = 1
    min_tier: str | None = None
    min_tenure_months: int = 0
    new_members_months: int | None = None  # only members in their first N months
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class AppliedOffer:
    """What an offer gives one sale: money off (a discount or a free item) or points."""

    offer_id: str
    discount: Decimal = ZERO
    points: int = 0


def offer_open(
    program: Program, offer: PartnerOffer, tier: Tier, stats: MemberStats, day: date
) -> bool:
    """Whether `offer` is open to a member of `tier` with `stats` on the store day `day`."""
    if offer.valid_from is not None and day < offer.valid_from:
        return False
    if offer.valid_until is not None and day > offer.valid_until:
        return False
    if offer.min_tier is not None:
        order = [t.id for t in program.tiers.tiers]
        if tier.id not in order or order.index(tier.id) < order.index(offer.min_tier):
            return False
    if stats.tenure_months < offer.min_tenure_months:
        return False
    return offer.new_members_months is None or stats.tenure_months < offer.new_members_months


def offers_left(
    program: Program, tier: Tier, stats: MemberStats, day: date, used: Mapping[str, int]
) -> tuple[OfferLeft, ...]:
    """The offers open to the member today with uses left (`used`: uses so far per offer)."""
    return tuple(
        OfferLeft(offer.id, offer.max_uses_per_member - used.get(offer.id, 0))
        for offer in program.offers
        if offer_open(program, offer, tier, stats, day)
        and used.get(offer.id, 0) < offer.max_uses_per_member
    )


def offer_gives(
    offer: PartnerOffer, purchase: Purchase, money_left: Decimal
) -> AppliedOffer | None:
    """What `offer` gives this sale, with `money_left` still to pay after the other
    discounts; None when the sale does not meet it (too small, none of its items)."""
    if purchase.total < offer.min_spend or purchase.total <= 0:
        return None
    matching = [  # the price of one item of each line of the offer's items
        line.amount / max(line.quantity, 1)
        for line in purchase.lines
        if line.amount > 0 and (line.sku in offer.skus or line.category in offer.categories)
    ]
    if (offer.skus or offer.categories) and not matching:
        return None  # the offer is on its items: the sale has none of them
    if offer.kind is OfferKind.BONUS_POINTS:
        return AppliedOffer(offer.id, points=offer.points)
    if offer.kind is OfferKind.DISCOUNT:
        worth = offer.value
    else:
        worth = min(max(matching), offer.value) if offer.value else max(matching)
    discount = min(worth, money_left).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    return AppliedOffer(offer.id, discount=discount) if discount > 0 else None


def offers_for_sale(
    program: Program,
    open_offers: Sequence[OfferLeft],
    purchase: Purchase,
    money_left: Decimal,
) -> tuple[AppliedOffer, ...]:
    """The offers a sale gets by itself: each open offer with a use left, in the
    programme's order, each on what is left to pay after the ones before."""
    left = {o.offer_id for o in open_offers if o.uses_left > 0}
    applied = []
    for offer in program.offers:
        if offer.id not in left:
            continue
        gives = offer_gives(offer, purchase, money_left)
        if gives is not None:
            applied.append(gives)
            money_left -= gives.discount
    return tuple(applied)


@dataclass(frozen=True)
class StaffAwardPolicy:
    """Points staff may award a member (a reward for a suggestion, goodwill): at most
    `max_points` an award; above `approval_over`, a second staff member's PIN approves."""

    max_points: int
    approval_over: int

    def needs_approval(self, points: int) -> bool:
        return points > self.approval_over


class ExpiryMode(StrEnum):
    ROLLING = "rolling"  # each earning expires `months` after it was earned
    PERIOD_END = "period_end"  # a calendar year's earnings at the end of the `years`th year on
    INACTIVITY = "inactivity"  # all points, after `months` without activity


@dataclass(frozen=True)
class ExpiryPolicy:
    months: int | None = None  # rolling: after earning; inactivity: without activity
    mode: ExpiryMode = ExpiryMode.ROLLING
    years: int = 0  # period_end: 0 expires a year's points at its end, 1 at the next's

    @property
    def enabled(self) -> bool:
        return self.mode is ExpiryMode.PERIOD_END or self.months is not None


@dataclass(frozen=True)
class Program:
    id: str
    name: str
    currency: str
    unit_name: str  # "points", "stars"
    earn: EarnPolicy
    tiers: TierPolicy
    catalog: tuple[Reward, ...] = ()
    points_as_money: PointsAsMoney | None = None
    birthday: BirthdayPolicy = field(default_factory=BirthdayPolicy)
    actions: Mapping[str, ActionRule] = field(default_factory=dict)
    expiry: ExpiryPolicy = field(default_factory=ExpiryPolicy)
    spending: SpendingPolicy = SpendingPolicy()
    max_redeem_points_per_sale: int | None = None
    birthday_reward: Reward | None = None
    membership: MembershipGate = MembershipGate()
    give_targets: tuple[GiveTarget, ...] = ()
    every_nth: EveryNthFree | None = None
    coalition: Coalition | None = None
    offers: tuple[PartnerOffer, ...] = ()
    staff_awards: StaffAwardPolicy | None = None
    categories: tuple[Category, ...] = ()  # display names of the earn categories
    unit_forms: UnitForms = UnitForms()  # unit_name per language, in plural forms
    names: LocalNames = LocalNames()

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)

    def unit_word(self, language: str, count: int) -> str | None:
        """The programme's unit for `count` in `language` ("баллов"), None if not given."""
        return self.unit_forms.word(language, count)

    def tier_name(self, tier_id: str, language: str, default: str | None = None) -> str:
        try:
            return self.tiers.by_id(tier_id).display_name(language)
        except KeyError:
            return default if default is not None else tier_id

    def tier_by_name(self, name: str) -> Tier | None:
        """A tier from its default name (views from older servers carry only the name)."""
        return next((tier for tier in self.tiers.tiers if name in (tier.name, tier.id)), None)

    def reward_name(self, reward_id: str, language: str, default: str | None = None) -> str:
        try:
            return self.reward(reward_id).display_name(language)
        except RulesError:
            return default if default is not None else reward_id

    def category_name(self, category_id: str, language: str) -> str:
        for category in self.categories:
            if category.id == category_id:
                return category.display_name(language)
        return category_id  # the loader refuses programmes with unnamed categories

    def target_name(self, target_id: str, language: str, default: str | None = None) -> str:
        try:
            return self.give_target(target_id).display_name(language)
        except RulesError:
            return default if default is not None else target_id

    def action_name(self, action_id: str, language: str) -> str:
        rule = self.actions.get(action_id)
        return rule.display_name(language) if rule is not None else action_id

    @property
    def needs_tenure(self) -> bool:
        """Whether a tier or an offer counts months of membership."""
        return self.tiers.needs_tenure or any(
            offer.min_tenure_months or offer.new_members_months for offer in self.offers
        )

    def offer(self, offer_id: str) -> PartnerOffer | None:
        return next((offer for offer in self.offers if offer.id == offer_id), None)

    def offer_name(self, offer_id: str, language: str) -> str:
        found = self.offer(offer_id)
        return found.display_name(language) if found is not None else offer_id

    def give_target(self, target_id: str) -> GiveTarget:
        for target in self.give_targets:
            if target.id == target_id:
                return target
        raise RulesError(
            f"unknown partner or charity {target_id!r}", "unknown_target", target_id=target_id
        )

    def reward(self, reward_id: str) -> Reward:
        for reward in self.catalog:
            if reward.id == reward_id:
                return reward
        if self.birthday_reward is not None and self.birthday_reward.id == reward_id:
            return self.birthday_reward
        raise RulesError(f"unknown reward {reward_id!r}", "unknown_reward", reward_id=reward_id)


# ---------------------------------------------------------------- periods and tiers


def period_start(period: TierPeriod, today: date) -> date | None:
    """First day counted towards a tier; None means since enrollment."""
    starts = {
        TierPeriod.LIFETIME: None,
        TierPeriod.CALENDAR_YEAR: date(today.year, 1, 1),
        TierPeriod.ROLLING_12_MONTHS: today - timedelta(days=365),
    }
    return starts[period]


MEASURES = {
    TierBasis.POINTS: "points_in_period",
    TierBasis.SPEND: "spend_in_period",
    TierBasis.VISITS: "visits_in_period",
    TierBasis.UNITS: "units_in_period",
    TierBasis.SEGMENTS: "segments_in_period",
}


def tier_measure(basis: TierBasis, stats: MemberStats) -> Decimal:
    return Decimal(getattr(stats, MEASURES[basis]))


def previous_period_start(period: TierPeriod, today: date) -> date | None:
    """First day of the period before the one holding `today` (None: lifetime)."""
    starts = {
        TierPeriod.LIFETIME: None,
        TierPeriod.CALENDAR_YEAR: date(today.year - 1, 1, 1),
        TierPeriod.ROLLING_12_MONTHS: today - timedelta(days=730),
    }
    return starts[period]


def whole_months(first: date, today: date) -> int:
    """Whole months from the day `first` to `today` (31 Jan to 28 Feb: 0; to 1 Mar: 1)."""
    months = (today.year - first.year) * 12 + today.month - first.month
    return max(months - (today.day < first.day), 0)


def qualifies(policy: TierPolicy, tier: Tier, stats: MemberStats) -> bool:
    """Whether the period's statistics reach `tier`: its tenure, and its threshold on the
    programme's basis or any of its other thresholds."""
    if stats.tenure_months < tier.min_tenure_months:
        return False
    if tier_measure(policy.basis, stats) >= tier.threshold:
        return True
    return any(tier_measure(basis, stats) >= value for basis, value in tier.or_thresholds)


def qualified_index(policy: TierPolicy, stats: MemberStats) -> int:
    """The highest tier the statistics themselves reach (nothing kept from before)."""
    return max(index for index, tier in enumerate(policy.tiers) if qualifies(policy, tier, stats))


def _tier_index(policy: TierPolicy, stats: MemberStats) -> int:
    reached = qualified_index(policy, stats)
    if stats.tiers_kept:  # reached before and kept (never, or still within the grace)
        kept = {tier_id for tier_id, _day in stats.tiers_kept}
        reached = max([reached, *(i for i, tier in enumerate(policy.tiers) if tier.id in kept)])
    previous = stats.previous_period
    if policy.downgrade is Downgrade.PERIOD_END and previous is not None:
        # A tier reached last period holds through this one (its tenure is today's).
        held = max(
            index
            for index, tier in enumerate(policy.tiers)
            if qualifies(policy, tier, replace(previous, tenure_months=stats.tenure_months))
        )
        reached = max(reached, held)
    return reached


def tier_for(policy: TierPolicy, stats: MemberStats) -> Tier:
    return policy.tiers[_tier_index(policy, stats)]


def next_tier(policy: TierPolicy, stats: MemberStats) -> tuple[Tier, Decimal] | None:
    """The next tier up and how much of the basis is still needed this period (0: only
    its tenure is still to come), or None at the top."""
    index = _tier_index(policy, stats)
    if index + 1 >= len(policy.tiers):
        return None
    upcoming = policy.tiers[index + 1]
    return upcoming, max(upcoming.threshold - tier_measure(policy.basis, stats), ZERO)


# ---------------------------------------------------------------- earning


@dataclass(frozen=True)
class LineEarning:
    sku: str
    category: str
    amount: Decimal
    rate: Decimal  # points per unit after tier floor and multiplier
    points: Decimal  # exact, before the sale-level floor
    reason: str  # "base", "category:cosmetics", "featured:SKU", "tier:platinum" (+ " x1.5 gold")
    # ("units", "units:business": earned by units; then `rate` is points per `per` units)
    units: Decimal | None = None  # the units counted (a line's, or the minimum a line earns)

    @property
    def basis(self) -> str:
        """What set the rate: "base", "category", "featured" or "tier" (a tier's floor)."""
        return self.reason.split(" ", 1)[0].split(":", 1)[0]

    @property
    def multiplier(self) -> Decimal:
        """The tier multiplier applied on top of the rate (1 when none)."""
        parts = self.reason.split(" ")
        if len(parts) >= 2 and parts[1].startswith("x"):
            return Decimal(parts[1][1:])
        return ONE


@dataclass(frozen=True)
class EarnBreakdown:
    lines: tuple[LineEarning, ...]
    tier_id: str
    birthday_bonus: int
    capped: bool
    points: int
    offer_points: int = 0  # partner offers' bonus points, within `points`

    def explain(self) -> list[str]:
        cents = Decimal("0.01")
        rows = [
            f"{line.sku or line.category or 'purchase'}: "
            + (
                f"{line.units.normalize():f} units"
                if line.units is not None
                else f"{line.amount.quantize(cents)}"
            )
            + f" x {line.rate.normalize():f} = {line.points.quantize(cents).normalize():f}"
            + f" ({line.reason})"
            for line in self.lines
        ]
        if self.birthday_bonus:
            rows.append(f"birthday bonus: {self.birthday_bonus}")
        if self.offer_points:
            rows.append(f"partner offers: {self.offer_points}")
        if self.capped:
            rows.append("capped at the program's maximum per sale")
        return rows


def floor_points(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def line_rate(policy: EarnPolicy, tier: Tier, sku: str, category: str) -> tuple[Decimal, str]:
    if sku and sku in policy.featured_rates:
        rate, reason = policy.featured_rates[sku], f"featured:{sku}"
    elif category and category in policy.category_rates:
        rate, reason = policy.category_rates[category], f"category:{category}"
    else:
        rate, reason = policy.rate, "base"
    if tier.rate_floor is not None and tier.rate_floor > rate:
        rate, reason = tier.rate_floor, f"tier:{tier.id}"
    if tier.multiplier != ONE:
        rate, reason = rate * tier.multiplier, f"{reason} x{tier.multiplier} {tier.id}"
    return rate, reason


def unit_line_earnings(
    policy: UnitEarning, purchase: Purchase, tier: Tier, paid_share: Decimal
) -> list[LineEarning]:
    """The lines that carry units, each earning by them (the tier's multiplier on top)."""
    lines = []
    for line in purchase.lines:
        if not line.units:
            continue
        counted = max(line.units, policy.minimum_per_line)
        rate, reason = policy.rate_for(line.category)
        if tier.multiplier != ONE:
            rate, reason = rate * tier.multiplier, f"{reason} x{tier.multiplier} {tier.id}"
        exact = counted * paid_share / policy.per * rate
        lines.append(
            LineEarning(line.sku, line.category, line.amount, rate, exact, reason, counted)
        )
    return lines


def check_units(program: Program, purchase: Purchase) -> None:
    """Refuse units a programme cannot count: on a programme that earns by none, fractions
    where it counts whole units, more than a line or a sale may carry, a line priced below
    the programme's least a unit (a night at a cent bought status), each naming its line.
    Checked for every sale, whatever it earns: units count toward tiers and free ones."""
    policy = program.earn.by_unit
    carrying = [(index, line) for index, line in enumerate(purchase.lines) if line.units]
    if not carrying:
        return
    if policy is None:
        index = carrying[0][0]
        raise RulesError(
            f"lines[{index}].units: this programme earns by no units", "units_not_earned"
        )
    if len(carrying) > policy.max_lines_per_sale:
        raise RulesError(
            f"lines: at most {policy.max_lines_per_sale} lines of a sale carry"
            f" {policy.word('en', 2)}",
            "units_too_many_lines",
            count=policy.max_lines_per_sale,
        )
    for index, line in carrying:
        units = line.units or ZERO
        field_name = f"lines[{index}].units"
        exponent = units.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > policy.decimals:
            raise RulesError(
                f"{field_name}: {policy.word('en', 2)} are counted in whole units"
                if not policy.decimals
                else f"{field_name}: at most {policy.decimals} decimals",
                "units_not_whole",
            )
        if units > policy.max_per_line:
            raise RulesError(
                f"{field_name}: {units} {policy.word('en', units)} is over the programme's"
                f" {policy.max_per_line} a line",
                "units_over_limit",
                most=str(policy.max_per_line),
            )
        if line.amount <= 0 or line.amount < units * policy.min_amount_per_unit:
            raise RulesError(
                f"lines[{index}].amount: {line.amount} for {units} {policy.word('en', units)}"
                f" is under the programme's {policy.min_amount_per_unit} a unit",
                "units_underpriced",
            )


def earn_points(
    program: Program,
    purchase: Purchase,
    tier: Tier,
    *,
    birthday_bonus_due: bool = False,
    discount: Decimal = ZERO,
    free: FreeItems | None = None,
) -> EarnBreakdown:
    """Points for a purchase. `discount` (points spent as money, spread over the lines) and
    what `free` takes off its lines earn nothing. Points by amount are floored once a sale;
    points by units are rounded by the programme's rule."""
    check_units(program, purchase)
    policy = program.earn
    free_off = free.by_line if free is not None and free.by_line else (ZERO,) * len(purchase.lines)
    free_value = sum(free_off, ZERO)
    total = purchase.total
    if discount < 0 or discount + free_value > total:
        raise RulesError("discount must be between 0 and the purchase total", "option_unavailable")
    left = total - free_value  # what is paid for, before points spent as money
    paid_share = ONE if left == 0 else (left - discount) / left
    discount += free_value  # below: what earns nothing in all
    lines: list[LineEarning] = []
    by_unit = policy.by_unit
    by_amount = by_unit is None or by_unit.with_amount
    unit_points = 0
    if total - discount < policy.min_amount or total == 0:
        exact = ZERO
    else:
        exact = ZERO
        if by_unit is not None:
            unit_share = (total - discount) / total
            unit_lines = unit_line_earnings(by_unit, purchase, tier, unit_share)
            lines += unit_lines
            unit_exact = sum((line.points for line in unit_lines), ZERO)
            unit_points = int(
                unit_exact.to_integral_value(rounding=ROUNDING_MODES[by_unit.rounding])
            )
        if by_amount and policy.mode is EarnMode.PER_PURCHASE:
            rate, reason = line_rate(policy, tier, "", "")
            lines.append(LineEarning("", "", total, rate, rate, reason))
            exact = rate
        elif by_amount:
            amount_lines = []
            for line, off in zip(purchase.lines, free_off, strict=True):
                rate, reason = line_rate(policy, tier, line.sku, line.category)
                paid = (line.amount - off) * paid_share
                exact_points = paid / policy.unit * rate
                amount_lines.append(
                    LineEarning(line.sku, line.category, paid, rate, exact_points, reason)
                )
            lines += amount_lines
            exact = sum((line.points for line in amount_lines), ZERO)
    points: int = floor_points(exact) + unit_points
    bonus = program.birthday.points if birthday_bonus_due else 0
    points += bonus
    capped = False
    if policy.max_points_per_sale is not None and points > policy.max_points_per_sale:
        points, capped = policy.max_points_per_sale, True
    return EarnBreakdown(tuple(lines), tier.id, bonus, capped, max(points, 0))


def free_for_member(
    program: Program, purchase: Purchase, stats: MemberStats, money_spent: Decimal
) -> FreeItems:
    """The free nights or purchase a member's sale reaches by the programme's every-Nth
    rule, counted on the member's lifetime counts in `stats`; none where the programme has
    no such rule, or the sale spends points as money (`money_spent`) and the rule may not
    be combined."""
    rule = program.every_nth
    if rule is None or (money_spent > 0 and not rule.with_points_as_money):
        return FreeItems()
    units = rule.count is NthCount.UNITS
    before = int(stats.lifetime_units) if units else stats.lifetime_visits
    return free_items(rule, purchase, before, program.currency)


def free_items(
    rule: EveryNthFree | None, purchase: Purchase, before: int, currency: str
) -> FreeItems:
    """The free nights or purchase a sale reaches, `before` being the member's count so far
    (whole units, or purchases). Units: each line's whole units in turn, a free one worth
    the line's price a unit; purchases: this one, worth its dearest eligible item."""
    if rule is None or purchase.total <= 0:
        return FreeItems()
    cap = rule.max_value
    count = 0
    off = [ZERO] * len(purchase.lines)
    if rule.count is NthCount.UNITS:
        counted = before
        for index, line in enumerate(purchase.lines):
            whole = int(line.units or 0)
            if whole <= 0:
                continue
            free = (counted + whole) // rule.n - counted // rule.n
            counted += whole
            if free and line.category not in rule.excluded_categories:
                each = line.amount / line.units  # type: ignore[operator]
                count += free
                off[index] = free * (min(each, cap) if cap is not None else each)
    elif (before + 1) % rule.n == 0:
        prices = [
            (line.amount / max(line.quantity, 1), index)
            for index, line in enumerate(purchase.lines)
            if line.category not in rule.excluded_categories and line.amount > 0
        ]
        if prices:
            price, index = max(prices)
            count, off[index] = 1, price if cap is None else min(price, cap)
    if not count:
        return FreeItems()
    minor = Decimal(1).scaleb(-MINOR_UNIT_EXPONENT.get(currency, 2))
    by_line = tuple(
        min(value, line.amount).quantize(minor, rounding=ROUND_FLOOR)
        for value, line in zip(off, purchase.lines, strict=True)
    )
    return FreeItems(count, sum(by_line, ZERO), by_line)


def action_points(program: Program, action_id: str, done_today: int = 0) -> int:
    rule = program.actions.get(action_id)
    if rule is None:
        raise RulesError(
            f"the program has no action {action_id!r}", "option_unavailable", action_id=action_id
        )
    if done_today >= rule.max_per_day:
        raise RulesError(
            f"{rule.name}: already recorded {done_today} time(s) today",
            "action_done",
            action_id=action_id,
            count=done_today,
        )
    return rule.points


# ---------------------------------------------------------------- birthday


def birthday_in_window(birthday: date | None, today: date, window_days: int) -> bool:
    return birthday_year(birthday, today, window_days) is not None


def birthday_year(birthday: date | None, today: date, window_days: int) -> int | None:
    """The year of the birthday whose window holds `today` (None: outside every window).
    A window that runs past New Year still celebrates the birthday of the year before."""
    if birthday is None:
        return None
    for year in (today.year, today.year - 1):
        try:
            this_year = birthday.replace(year=year)
        except ValueError:  # 29 February in a common year: celebrate on 1 March
            this_year = date(year, 3, 1)
        if this_year <= today < this_year + timedelta(days=window_days):
            return year
    return None


# ---------------------------------------------------------------- redemption


@dataclass(frozen=True)
class RedemptionPlan:
    """Points to spend and what they buy: a reward, money off, or both (points + cash)."""

    points: int
    discount: Decimal = ZERO  # money off the purchase
    reward_id: str | None = None
    cash_due: Decimal = ZERO  # the customer still pays this
    blocks: int = 0
    option: int | None = None  # the reward's points + cash alternative chosen, if any


def reward_allowed(program: Program, reward: Reward, tier: Tier) -> bool:
    if reward.min_tier is None:
        return True
    order = [t.id for t in program.tiers.tiers]
    return order.index(tier.id) >= order.index(reward.min_tier)


def plan_reward(
    program: Program,
    reward_id: str,
    balance: int,
    tier: Tier,
    *,
    option: int | None = None,
    birthday_available: bool = False,
) -> RedemptionPlan:
    """Redeem a catalog reward, at full points or at a points + cash option."""
    reward = program.reward(reward_id)
    if program.birthday_reward is not None and reward.id == program.birthday_reward.id:
        if not birthday_available:
            raise RulesError("the birthday reward is not available now", "birthday_unavailable")
        return RedemptionPlan(points=0, reward_id=reward.id)
    if not reward_allowed(program, reward, tier):
        raise RulesError(
            f"{reward.name} needs tier {reward.min_tier}",
            "tier_required",
            reward_id=reward.id,
            tier_id=reward.min_tier,
        )
    if option is None:
        points, cash = reward.cost, ZERO
    else:
        if not 0 <= option < len(reward.points_plus_cash):
            raise RulesError(
                f"{reward.name} has no points + cash option {option}", "option_unavailable"
            )
        points, cash = reward.points_plus_cash[option]
    check_spend(program, points, balance)
    return RedemptionPlan(points=points, reward_id=reward.id, cash_due=cash, option=option)


def plan_money_blocks(
    program: Program, blocks: int | None, balance: int, purchase_total: Decimal
) -> RedemptionPlan:
    """Spend points as money in whole blocks; None = as many as balance and total allow."""
    pam = program.points_as_money
    if pam is None:
        raise RulesError("this program does not spend points as money", "option_unavailable")
    affordable = balance // pam.block_points
    fits = int((purchase_total / pam.block_value).to_integral_value(rounding=ROUND_FLOOR))
    cap = affordable if fits < 0 else min(affordable, fits)
    if program.max_redeem_points_per_sale is not None:
        cap = min(cap, program.max_redeem_points_per_sale // pam.block_points)
    wanted = cap if blocks is None else blocks
    if wanted <= 0:
        if blocks is None:
            raise RulesError(
                f"not enough {program.unit_name} for one block of {pam.block_points}",
                "not_enough_for_block",
                points=pam.block_points,
            )
        raise RulesError("choose at least one block", "choose_blocks")
    if wanted > affordable:
        raise RulesError(
            f"{wanted} blocks need {wanted * pam.block_points} {program.unit_name};"
            f" balance is {balance}",
            "not_enough",
            points=wanted * pam.block_points,
            balance=balance,
        )
    if wanted > cap:
        raise RulesError(f"at most {cap} block(s) on this purchase", "max_blocks", count=cap)
    discount = pam.block_value * wanted
    points = pam.block_points * wanted
    check_spend(program, points, balance)
    return RedemptionPlan(
        points=points, discount=discount, cash_due=purchase_total - discount, blocks=wanted
    )


def check_spend(program: Program, points: int, balance: int) -> None:
    if points < 0:
        raise RulesError("points to spend cannot be negative", "option_unavailable")
    if points > balance:
        raise RulesError(
            f"needs {points} {program.unit_name}; balance is {balance}",
            "not_enough",
            points=points,
            balance=balance,
        )
    cap = program.max_redeem_points_per_sale
    if cap is not None and points > cap:
        raise RulesError(f"at most {cap} {program.unit_name} per sale", "per_sale_cap", points=cap)


def reward_offers(
    program: Program, balance: int, tier: Tier, birthday_available: bool
) -> tuple[RewardOffer, ...]:
    offers = [
        RewardOffer(r.id, r.name, r.cost, r.cost <= balance, r.kind.value, r.value)
        for r in program.catalog
        if reward_allowed(program, r, tier)
    ]
    if birthday_available and program.birthday_reward is not None:
        gift = program.birthday_reward
        offers.insert(0, RewardOffer(gift.id, gift.name, 0, True, gift.kind.value, gift.value))
    return tuple(offers)


def next_reward(program: Program, balance: int, tier: Tier) -> tuple[str, int] | None:
    """The nearest reward the member cannot afford yet, and how many points it still needs."""
    candidates = [
        (r.name, r.cost - balance)
        for r in program.catalog
        if reward_allowed(program, r, tier) and r.cost > balance
    ]
    pam = program.points_as_money
    if pam is not None:
        candidates.append((f"{pam.block_value} off", pam.block_points - balance % pam.block_points))
    if not candidates:
        return None
    return min(candidates, key=lambda candidate: candidate[1])


@dataclass(frozen=True)
class LockedReward:
    """The nearest reward behind a higher level, when earning points is what opens it."""

    reward: Reward
    tier: Tier  # the level that opens it
    remaining: int  # points still to earn: to reach the level and to afford the reward
    progress: float  # 0..1, how far along the member is


def locked_reward(program: Program, balance: int, stats: MemberStats) -> LockedReward | None:
    """The reward a member cannot redeem yet because of their level, with how many points
    they still need ("28 more stars to Free drink"), or None. Only where levels are reached
    by earning points (each point earned counts for the level and for the balance); for a
    level reached by spend or visits the screen says which level opens the reward instead."""
    policy = program.tiers
    if policy.basis is not TierBasis.POINTS:
        return None
    tier = tier_for(policy, stats)
    earned = stats.points_in_period
    found: list[LockedReward] = []
    for reward in program.catalog:
        if reward.min_tier is None or reward_allowed(program, reward, tier):
            continue
        level = policy.by_id(reward.min_tier)
        remaining = max(int(level.threshold) - earned, reward.cost - balance, 1)
        done = max(0, earned)
        found.append(LockedReward(reward, level, remaining, done / (done + remaining)))
    return min(found, key=lambda locked: locked.remaining, default=None)


def plan_give(program: Program, target_id: str, points: int, balance: int) -> GivePlan:
    """Transfer points to a partner programme or donate them, in whole units."""
    target = program.give_target(target_id)
    if points <= 0:
        raise RulesError("choose how many points to send", "choose_points")
    if points < target.min_points:
        raise RulesError(
            f"{target.name}: at least {target.min_points} {program.unit_name}",
            "min_points",
            target_id=target.id,
            points=target.min_points,
        )
    if points % target.points_per_unit:
        raise RulesError(
            f"{target.name}: in steps of {target.points_per_unit} {program.unit_name}",
            "step",
            target_id=target.id,
            points=target.points_per_unit,
        )
    check_spend(program, points, balance)
    return GivePlan(target, points, Decimal(points // target.points_per_unit))


def plan_receive(program: Program, partner_id: str, units: int) -> int:
    """Points credited for partner units transferred in (e.g. miles -> points)."""
    target = program.give_target(partner_id)
    if target.kind != "partner" or not target.inbound_points_per_unit:
        raise RulesError(
            f"{target.name} does not transfer into this programme",
            "option_unavailable",
            target_id=target.id,
        )
    if units <= 0:
        raise RulesError("choose how many units to transfer in", "option_unavailable")
    return units * target.inbound_points_per_unit


# ---------------------------------------------------------------- expiry


@dataclass(frozen=True)
class Lot:
    earned_at: datetime
    points: int


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, _days_in_month(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def expiry_date(earned: date, months: int) -> date:
    """The store day points earned on `earned` expire (at its start): `months` later, on the
    same day of the month or the month's last day."""
    month_index = earned.month - 1 + months
    year, month = earned.year + month_index // 12, month_index % 12 + 1
    return earned.replace(year=year, month=month, day=min(earned.day, _days_in_month(year, month)))


def expiry_cutoff(today: date, months: int) -> date:
    """The first store day whose earnings have not expired by `today`: points earned before
    it have (expiry_date(earned) <= today), points earned on or after it have not."""
    back = today.month - 1 - months
    year, month = today.year + back // 12, back % 12 + 1
    day = date(year, month, min(today.day, _days_in_month(year, month))) - timedelta(days=3)
    while expiry_date(day, months) <= today:
        day += timedelta(days=1)
    return day


def expiry_boundary(policy: ExpiryPolicy, today: date) -> date | None:
    """The first store day whose points have not expired by `today` (inactivity: the first
    day of activity that keeps a member's points on `today`); None: nothing expires."""
    if policy.mode is ExpiryMode.PERIOD_END:
        return date(today.year - policy.years, 1, 1)
    if policy.months is None:
        return None
    return expiry_cutoff(today, policy.months)


def expiring_points(
    lots: Sequence[Lot], spent: int, already_expired: int, as_of: datetime, policy: ExpiryPolicy
) -> int:
    """Points to expire now: spending and earlier expiry consume the oldest lots first (FIFO)."""
    if policy.months is None:
        return 0
    consumed = spent + already_expired
    due = 0
    for lot in sorted(lots, key=lambda lot: lot.earned_at):
        take = min(consumed, lot.points)
        consumed -= take
        remaining = lot.points - take
        if remaining and add_months(lot.earned_at, policy.months) <= as_of:
            due += remaining
    return due


def sum_points(values: Iterable[int]) -> int:
    return sum(values, 0)
