"""Load a loyalty program definition (config/programs/*.toml) into rules.Program."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pos_client.configfile import ConfigError, Section, load_toml
from pos_client.domain import MAX_OFFERS, text_problem
from pos_client.operations import MAX_UNITS, PROGRAM_VERSION
from pos_client.plurals import LANGUAGES, plural_count
from pos_client.rules import (
    SPEND_IDENTIFICATIONS,
    ActionRule,
    BirthdayPolicy,
    Category,
    Coalition,
    Downgrade,
    EarnMode,
    EarnPolicy,
    EveryNthFree,
    ExpiryMode,
    ExpiryPolicy,
    GiveTarget,
    LocalNames,
    MembershipGate,
    Merchant,
    NthCount,
    OfferKind,
    PartnerOffer,
    PointsAsMoney,
    Program,
    Reward,
    RewardKind,
    SpendingPolicy,
    StaffAwardPolicy,
    TenureCount,
    Tier,
    TierBasis,
    TierPeriod,
    TierPolicy,
    UnitEarning,
    UnitForms,
    UnitRounding,
)

ZERO = Decimal(0)


def programs_dir(config_dir: Path) -> Path:
    return config_dir / "programs"


def preset_names(config_dir: Path) -> list[str]:
    return sorted(path.stem for path in programs_dir(config_dir).glob("*.toml"))


def resolve_program_path(name_or_path: str, config_dir: Path) -> Path:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml":
        return candidate
    preset = programs_dir(config_dir) / f"{name_or_path}.toml"
    if not preset.exists():
        known = ", ".join(preset_names(config_dir)) or "none"
        raise ConfigError(f"unknown program preset {name_or_path!r} (presets: {known})")
    return preset


def load_program(name_or_path: str, config_dir: Path) -> Program:
    path = resolve_program_path(name_or_path, config_dir)
    return parse_program(Section(load_toml(path), str(path)))


# A programme file is a page of TOML; a store server's answer far larger is not one.
MAX_PROGRAM_BYTES = 256 * 1024
VERSION_LENGTH = 16


def program_version(source: bytes) -> str:
    """A programme's version: the start of its file's SHA-256. Any edit is a new version,
    and a terminal can check that the text it was sent is the version it was told."""
    return hashlib.sha256(source).hexdigest()[:VERSION_LENGTH]


def is_program_version(value: object) -> bool:
    return isinstance(value, str) and PROGRAM_VERSION.fullmatch(value) is not None


@dataclass(frozen=True)
class ProgramDocument:
    """A programme as its TOML text with its version: what the store server hands out
    and a terminal keeps for offline use."""

    version: str
    source: str

    @classmethod
    def of(cls, source: str) -> ProgramDocument:
        return cls(program_version(source.encode()), source)

    def parse(self, origin: str) -> Program:
        """The rules, checked as strictly as a local file; refuses a text that is not the
        version it claims, too large, or not a valid programme (ConfigError)."""
        try:
            raw = self.source.encode()
        except UnicodeEncodeError:
            raise ConfigError(f"{origin}: a programme text that is not valid UTF-8") from None
        if len(raw) > MAX_PROGRAM_BYTES:
            raise ConfigError(f"{origin}: a programme larger than {MAX_PROGRAM_BYTES} bytes")
        if not is_program_version(self.version) or program_version(raw) != self.version:
            raise ConfigError(f"{origin}: the programme text does not match its version")
        try:
            data = tomllib.loads(self.source)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
        except RecursionError:  # arrays or tables nested thousands deep
            raise ConfigError(f"{origin}: not valid TOML: nested too deeply") from None
        return parse_program(Section(data, origin))


def load_program_document(name_or_path: str, config_dir: Path) -> ProgramDocument:
    """The local programme file as a document (the server's source of truth)."""
    path = resolve_program_path(name_or_path, config_dir)
    try:
        return ProgramDocument.of(path.read_bytes().decode())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be read)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _language(section: Section, name: str, code: str) -> None:
    if code not in LANGUAGES:
        raise section.fail(
            f"{name}.{code}", f"unknown language {code!r} (languages: {', '.join(LANGUAGES)})"
        )


def _names(section: Section, name: str = "names") -> LocalNames:
    """`names = { ru = "…", uk = "…", el = "…" }`: the display name per language."""
    table = section.table(name)
    names = {}
    for code in table.data:
        _language(section, name, code)
        text = table.text(code)
        if not text.strip():
            raise table.fail(code, "a display name cannot be empty")
        problem = "at most 80 characters" if len(text) > 80 else text_problem(text)
        if problem is not None:
            raise table.fail(code, problem)
        names[code] = text.strip()
    return LocalNames.of(names)


