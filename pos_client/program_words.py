"""A programme's every rule in plain English sentences (`pos-client program show`), so a
store manager can read what a programme file does before it goes live."""

from __future__ import annotations

from decimal import Decimal

from pos_client.rules import (
    Downgrade,
    EarnMode,
    ExpiryMode,
    NthCount,
    OfferKind,
    Program,
    RewardKind,
    TenureCount,
    Tier,
    TierBasis,
    TierPeriod,
    UnitEarning,
    UnitRounding,
)

PERIODS = {
    TierPeriod.LIFETIME: "since enrollment",
    TierPeriod.CALENDAR_YEAR: "in the calendar year (the store's time zone)",
    TierPeriod.ROLLING_12_MONTHS: "over the last 12 months",
}
ROUNDINGS = {
    UnitRounding.FLOOR: "rounded down",
    UnitRounding.NEAREST: "rounded to the nearest (halves up)",
    UnitRounding.CEILING: "rounded up",
}


def number(value: Decimal | int) -> str:
    """1000 -> "1,000"; 1.50 -> "1.5"."""
    if isinstance(value, Decimal):
        value = value.normalize()
        if value == value.to_integral_value():
            value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:f}"


def measure(program: Program, basis: TierBasis, value: Decimal) -> str:
    by_unit = program.earn.by_unit
    words = {
        TierBasis.POINTS: f"{number(value)} {program.unit_name} earned",
        TierBasis.SPEND: f"{number(value)} {program.currency} spent",
        TierBasis.VISITS: f"{number(value)} visits",
        TierBasis.UNITS: f"{number(value)} {by_unit.word('en', 2) if by_unit else 'units'}",
        TierBasis.SEGMENTS: f"{number(value)} segments",
    }
    return words[basis]


def earning(program: Program) -> list[str]:
    earn = program.earn
    unit = program.unit_name
    rows = []
    by_unit = earn.by_unit
    if by_unit is None or by_unit.with_amount:
        if earn.mode is EarnMode.PER_PURCHASE:
            rows.append(f"Earning: {number(earn.rate)} {unit} per purchase, whatever its amount.")
        else:
            rows.append(
                f"Earning: {number(earn.rate)} {unit} per {number(earn.unit)} {program.currency}"
                " spent, counted exactly per line and rounded down once a sale."
            )
        for category, rate in sorted(earn.category_rates.items()):
            rows.append(
                f"  {program.category_name(category, 'en')}: {number(rate)} {unit} instead."
            )
        for sku, rate in sorted(earn.featured_rates.items()):
            rows.append(f"  featured item {sku}: {number(rate)} {unit} instead.")
    if by_unit is not None:
        rows += unit_earning(program, by_unit)
    if earn.min_amount:
        rows.append(
            f"  A purchase under {number(earn.min_amount)} {program.currency} earns nothing."
        )
    if earn.max_points_per_sale is not None:
        rows.append(f"  At most {number(earn.max_points_per_sale)} {unit} a sale.")
    return rows


def points(program: Program, value: Decimal | int) -> str:
    """ "1 mile", "1.5 miles", "1,000 points"."""
    count = int(value) if value == int(value) else 2
    return f"{number(value)} {program.unit_word('en', count) or program.unit_name}"


