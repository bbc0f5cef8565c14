"""Program rules as pure functions over immutable program definitions.

Money is Decimal; points are int. Earned points are computed exactly per line and floored
once per sale, so splitting a basket into lines never loses a point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from pos_client.domain import MemberStats, Purchase, RewardOffer
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


class TierPeriod(StrEnum):
    LIFETIME = "lifetime"
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"


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

    def display_name(self, language: str) -> str:
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class TierPolicy:
    basis: TierBasis
    period: TierPeriod
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a program needs at least one tier")
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(thresholds) or thresholds[0] != 0:
            raise ValueError("tiers must be sorted by threshold, the first at 0")

    def by_id(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)


@dataclass(frozen=True)
class EarnPolicy:
    mode: EarnMode = EarnMode.PER_AMOUNT
    rate: Decimal = ONE  # points per unit (per_amount) or per purchase (per_purchase)
    unit: Decimal = ONE  # currency amount that earns `rate` points
    category_rates: Mapping[str, Decimal] = field(default_factory=dict)
    featured_rates: Mapping[str, Decimal] = field(default_factory=dict)  # sku -> rate
    min_amount: Decimal = ZERO  # purchases below this earn nothing
    max_points_per_sale: int | None = None


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
class ExpiryPolicy:
    months: int | None = None  # earned points expire this many months after earning


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
    give_targets: tuple[GiveTarget, ...] = ()
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


def tier_measure(basis: TierBasis, stats: MemberStats) -> Decimal:
    measures = {
        TierBasis.POINTS: Decimal(stats.points_in_period),
        TierBasis.SPEND: stats.spend_in_period,
        TierBasis.VISITS: Decimal(stats.visits_in_period),
    }
    return measures[basis]


def tier_for(policy: TierPolicy, stats: MemberStats) -> Tier:
    measure = tier_measure(policy.basis, stats)
    reached = [tier for tier in policy.tiers if measure >= tier.threshold]
    return reached[-1]


def next_tier(policy: TierPolicy, stats: MemberStats) -> tuple[Tier, Decimal] | None:
    """The next tier up and how much of the basis is still needed, or None at the top."""
    measure = tier_measure(policy.basis, stats)
    for tier in policy.tiers:
        if tier.threshold > measure:
            return tier, tier.threshold - measure
    return None


# ---------------------------------------------------------------- earning


@dataclass(frozen=True)
class LineEarning:
    sku: str
    category: str
    amount: Decimal
    rate: Decimal  # points per unit after tier floor and multiplier
    points: Decimal  # exact, before the sale-level floor
    reason: str  # "base", "category:cosmetics", "featured:SKU", "tier:platinum" (+ " x1.5 gold")

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

    def explain(self) -> list[str]:
        rows = [
            f"{line.sku or line.category or 'purchase'}: {line.amount} x {line.rate}"
            f" = {line.points.normalize():f} ({line.reason})"
            for line in self.lines
        ]
        if self.birthday_bonus:
            rows.append(f"birthday bonus: {self.birthday_bonus}")
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


def earn_points(
    program: Program,
    purchase: Purchase,
    tier: Tier,
    *,
    birthday_bonus_due: bool = False,
    discount: Decimal = ZERO,
) -> EarnBreakdown:
    """Points for a purchase. `discount` (points spent as money) earns nothing."""
    policy = program.earn
    total = purchase.total
    if discount < 0 or discount > total:
        raise RulesError("discount must be between 0 and the purchase total", "option_unavailable")
    paid_share = ONE if total == 0 else (total - discount) / total
    lines: list[LineEarning] = []
    if total - discount < policy.min_amount or total == 0:
        exact = ZERO
    elif policy.mode is EarnMode.PER_PURCHASE:
        rate, reason = line_rate(policy, tier, "", "")
        lines.append(LineEarning("", "", total, rate, rate, reason))
        exact = rate
    else:
        for line in purchase.lines:
            rate, reason = line_rate(policy, tier, line.sku, line.category)
            paid = line.amount * paid_share
            exact_points = paid / policy.unit * rate
            lines.append(LineEarning(line.sku, line.category, paid, rate, exact_points, reason))
        exact = sum((line.points for line in lines), ZERO)
    points: int = floor_points(exact)
    bonus = program.birthday.points if birthday_bonus_due else 0
    points += bonus
    capped = False
    if policy.max_points_per_sale is not None and points > policy.max_points_per_sale:
        points, capped = policy.max_points_per_sale, True
    return EarnBreakdown(tuple(lines), tier.id, bonus, capped, max(points, 0))


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