def _unit_forms(section: Section, name: str) -> UnitForms:
    """`units = { en = ["point", "points"], ru = ["балл", "балла", "баллов"], … }`: one word
    per plural form of the language (en and el have 2, ru and uk 3)."""
    table = section.table(name)
    forms = {}
    for code in table.data:
        _language(section, name, code)
        words = table.str_list(code)
        wanted = plural_count(code)
        if len(words) != wanted or not all(word.strip() for word in words):
            raise table.fail(
                code, f"expected {wanted} non-empty plural forms for {code!r}, got {words!r}"
            )
        forms[code] = [word.strip() for word in words]
    return UnitForms.of(forms)


MAX_UNIT_RATE = Decimal(10_000)
UNIT_EARNING_KEYS = frozenset(
    {
        "unit",
        "units",
        "rate",
        "per",
        "rounding",
        "category_rates",
        "minimum_per_line",
        "max_per_line",
        "with_amount",
        "decimals",
        "min_amount_per_unit",
        "max_lines_per_sale",
    }
)


EVERY_NTH_KEYS = frozenset(
    {"n", "count", "name", "names", "excluded_categories", "max_value", "with_points_as_money"}
)


def _every_nth(table: Section, earn: EarnPolicy, named: set[str]) -> EveryNthFree | None:
    """`[every_nth]`: every Nth night (units) or purchase (visits) free."""
    if not table.data:
        return None
    for extra in sorted(set(table.data) - EVERY_NTH_KEYS):
        known = ", ".join(sorted(EVERY_NTH_KEYS))
        raise table.fail(extra, f"unknown setting (every_nth has {known})")
    n = table.integer("n", minimum=2)
    count = table.choice("count", NthCount)
    if count is NthCount.UNITS and earn.by_unit is None:
        raise table.fail("count", "counting units needs [earn.by_unit] (what a unit is)")
    if count is NthCount.UNITS and earn.by_unit is not None and earn.by_unit.decimals:
        # Half nights would add up to a free one priced at a whole night's rate.
        raise table.fail("count", "counting units needs whole units: [earn.by_unit] decimals = 0")
    if n > 1000:
        raise table.fail("n", "at most 1000")
    return EveryNthFree(
        n=n,
        count=count,
        name=table.text("name"),
        names=_names(table),
        excluded_categories=_known_categories(table, "excluded_categories", named),
        max_value=table.decimal("max_value", None, minimum=Decimal("0.01")),
        with_points_as_money=bool(table.flag("with_points_as_money", False)),
    )


COALITION_KEYS = {"operator", "funding_rate", "merchants"}
MERCHANT_KEYS = {"id", "name", "names", "funding_rate", "rate", "category_rates"}
MAX_MERCHANTS = 100
MAX_FUNDING_RATE = Decimal(100)  # money a point: far above any real programme's
MAX_MERCHANT_RATE = Decimal(10_000)


def merchant_id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= 32:
        return "1 to 32 characters"
    if not (value[0].isascii() and value[0].isalnum()) or any(
        not (c.isascii() and (c.isalnum() or c in "_-")) or c.isupper() for c in value
    ):
        return "lower-case letters, digits, '-' and '_', starting with a letter or digit"
    return None


def _shown_name(table: Section, name: str) -> str:
    """A name shown on screens, receipts and reports: 1 to 80 characters of printable text."""
    text = table.text(name)
    problem = "1 to 80 characters" if not isinstance(text, str) else None
    if problem is None and (not text.strip() or len(text) > 80):
        problem = "1 to 80 characters"
    problem = problem or text_problem(text)
    if problem is not None:
        raise table.fail(name, problem)
    return str(text).strip()


def _funding_rate(table: Section, default: Decimal | None = None) -> Decimal:
    """What a point issued costs its issuer; required unless `default` is given."""
    rate: Decimal = (
        table.decimal("funding_rate", minimum=Decimal("0.0001"))
        if default is None
        else table.decimal("funding_rate", default, minimum=Decimal("0.0001"))
    )
    if rate > MAX_FUNDING_RATE:
        raise table.fail("funding_rate", f"at most {MAX_FUNDING_RATE} a point")
    if -rate.as_tuple().exponent > 6:  # type: ignore[operator]
        raise table.fail("funding_rate", "at most 6 decimals")
    return rate