def unit_earning(program: Program, by_unit: UnitEarning) -> list[str]:
    per = "" if by_unit.per == 1 else f"{number(by_unit.per)} "
    name = by_unit.word("en", by_unit.per)
    carried = by_unit.word("en", 2)
    if not by_unit.rate and not by_unit.category_rates:
        return [
            f"{carried[:1].upper()}{carried[1:]} are counted on each line that carries them"
            f" (for tiers and free ones); they earn no {program.unit_name} themselves.",
            f"  A line of more than {number(by_unit.max_per_line)} {carried} is refused.",
            *(
                [f"  {carried[:1].upper()}{carried[1:]} are whole numbers."]
                if not by_unit.decimals
                else []
            ),
        ]
    rows = [
        f"Earning by {carried}: {points(program, by_unit.rate)} per {per}{name} on each"
        f" line that carries {carried}, {ROUNDINGS[by_unit.rounding]} once a sale"
        + (
            "; the lines earn by amount as well."
            if by_unit.with_amount
            else "; the price earns nothing."
        )
    ]
    for category, rate in sorted(by_unit.category_rates.items()):
        rows.append(
            f"  {program.category_name(category, 'en')}: {points(program, rate)} per {per}{name}."
        )
    if by_unit.minimum_per_line:
        rows.append(f"  A line counts at least {number(by_unit.minimum_per_line)} {carried}.")
    rows.append(f"  A line of more than {number(by_unit.max_per_line)} {carried} is refused.")
    if not by_unit.decimals:
        rows.append(f"  {carried[:1].upper()}{carried[1:]} are whole numbers.")
    return rows


def tier_line(program: Program, tier: Tier) -> str:
    policy = program.tiers
    ways = [measure(program, policy.basis, tier.threshold)] + [
        measure(program, basis, value) for basis, value in tier.or_thresholds
    ]
    reach = "everyone" if tier.threshold == 0 and not tier.or_thresholds else " or ".join(ways)
    parts = [f"  {tier.name} ({tier.id}): {reach}"]
    if tier.min_tenure_months:
        kind = "active " if policy.tenure is TenureCount.ACTIVE_MONTHS else ""
        parts.append(f"after {tier.min_tenure_months} {kind}months of membership")
    if tier.multiplier != 1:
        parts.append(f"earns x{number(tier.multiplier)}")
    if tier.rate_floor is not None:
        parts.append(f"at least {number(tier.rate_floor)} {program.unit_name} per unit spent")
    if tier.perks:
        parts.append("perks: " + ", ".join(tier.perks))
    return "; ".join(parts) + "."


def tiers(program: Program) -> list[str]:
    policy = program.tiers
    rows = [f"Tiers, counted {PERIODS[policy.period]}:"]
    rows += [tier_line(program, tier) for tier in policy.tiers]
    if policy.downgrade is Downgrade.PERIOD_END:
        rows.append("  A tier reached in one period holds to the end of the next.")
    elif policy.downgrade is Downgrade.NEVER:
        rows.append("  A tier once reached is never lost.")
    elif policy.downgrade is Downgrade.GRACE:
        rows.append(
            f"  A tier is kept {months(policy.grace_months)} after the last purchase that"
            " reached it."
        )
    elif policy.period is not TierPeriod.LIFETIME:
        rows.append("  A tier is lost as soon as the period's count falls below it.")
    if policy.tenure is TenureCount.ACTIVE_MONTHS and policy.needs_tenure:
        rows.append("  Months of membership count only months with a purchase.")
    return rows


def rewards(program: Program) -> list[str]:
    unit = program.unit_name
    rows = []
    for reward in program.catalog:
        kind = (
            f"gift card of {number(reward.value or 0)} {program.currency}"
            if reward.kind is RewardKind.GIFT_CARD
            else "item"
        )
        row = f"Reward {reward.name} ({reward.id}, {kind}): {number(reward.cost)} {unit}"
        if reward.min_tier:
            row += f", from tier {program.tier_name(reward.min_tier, 'en')} up"
        rows.append(row + ".")
        for points, cash in reward.points_plus_cash:
            rows.append(f"  or {number(points)} {unit} + {number(cash)} {program.currency}.")
    money = program.points_as_money
    if money is not None:
        rows.append(
            f"Points as money: every {number(money.block_points)} {unit} pay"
            f" {number(money.block_value)} {program.currency} of a purchase."
        )
    if program.max_redeem_points_per_sale is not None:
        rows.append(f"At most {number(program.max_redeem_points_per_sale)} {unit} spent a sale.")
    return rows