def _coalition(table: Section, named: set[str]) -> Coalition | None:
    """`[coalition]` with `[[coalition.merchants]]`: companies sharing the programme, each
    with its tills' earning rates and what a point it issues costs it."""
    if not table.data:
        return None  # an empty [coalition] table is refused by the caller
    for extra in sorted(set(table.data) - COALITION_KEYS):
        raise table.fail(
            extra, f"unknown setting (coalition has {', '.join(sorted(COALITION_KEYS))})"
        )
    operator = _shown_name(table, "operator")
    operator_rate = _funding_rate(table)
    merchants: list[Merchant] = []
    sections = table.tables("merchants")
    if len(sections) < 2:
        raise table.fail("merchants", "a coalition needs two or more [[coalition.merchants]]")
    if len(sections) > MAX_MERCHANTS:
        raise table.fail("merchants", f"at most {MAX_MERCHANTS} merchants")
    for section in sections:
        for extra in sorted(set(section.data) - MERCHANT_KEYS):
            known = ", ".join(sorted(MERCHANT_KEYS))
            raise section.fail(extra, f"unknown setting (a merchant has {known})")
        merchant_id = section.text("id")
        problem = merchant_id_problem(merchant_id)
        if problem is not None:
            raise section.fail("id", f"a merchant id: {problem}")
        if merchant_id == "operator":
            raise section.fail("id", "'operator' names the coalition's operator in reports")
        if any(m.id == merchant_id for m in merchants):
            raise section.fail("id", f"merchant {merchant_id!r} is named twice")
        name = _shown_name(section, "name")
        rate = section.decimal("rate", None, minimum=ZERO)
        if rate is not None and rate > MAX_MERCHANT_RATE:
            raise section.fail("rate", f"at most {MAX_MERCHANT_RATE} points a currency unit")
        rates = section.table("category_rates")
        for key in rates.data:
            if key not in named:
                raise rates.fail(key, f"no category {key!r} (add [categories.{key}])")
            if rates.decimal(key, minimum=ZERO) > MAX_MERCHANT_RATE:
                raise rates.fail(key, f"at most {MAX_MERCHANT_RATE} points a currency unit")
        merchants.append(
            Merchant(
                id=merchant_id,
                name=name,
                funding_rate=_funding_rate(section, operator_rate),
                rate=rate,
                category_rates=section.decimal_map("category_rates"),
                names=_names(section),
            )
        )
    return Coalition(
        operator=operator,
        funding_rate=operator_rate,
        merchants=tuple(merchants),
    )


OFFER_KEYS = {
    "id",
    "partner",
    "name",
    "names",
    "kind",
    "value",
    "points",
    "skus",
    "categories",
    "min_spend",
    "valid_from",
    "valid_until",
    "max_uses_per_member",
    "min_tier",
    "min_tenure_months",
    "new_members_months",
}
MAX_OFFER_POINTS = 100_000


def _day(table: Section, name: str) -> date | None:
    value = table.data.get(name)
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    shown = str(value) if isinstance(value, date) else repr(value)
    raise table.fail(name, f"expected a day as YYYY-MM-DD, got {shown}")


MAX_OFFER_MONEY = Decimal(1_000_000)
MAX_OFFER_SKUS = 500


def _offer_money(table: Section, name: str) -> Decimal:
    value: Decimal = table.decimal(name, ZERO, minimum=ZERO)
    if value > MAX_OFFER_MONEY or -value.as_tuple().exponent > 2:  # type: ignore[operator]
        raise table.fail(name, f"money: at most {MAX_OFFER_MONEY}, in cents at most")
    return value


def _offer_skus(table: Section) -> frozenset[str]:
    skus = table.str_list("skus")
    if len(skus) > MAX_OFFER_SKUS:
        raise table.fail("skus", f"at most {MAX_OFFER_SKUS} items")
    for index, sku in enumerate(skus):
        problem = "1 to 64 characters" if not 0 < len(sku) <= 64 else text_problem(sku)
        if problem is not None:
            raise table.fail(f"skus[{index}]", problem)
    return frozenset(skus)