def other_rules(program: Program) -> list[str]:
    unit = program.unit_name
    rows = []
    birthday = program.birthday
    if birthday.points:
        rows.append(
            f"Birthday: {number(birthday.points)} bonus {unit} on the first purchase within"
            f" {birthday.window_days} days from the birthday, once a year."
        )
    if program.birthday_reward is not None:
        rows.append(
            f"Birthday: {program.birthday_reward.name} free, once a year, within"
            f" {birthday.window_days} days from the birthday."
        )
    for action in program.actions.values():
        rows.append(
            f"Action {action.name} ({action.id}): {number(action.points)} {unit},"
            f" at most {action.max_per_day} a day."
        )
    for target in program.give_targets:
        verb = "Transfer to" if target.kind == "partner" else "Donate to"
        row = (
            f"{verb} {target.name} ({target.id}): {number(target.points_per_unit)} {unit}"
            f" = 1 {target.unit_name}"
        )
        if target.min_points:
            row += f", at least {number(target.min_points)} {unit}"
        if target.inbound_points_per_unit:
            row += f"; 1 {target.unit_name} from them = {target.inbound_points_per_unit} {unit}"
        rows.append(row + ".")
    rows += every_nth(program)
    gate = program.membership.min_spend
    if gate is not None:
        rows.append(
            f"Membership: a new member's {unit} (from purchases, actions and transfers) are held"
            f" until {number(gate)} {program.currency} is spent in all, then released at once."
        )
    if program.membership.invitation:
        rows.append(
            "Membership: by invitation of a member, who may invite"
            f" {program.membership.invitations_per_member}."
        )
    awards = program.staff_awards
    if awards is not None:
        rows.append(
            f"Staff awards: up to {number(awards.max_points)} {unit} an award, with the staff"
            f" member's PIN; above {number(awards.approval_over)}, a second staff member's PIN"
            " approves."
        )
    age = program.membership.min_age
    if age is not None:
        guardian = program.membership.guardian_from_age
        rows.append(
            f"Membership: from {age} years old (the birthday is asked when joining)"
            + (f"; from {guardian} with a parent's or guardian's consent." if guardian else ".")
        )
    expiry = program.expiry
    if expiry.mode is ExpiryMode.PERIOD_END:
        ends = {0: "that year's end", 1: "the end of the next year"}
        when = ends.get(expiry.years, f"the end of the {expiry.years}th year after")
        rows.append(
            f"Expiry: {unit} earned in a calendar year expire at {when} (oldest spent first)."
        )
    elif expiry.mode is ExpiryMode.INACTIVITY and expiry.months:
        rows.append(
            f"Expiry: all {unit} expire after {expiry.months} months without a purchase,"
            " a reward, an action or a transfer."
        )
    elif expiry.months:
        rows.append(f"Expiry: {unit} expire {expiry.months} months after they are earned.")
    else:
        rows.append(f"Expiry: {unit} never expire.")
    allowed = program.spending.identified_by
    if allowed is not None:
        rows.append("Spending only for a member identified by: " + ", ".join(sorted(allowed)) + ".")
    return rows


def ordinal(n: int) -> str:
    """2 -> "2nd", 3 -> "3rd", 11 -> "11th"."""
    ends = {1: "st", 2: "nd", 3: "rd"}
    return f"{n}{'th' if 10 <= n % 100 <= 20 else ends.get(n % 10, 'th')}"


def every_nth(program: Program) -> list[str]:
    rule = program.every_nth
    if rule is None:
        return []
    by_unit = program.earn.by_unit
    if rule.count is NthCount.UNITS:
        what = by_unit.word("en", 1) if by_unit else "unit"
        row = (
            f"{rule.name}: every {ordinal(rule.n)} {what} over the membership is free, worth its"
            f" line's price a {what}"
        )
    else:
        row = (
            f"{rule.name}: every {ordinal(rule.n)} purchase over the membership is free, worth its"
            " dearest item"
        )
    if rule.max_value is not None:
        row += f" (at most {number(rule.max_value)} {program.currency})"
    if rule.excluded_categories:
        names = ", ".join(sorted(program.category_name(c, "en") for c in rule.excluded_categories))
        row += f"; never a line of {names} (whose units still count)"
    if not rule.with_points_as_money:
        row += "; not in a sale that spends points as money"
    return [row + "."]