def _offers(
    root: Section, named: set[str], tier_ids: set[str], tenure: TenureCount
) -> tuple[PartnerOffer, ...]:
    """`[[offers]]`: partners' offers that belong to members, applied by themselves."""
    sections = root.tables("offers")
    if len(sections) > MAX_OFFERS:
        raise root.fail("offers", f"at most {MAX_OFFERS} offers")
    offers: list[PartnerOffer] = []
    for section in sections:
        for extra in sorted(set(section.data) - OFFER_KEYS):
            raise section.fail(
                extra, f"unknown setting (an offer has {', '.join(sorted(OFFER_KEYS))})"
            )
        offer_id = section.text("id")
        problem = merchant_id_problem(offer_id)
        if problem is not None:
            raise section.fail("id", f"an offer id: {problem}")
        if any(o.id == offer_id for o in offers):
            raise section.fail("id", f"offer {offer_id!r} is named twice")
        partner, name = _shown_name(section, "partner"), _shown_name(section, "name")
        kind = section.choice("kind", OfferKind)
        value = _offer_money(section, "value")
        points = section.integer("points", 0, minimum=0, maximum=MAX_OFFER_POINTS)
        categories = _known_categories(section, "categories", named)
        skus = _offer_skus(section)
        if kind is OfferKind.BONUS_POINTS and "value" in section.data:
            raise section.fail("value", "bonus points give points, not money (points = …)")
        if kind is not OfferKind.BONUS_POINTS and "points" in section.data:
            raise section.fail("points", f"a {kind.value} gives money off, not points")
        if kind is OfferKind.DISCOUNT and value <= 0:
            raise section.fail("value", "a discount needs the money it takes off (value)")
        if kind is OfferKind.BONUS_POINTS and points <= 0:
            raise section.fail("points", "bonus points need how many (points)")
        if kind is OfferKind.FREE_ITEM and not (skus or categories):
            raise section.fail("skus", "a free item needs its skus or categories")
        valid_from, valid_until = _day(section, "valid_from"), _day(section, "valid_until")
        if valid_from and valid_until and valid_until < valid_from:
            raise section.fail("valid_until", "before valid_from")
        min_tier = section.text("min_tier", None)
        if min_tier is not None and min_tier not in tier_ids:
            raise section.fail("min_tier", f"no tier {min_tier!r}")
        tenure_least = section.integer("min_tenure_months", 0, minimum=0, maximum=1200)
        new_months = section.integer("new_members_months", None, minimum=1, maximum=1200)
        if new_months is not None and new_months <= tenure_least:
            raise section.fail("new_members_months", "not above min_tenure_months: never open")
        if new_months is not None and tenure is TenureCount.ACTIVE_MONTHS:
            raise section.fail(
                "new_members_months",
                "counts months since joining; [tiers] tenure = active_months counts others",
            )
        offers.append(
            PartnerOffer(
                id=offer_id,
                partner=partner,
                name=name,
                kind=kind,
                value=value,
                points=points,
                skus=skus,
                categories=categories,
                min_spend=_offer_money(section, "min_spend"),
                valid_from=valid_from,
                valid_until=valid_until,
                max_uses_per_member=section.integer(
                    "max_uses_per_member", 1, minimum=1, maximum=1000
                ),
                min_tier=min_tier,
                min_tenure_months=tenure_least,
                new_members_months=new_months,
                names=_names(section),
            )
        )
    return tuple(offers)


def _coalition_of(root: Section) -> Coalition | None:
    if "coalition" in root.data and not root.table("coalition").data:
        raise root.fail("coalition", "empty: a coalition needs its operator and merchants")
    return _coalition(root.table("coalition"), set(root.table("categories").data))


def _staff_awards_of(root: Section) -> StaffAwardPolicy | None:
    if "staff_awards" in root.data and not root.table("staff_awards").data:
        raise root.fail("staff_awards", "empty: staff awards need max_points and approval_over")
    return _staff_awards(root.table("staff_awards"))


def _staff_awards(table: Section) -> StaffAwardPolicy | None:
    """`[staff_awards]`: max_points an award, approval_over (a second staff PIN above)."""
    if not table.data:
        return None  # an empty table is refused by the caller
    for extra in sorted(set(table.data) - {"max_points", "approval_over"}):
        raise table.fail(extra, "unknown setting (staff_awards has max_points, approval_over)")
    most = table.integer("max_points", minimum=1, maximum=MAX_OFFER_POINTS)
    approval = table.integer("approval_over", minimum=0, maximum=MAX_OFFER_POINTS)
    if approval >= most:
        raise table.fail("approval_over", "below max_points (else no award needs approval)")
    return StaffAwardPolicy(max_points=most, approval_over=approval)


def _membership(table: Section) -> MembershipGate:
    """`[membership]`: min_spend (points held until a prospect has spent this), min_age and
    guardian_from_age (the age gate at enrollment)."""
    keys = {"min_spend", "min_age", "guardian_from_age", "invitation", "invitations_per_member"}
    for extra in sorted(set(table.data) - keys):
        raise table.fail(extra, f"unknown setting (membership has {', '.join(sorted(keys))})")
    min_age = table.integer("min_age", None, minimum=1, maximum=120)
    guardian = table.integer("guardian_from_age", None, minimum=1, maximum=120)
    if guardian is not None and (min_age is None or guardian >= min_age):
        raise table.fail(
            "guardian_from_age", "an age below min_age (a guardian consents for minors)"
        )
    invitation = bool(table.flag("invitation", False))
    if "invitations_per_member" in table.data and not invitation:
        raise table.fail("invitations_per_member", "goes with invitation = true")
    return MembershipGate(
        min_spend=table.decimal("min_spend", None, minimum=Decimal("0.01")),
        min_age=min_age,
        guardian_from_age=guardian,
        invitation=invitation,
        invitations_per_member=table.integer("invitations_per_member", 5, minimum=1, maximum=1000),
    )


def _expiry(table: Section) -> ExpiryPolicy:
    """`[expiry]`: months = 12 (rolling), mode = "period_end" with years, or mode =
    "inactivity" with months."""
    for extra in sorted(set(table.data) - {"months", "mode", "years"}):
        raise table.fail(extra, "unknown setting (expiry has months, mode, years)")
    mode = table.choice("mode", ExpiryMode, ExpiryMode.ROLLING)
    months = table.integer("months", None, minimum=1)
    years = table.integer("years", 0, minimum=0)
    if mode is ExpiryMode.PERIOD_END and months is not None:
        raise table.fail("months", "period_end counts years (years = 0: at the year's end)")
    if mode is not ExpiryMode.PERIOD_END and "years" in table.data:
        raise table.fail("years", f"{mode.value} counts months, not years")
    if mode is ExpiryMode.INACTIVITY and months is None:
        raise table.fail("months", "inactivity needs the months without activity")
    if years > 10 or (months or 0) > 120:
        raise table.fail("years" if years > 10 else "months", "at most 10 years")
    return ExpiryPolicy(months=months, mode=mode, years=years)


def _known_categories(table: Section, name: str, named: set[str]) -> frozenset[str]:
    """A list of category ids, each one the programme names ([categories.<id>])."""
    found = table.str_list(name)
    unknown = sorted(set(found) - named)
    if unknown:
        raise table.fail(name, f"no category {unknown[0]!r} (add [categories.{unknown[0]}])")
    return frozenset(found)


def _or_thresholds(table: Section) -> tuple[tuple[TierBasis, Decimal], ...]:
    """`or_thresholds = { segments = 30, spend = 3000 }`: other measures reaching a tier."""
    found = []
    for name in sorted(table.data):
        try:
            basis = TierBasis(name)
        except ValueError:
            known = ", ".join(basis.value for basis in TierBasis)
            raise table.fail(name, f"not a tier measure (measures: {known})") from None
        found.append((basis, table.decimal(name, minimum=ZERO)))
    return tuple(found)


def _unit_earning(table: Section) -> UnitEarning | None:
    """`[earn.by_unit]`: points per kilometre, night or litre (see rules.UnitEarning)."""
    if not table.data:
        return None
    for extra in sorted(set(table.data) - UNIT_EARNING_KEYS):
        known = ", ".join(sorted(UNIT_EARNING_KEYS))
        raise table.fail(extra, f"unknown setting (by_unit has {known})")
    unit = table.text("unit")
    if not isinstance(unit, str) or not unit.strip() or len(unit) > 32:
        raise table.fail("unit", "the unit's name, 1 to 32 characters (km, nights, litres)")
    minimum = table.decimal("minimum_per_line", ZERO, minimum=ZERO)
    most = table.decimal("max_per_line", Decimal(100_000), minimum=Decimal("0.001"))
    if most >= MAX_UNITS:
        raise table.fail("max_per_line", f"at most {MAX_UNITS - 1} (what a sale line can carry)")
    if minimum > most:
        raise table.fail("minimum_per_line", "more than max_per_line")
    with_amount = table.flag("with_amount", False)
    for name in ("rate", *(f"category_rates.{c}" for c in table.table("category_rates").data)):
        section, key = (table.table("category_rates"), name[15:]) if "." in name else (table, name)
        value = section.decimal(key, None, minimum=ZERO)
        if value is not None and value > MAX_UNIT_RATE:
            raise section.fail(key, f"at most {MAX_UNIT_RATE} points a unit")
    return UnitEarning(
        unit=unit.strip(),
        rate=table.decimal("rate", Decimal(1), minimum=ZERO),
        per=table.decimal("per", Decimal(1), minimum=Decimal("0.001")),
        rounding=table.choice("rounding", UnitRounding, UnitRounding.FLOOR),
        category_rates=table.decimal_map("category_rates"),
        minimum_per_line=minimum,
        max_per_line=most,
        with_amount=bool(with_amount),
        forms=_unit_forms(table, "units"),
        decimals=_unit_decimals(table),
        min_amount_per_unit=table.decimal("min_amount_per_unit", ZERO, minimum=ZERO),
        max_lines_per_sale=_bounded(table, "max_lines_per_sale", 20, 500),
    )