def coalition(program: Program) -> list[str]:
    found = program.coalition
    if found is None:
        return []
    unit, currency = program.unit_name, program.currency
    rows = [
        f"Coalition run by {found.operator}: {unit} earned at any merchant are spent at any;"
        f" its own {unit} (its own tills', partner transfers in, partners' offers) cost it"
        f" {number(found.funding_rate)} {currency} each."
    ]
    for merchant in found.merchants:
        rates = []
        if merchant.rate is not None:
            rates.append(
                f"{points(program, merchant.rate)} per {number(program.earn.unit)} {currency}"
            )
        rates += [
            f"{number(rate)} on {program.category_name(category, 'en')}"
            for category, rate in sorted(merchant.category_rates.items())
        ]
        earns = ", ".join(rates) if rates else "the programme's rates"
        one = points(program, 1).split(" ", 1)[1]  # "point", "mile"
        rows.append(
            f"  {merchant.name} ({merchant.id}): earns {earns}; each {one}"
            f" it issues costs it {number(merchant.funding_rate)} {currency}, paid to the"
            " merchant where it is spent."
        )
    rows.append(
        f"  Oldest {unit} are spent first; merchants settle a period with"
        " `loyalty-server settlement --from --to`."
    )
    return rows


def months(count: int) -> str:
    return "1 month" if count == 1 else f"{count} months"


def offers(program: Program) -> list[str]:
    rows = []
    currency = program.currency
    for offer in program.offers:
        if offer.kind is OfferKind.DISCOUNT:
            gives = f"{number(offer.value)} {currency} off the sale"
        elif offer.kind is OfferKind.BONUS_POINTS:
            gives = f"{points(program, offer.points)} on top"
        else:
            worth = f", worth at most {number(offer.value)} {currency}" if offer.value else ""
            gives = f"one of its items free, the dearest{worth}"
        conditions = []
        items = sorted(offer.skus) + sorted(
            program.category_name(c, "en") for c in offer.categories
        )
        if items:
            conditions.append("a sale with " + ", ".join(items))
        if offer.min_spend:
            conditions.append(f"a sale of at least {number(offer.min_spend)} {currency}")
        if offer.min_tier:
            conditions.append(f"from {program.tier_name(offer.min_tier, 'en')} up")
        if offer.min_tenure_months:
            conditions.append(f"after {months(offer.min_tenure_months)} of membership")
        if offer.new_members_months:
            conditions.append(f"in a member's first {months(offer.new_members_months)}")
        if offer.valid_from and offer.valid_until:
            conditions.append(f"from {offer.valid_from} to {offer.valid_until}")
        elif offer.valid_from or offer.valid_until:
            conditions.append(
                f"from {offer.valid_from}" if offer.valid_from else f"until {offer.valid_until}"
            )
        times = "once" if offer.max_uses_per_member == 1 else f"{offer.max_uses_per_member} times"
        when = f" ({'; '.join(conditions)})" if conditions else ""
        rows.append(
            f"Offer from {offer.partner}, {offer.name} ({offer.id}): {gives}{when};"
            f" {times} a member, by itself, no code."
        )
    return rows


def describe_program(program: Program) -> list[str]:
    """Every rule of the programme, one sentence a line."""
    head = f"{program.name} ({program.id}): {program.unit_name}, prices in {program.currency}."
    return [
        head,
        *earning(program),
        *coalition(program),
        *tiers(program),
        *rewards(program),
        *offers(program),
        *other_rules(program),
    ]