def _bounded(table: Section, name: str, default: int, most: int) -> int:
    value = int(table.integer(name, default, minimum=1))
    if value > most:
        raise table.fail(name, f"at most {most}")
    return value


def _unit_decimals(table: Section) -> int:
    decimals = table.integer("decimals", 3, minimum=0)
    if decimals > 3:
        raise table.fail("decimals", "at most 3 (a sale line's units carry 3 decimals)")
    return int(decimals)


def _categories(root: Section, rates: dict[str, Decimal]) -> tuple[Category, ...]:
    """`[categories.<id>]` with `name` and `names`: every earn category gets a display name,
    so no category id is ever shown on screen."""
    table = root.table("categories")
    categories = tuple(
        Category(id=key, name=table.table(key).text("name"), names=_names(table.table(key)))
        for key in table.data
    )
    named = {category.id for category in categories}
    for category_id in rates:
        if category_id not in named:
            raise root.fail(
                f"categories.{category_id}",
                f"earn category {category_id!r} needs a display name "
                f'([categories.{category_id}] name = "…", names = {{ ru = "…", … }})',
            )
    return categories


def _reward(section: Section) -> Reward:
    options = []
    for option in section.tables("points_plus_cash"):
        options.append((option.integer("points", minimum=0), option.decimal("cash", minimum=ZERO)))
    return Reward(
        id=section.text("id"),
        name=section.text("name"),
        cost=section.integer("cost", 0, minimum=0),
        kind=section.choice("kind", RewardKind, RewardKind.ITEM),
        value=section.decimal("value", None, minimum=ZERO),
        min_tier=section.text("min_tier", None),
        points_plus_cash=tuple(options),
        names=_names(section),
    )


def parse_program(root: Section) -> Program:
    earn = root.table("earn", required=True)
    featured_rate = earn.decimal("featured_rate", None, minimum=ZERO)
    featured = (
        {sku: featured_rate for sku in earn.str_list("featured_skus")} if featured_rate else {}
    )
    earn_policy = EarnPolicy(
        mode=earn.choice("mode", EarnMode, EarnMode.PER_AMOUNT),
        rate=earn.decimal("rate", Decimal(1), minimum=ZERO),
        unit=earn.decimal("unit", Decimal(1), minimum=Decimal("0.01")),
        category_rates=earn.decimal_map("category_rates"),
        featured_rates=featured,
        min_amount=earn.decimal("min_amount", ZERO, minimum=ZERO),
        max_points_per_sale=earn.integer("max_points_per_sale", None, minimum=1),
        by_unit=_unit_earning(earn.table("by_unit")),
    )
    tiers = root.table("tiers", required=True)
    levels = tiers.tables("levels")
    if not levels:
        raise tiers.fail("levels", "at least one [[tiers.levels]] is required")
    tier_list = tuple(
        Tier(
            id=level.text("id"),
            name=level.text("name"),
            threshold=level.decimal("threshold", ZERO, minimum=ZERO),
            multiplier=level.decimal("multiplier", Decimal(1), minimum=ZERO),
            rate_floor=level.decimal("rate_floor", None, minimum=ZERO),
            perks=tuple(level.str_list("perks")),
            names=_names(level),
            or_thresholds=_or_thresholds(level.table("or_thresholds")),
            min_tenure_months=level.integer("min_tenure_months", 0, minimum=0),
        )
        for level in levels
    )
    basis = tiers.choice("basis", TierBasis, TierBasis.POINTS)
    period = tiers.choice("period", TierPeriod, TierPeriod.LIFETIME)
    downgrade = tiers.choice("downgrade", Downgrade, Downgrade.IMMEDIATE)
    tenure = tiers.choice("tenure", TenureCount, TenureCount.MONTHS)
    by_units = {TierBasis.UNITS, TierBasis.SEGMENTS}
    if earn_policy.by_unit is None and (
        basis in by_units or any(b in by_units for t in tier_list for b, _v in t.or_thresholds)
    ):
        raise tiers.fail(
            "basis" if basis in by_units else "levels",
            "tiers by units or segments need [earn.by_unit] (what a unit is)",
        )
    grace = tiers.integer("grace_months", 0, minimum=0, maximum=60)
    try:
        tier_policy = TierPolicy(
            basis=basis,
            period=period,
            tiers=tier_list,
            downgrade=downgrade,
            tenure=tenure,
            grace_months=grace,
        )
    except ValueError as exc:
        key = "grace_months" if "grace" in str(exc) else "levels"
        raise tiers.fail(key, str(exc)) from None
    catalog = tuple(_reward(item) for item in root.tables("catalog"))
    tier_ids = {tier.id for tier in tier_list}
    for index, reward in enumerate(catalog):
        if reward.min_tier is not None and reward.min_tier not in tier_ids:
            raise ConfigError(
                f"config key 'catalog[{index}].min_tier' ({root.source}): "
                f"no tier {reward.min_tier!r}"
            )
    pam_section = root.table("points_as_money")
    pam = None
    if pam_section.data:
        pam = PointsAsMoney(
            block_points=pam_section.integer("block_points", minimum=1),
            block_value=pam_section.decimal("block_value", minimum=Decimal("0.01")),
        )
    birthday = root.table("birthday")
    reward_id = birthday.text("reward_id", None)
    birthday_reward = None
    if reward_id:
        birthday_reward = Reward(
            id=reward_id,
            name=birthday.text("reward_name", reward_id),
            cost=0,
            names=_names(birthday, "reward_names"),
        )
    actions = {
        action.text("id"): ActionRule(
            id=action.text("id"),
            name=action.text("name"),
            points=action.integer("points", minimum=0),
            max_per_day=action.integer("max_per_day", 1, minimum=1),
            names=_names(action),
        )
        for action in root.tables("actions")
    }
    give_targets = tuple(
        GiveTarget(
            id=item.text("id"),
            name=item.text("name"),
            kind=kind,
            points_per_unit=item.integer("points_per_unit", minimum=1),
            unit_name=item.text("unit_name"),
            min_points=item.integer("min_points", 0, minimum=0),
            inbound_points_per_unit=item.integer("inbound_points_per_unit", None, minimum=1),
            names=_names(item),
            unit_forms=_unit_forms(item, "units"),
        )
        for kind, key in (("partner", "partners"), ("charity", "charities"))
        for item in root.tables(key)
    )
    return Program(
        give_targets=give_targets,
        every_nth=_every_nth(
            root.table("every_nth"), earn_policy, set(root.table("categories").data)
        ),
        membership=_membership(root.table("membership")),
        coalition=_coalition_of(root),
        offers=_offers(root, set(root.table("categories").data), tier_ids, tenure),
        staff_awards=_staff_awards_of(root),
        id=root.text("id"),
        name=root.text("name"),
        currency=root.text("currency", "USD"),
        unit_name=root.text("unit_name", "points"),
        earn=earn_policy,
        tiers=tier_policy,
        catalog=catalog,
        points_as_money=pam,
        birthday=BirthdayPolicy(
            reward_id=reward_id,
            points=birthday.integer("points", 0, minimum=0),
            window_days=birthday.integer("window_days", 30, minimum=1),
        ),
        actions=actions,
        expiry=_expiry(root.table("expiry")),
        spending=_spending(root.table("spending")),
        max_redeem_points_per_sale=root.integer("max_redeem_points_per_sale", None, minimum=1),
        birthday_reward=birthday_reward,
        categories=_categories(
            root,
            {
                **earn_policy.category_rates,
                **(earn_policy.by_unit.category_rates if earn_policy.by_unit else {}),
            },
        ),
        unit_forms=_unit_forms(root, "units"),
        names=_names(root),
    )


def _spending(table: Section) -> SpendingPolicy:
    for extra in sorted(set(table.data) - {"identified_by"}):
        raise table.fail(extra, "unknown setting (the spending table has identified_by)")
    if "identified_by" not in table.data:
        return SpendingPolicy()
    kinds = table.str_list("identified_by")
    unknown = sorted(set(kinds) - set(SPEND_IDENTIFICATIONS))
    if unknown or not kinds:
        raise table.fail(
            "identified_by",
            (f"unknown identification(s) {', '.join(unknown)}; " if unknown else "empty; ")
            + f"list one or more of {', '.join(SPEND_IDENTIFICATIONS)}",
        )
    return SpendingPolicy(frozenset(kinds))


def _unit_earning_json(by_unit: UnitEarning | None) -> dict[str, Any]:
    if by_unit is None:  # absent, so the rules of a programme without units read as before
        return {}
    return {
        "by_unit": {
            "unit": by_unit.unit,
            "units": {code: list(words) for code, words in by_unit.forms.items},
            "rate": str(by_unit.rate),
            "per": str(by_unit.per),
            "rounding": by_unit.rounding.value,
            "category_rates": {k: str(v) for k, v in by_unit.category_rates.items()},
            "minimum_per_line": str(by_unit.minimum_per_line),
            "max_per_line": str(by_unit.max_per_line),
            "with_amount": by_unit.with_amount,
            "decimals": by_unit.decimals,
        }
    }


def _coalition_json(coalition: Coalition | None) -> dict[str, Any]:
    if coalition is None:  # absent, so a programme without merchants reads as before
        return {}
    return {
        "coalition": {
            "operator": coalition.operator,
            "funding_rate": str(coalition.funding_rate),
            "merchants": [
                {
                    "id": m.id,
                    "name": m.name,
                    "names": dict(m.names.items),
                    "funding_rate": str(m.funding_rate),
                    "rate": None if m.rate is None else str(m.rate),
                    "category_rates": {k: str(v) for k, v in m.category_rates.items()},
                }
                for m in coalition.merchants
            ],
        }
    }


def program_to_json(program: Program) -> dict[str, Any]:
    """The rules as plain JSON, for terminals to cache and for the server's API."""

    def number(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "id": program.id,
        "name": program.name,
        "names": dict(program.names.items),
        "units": {code: list(words) for code, words in program.unit_forms.items},
        "categories": [
            {"id": c.id, "name": c.name, "names": dict(c.names.items)} for c in program.categories
        ],
        "currency": program.currency,
        "unit_name": program.unit_name,
        "earn": {
            "mode": program.earn.mode.value,
            "rate": str(program.earn.rate),
            "unit": str(program.earn.unit),
            "category_rates": {k: str(v) for k, v in program.earn.category_rates.items()},
            "featured_rates": {k: str(v) for k, v in program.earn.featured_rates.items()},
            "min_amount": str(program.earn.min_amount),
            "max_points_per_sale": program.earn.max_points_per_sale,
            **_unit_earning_json(program.earn.by_unit),
        },
        "tiers": {
            "basis": program.tiers.basis.value,
            "period": program.tiers.period.value,
            "downgrade": program.tiers.downgrade.value,
            "grace_months": program.tiers.grace_months,
            "tenure": program.tiers.tenure.value,
            "levels": [
                {
                    "id": t.id,
                    "name": t.name,
                    "threshold": str(t.threshold),
                    "multiplier": str(t.multiplier),
                    "rate_floor": number(t.rate_floor),
                    "perks": list(t.perks),
                    "names": dict(t.names.items),
                    "or_thresholds": {basis.value: str(v) for basis, v in t.or_thresholds},
                    "min_tenure_months": t.min_tenure_months,
                }
                for t in program.tiers.tiers
            ],
        },
        "catalog": [
            {
                "id": r.id,
                "name": r.name,
                "cost": r.cost,
                "kind": r.kind.value,
                "value": number(r.value),
                "min_tier": r.min_tier,
                "names": dict(r.names.items),
                "points_plus_cash": [{"points": p, "cash": str(c)} for p, c in r.points_plus_cash],
            }
            for r in program.catalog
        ],
        "points_as_money": None
        if program.points_as_money is None
        else {
            "block_points": program.points_as_money.block_points,
            "block_value": str(program.points_as_money.block_value),
        },
        "spending": {
            "identified_by": None
            if program.spending.identified_by is None
            else [k for k in SPEND_IDENTIFICATIONS if k in program.spending.identified_by]
        },
        "birthday": {
            "reward_id": program.birthday.reward_id,
            "points": program.birthday.points,
            "window_days": program.birthday.window_days,
        },
        "actions": [
            {
                "id": a.id,
                "name": a.name,
                "points": a.points,
                "max_per_day": a.max_per_day,
                "names": dict(a.names.items),
            }
            for a in program.actions.values()
        ],
        "give_targets": [
            {
                "id": g.id,
                "name": g.name,
                "kind": g.kind,
                "points_per_unit": g.points_per_unit,
                "unit_name": g.unit_name,
                "min_points": g.min_points,
                "inbound_points_per_unit": g.inbound_points_per_unit,
                "names": dict(g.names.items),
                "units": {code: list(words) for code, words in g.unit_forms.items},
            }
            for g in program.give_targets
        ],
        **_coalition_json(program.coalition),
        "offers": [
            {
                "id": o.id,
                "partner": o.partner,
                "name": o.name,
                "names": dict(o.names.items),
                "kind": o.kind.value,
                "value": str(o.value),
                "points": o.points,
                "skus": sorted(o.skus),
                "categories": sorted(o.categories),
                "min_spend": str(o.min_spend),
                "valid_from": o.valid_from.isoformat() if o.valid_from else None,
                "valid_until": o.valid_until.isoformat() if o.valid_until else None,
                "max_uses_per_member": o.max_uses_per_member,
                "min_tier": o.min_tier,
                "min_tenure_months": o.min_tenure_months,
                "new_members_months": o.new_members_months,
            }
            for o in program.offers
        ],
        "expiry_months": program.expiry.months,
        "expiry_mode": program.expiry.mode.value,
        "expiry_years": program.expiry.years,
        "max_redeem_points_per_sale": program.max_redeem_points_per_sale,
    }
