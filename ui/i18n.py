"""Translations (en, ru, uk, el) from gettext catalogs, and locale formatting with Babel.

Catalogs: `ui/locale/<lang>/LC_MESSAGES/pos.po`, template `ui/locale/pos.pot`. Message ids are
stable keys ("admin.wrong_pin"), not English text: the .kv files and tests call keys, an
English wording change does not invalidate ru/uk/el, and the template carries the English
text of each key as a translator comment. English itself is the `en` catalog.
Workflow (`make i18n`): pybabel extract (ui/babel_extract.py finds keys in .py and .kv) ->
pybabel update -> pybabel compile. A key in PLURALS is a plural message (msgid_plural);
its form is picked by the named parameter with the language's Plural-Forms rule.

At run time a compiled .mo is used when it is newer than its .po (`make` compiles them);
otherwise the .po is read with Babel (about 10 ms a language, once).
A missing translation falls back to English, then to the key.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from pos_client.plurals import plural_index

if TYPE_CHECKING:
    from pos_client.checkout import Receipt
    from pos_client.domain import MemberView
    from pos_client.rules import EarnBreakdown, GiveTarget, Program

LOCALES = {"en": "en_US", "ru": "ru_RU", "uk": "uk_UA", "el": "el_GR"}
LANGUAGE_NAMES = {"en": "EN", "ru": "РУ", "uk": "УК", "el": "ΕΛ"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "pos"

# Plural messages: key -> the parameter whose number picks the form.
PLURALS: dict[str, str] = {
    "admin.wrong_pin": "left",
    "admin.retried": "count",
    "admin.syncing": "count",
    "status.pending": "count",
    "status.dead": "count",
    "unit.points": "count",
    "unit.stars": "count",
    "unit.visits": "count",
    "unit.segments": "count",
    "error.max_blocks": "count",
}


def N_(key: str) -> str:
    """Marks a key for extraction where it is looked up later (gettext's no-op marker)."""
    return key


# ---------------------------------------------------------------- catalogs


@dataclass
class Catalog:
    language: str
    singular: dict[str, str] = field(default_factory=dict)
    plural: dict[str, tuple[str, ...]] = field(default_factory=dict)
    plural_forms: str = ""

    def keys(self) -> set[str]:
        return set(self.singular) | set(self.plural)


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _from_po(language: str, path: Path) -> Catalog:
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        po = read_po(handle, locale=language, domain=DOMAIN)
    catalog = Catalog(language, plural_forms=str(po.plural_forms))
    for message in po:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple | list):
            forms = tuple(str(form) for form in message.string or ())
            if all(forms):
                catalog.plural[str(message.id[0])] = forms
        elif message.string:
            catalog.singular[str(message.id)] = str(message.string)
    return catalog


def _from_mo(language: str, path: Path) -> Catalog:
    with path.open("rb") as handle:
        mo = gettext.GNUTranslations(handle)
    catalog = Catalog(language, plural_forms=str(mo.info().get("plural-forms", "")))
    raw: dict[Any, str] = mo._catalog  # type: ignore[attr-defined]  # the parsed .mo table
    for msgid, text in raw.items():
        if isinstance(msgid, tuple):
            key, index = msgid
            forms = list(catalog.plural.get(key, ()))
            forms += [""] * (index + 1 - len(forms))
            forms[index] = text
            catalog.plural[key] = tuple(forms)
        elif msgid and text:
            catalog.singular[msgid] = text
    return catalog


@cache
def load_catalog(language: str) -> Catalog:
    po = po_path(language)
    mo = po.with_suffix(".mo")
    if not po.exists():
        return Catalog(language)
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return _from_mo(language, mo)
    return _from_po(language, po)


def _lookup(language: str, key: str, count: int | None) -> str | None:
    catalog = load_catalog(language)
    if count is not None and key in catalog.plural:
        forms = catalog.plural[key]
        return forms[min(plural_index(language, count), len(forms) - 1)]
    if key in catalog.singular:
        return catalog.singular[key]
    if key in catalog.plural:  # a plural message asked for without its number
        return catalog.plural[key][-1]
    return None


def translate(language: str, key: str, /, **values: object) -> str:
    """The message `key` in `language` with {placeholders} filled; plural messages pick
    their form by the parameter named in PLURALS."""
    count: int | None = None
    number_param = PLURALS.get(key)
    if number_param is not None and isinstance(values.get(number_param), int | Decimal):
        count = int(values[number_param])  # type: ignore[call-overload]
    text = _lookup(language, key, count) or _lookup("en", key, count) or key
    return text.format(**values) if values else text


def missing_keys(language: str) -> set[str]:
    return load_catalog("en").keys() - load_catalog(language).keys()


# ---------------------------------------------------------------- numbers, money, dates


def locale_of(language: str) -> str:
    return LOCALES.get(language, "en_US")


def format_number(value: int | Decimal, language: str) -> str:
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=locale_of(language)))


def format_money(amount: Decimal, currency: str, language: str) -> str:
    from babel.numbers import format_currency

    return str(format_currency(amount, currency, locale=locale_of(language)))


def format_moment(moment: datetime, timezone: str, language: str) -> str:
    """Times are UTC inside; on screen they are local to the store."""
    from babel.dates import format_datetime

    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = moment.astimezone(zone)
    return str(format_datetime(local, format="short", locale=locale_of(language)))


def format_day(day: date, language: str) -> str:
    from babel.dates import format_date

    return str(format_date(day, format="d MMMM", locale=locale_of(language)))


def format_age(seconds: float, language: str) -> str:
    """ "5 minutes ago" / "5 минут назад" / "πριν από 5 λεπτά"."""
    from datetime import timedelta

    from babel.dates import format_timedelta

    return str(
        format_timedelta(
            timedelta(seconds=-max(0.0, seconds)),
            add_direction=True,
            threshold=1.5,
            locale=locale_of(language),
        )
    )


def decimal_separator(language: str) -> str:
    """The keypad's decimal key: "." in en, "," in ru, uk, el."""
    from babel.numbers import get_decimal_symbol

    return str(get_decimal_symbol(locale_of(language)))


_SPACES = re.compile(r"[\s\u00a0\u202f]")


def parse_amount(text: str, language: str) -> Decimal | None:
    """An amount typed on the keypad ("12,50" in ru, "12.50" in en) -> Decimal; None if it is
    not a plain non-negative amount. "." is accepted in every language (a scanner or a
    keyboard types it); the language's grouping separators are not (the keypad has none)."""
    compact = _SPACES.sub("", text or "")
    separator = decimal_separator(language)
    if separator != "." and "." in compact and separator in compact:
        return None
    compact = compact.replace(separator, ".")
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", compact):
        return None
    try:
        value = Decimal(compact)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def amount_for_display(text: str, language: str) -> str:
    """Keypad text as the language writes it ("12.5" -> "12,5" in ru)."""
    return text.replace(".", decimal_separator(language))


# ---------------------------------------------------------------- points and programme names


def format_points(language: str, program: Program | None, count: int) -> str:
    """ "5 баллов", "1 star", "2 πόντοι": the number with the programme's unit in the right
    plural form (the programme's [units], else the catalog's unit.points / unit.stars)."""
    number = format_number(count, language)
    word = program.unit_word(language, count) if program is not None else None
    if word is not None:
        return f"{number} {word}"
    unit = program.unit_name if program is not None else "points"
    key = {"stars": N_("unit.stars")}.get(unit, N_("unit.points"))
    return translate(language, key, count=count).replace(str(count), number, 1)


def format_target_units(language: str, program: Program, target: GiveTarget, units: int) -> str:
    """Partner units ("3 мили") or a donation as money ("3,00 $")."""
    if target.unit_is_currency:
        return format_money(Decimal(units), target.unit_name, language)
    word = target.unit_forms.word(language, units)
    return f"{format_number(units, language)} {word or target.unit_name}"


def give_target_label(language: str, program: Program, target: GiveTarget) -> str:
    """ "Sky Miles (100 баллов = 1 миля)"."""
    return translate(
        language,
        "give.rate",
        name=target.display_name(language),
        points=format_points(language, program, target.points_per_unit),
        unit=format_target_units(language, program, target, 1),
    )


def give_summary(language: str, program: Program, receipt: Receipt) -> str:
    """The receipt line of a transfer or donation, from the receipt's target and points."""
    target = program.give_target(receipt.reward_id or "")
    return translate(
        language,
        "give.line",
        name=target.display_name(language),
        points=format_points(language, program, receipt.redeemed_points),
        converted=format_target_units(
            language, program, target, receipt.redeemed_points // target.points_per_unit
        ),
    )


def tier_name(language: str, program: Program, view: MemberView) -> str:
    return program.tier_name(view.tier_id, language, view.tier_name)


def next_reward_text(language: str, program: Program, view: MemberView) -> str:
    """ "1 200 баллов до «Подарочная карта на 25 $»", or "" when nothing is next."""
    if not view.next_reward_name or view.next_reward_remaining is None:
        return ""
    name = view.next_reward_name
    for reward in program.catalog:
        if reward.name == name:
            name = reward.display_name(language)
            break
    else:
        pam = program.points_as_money
        if pam is not None and name == f"{pam.block_value} off":
            name = translate(
                language,
                "redeem.money_off",
                value=format_money(pam.block_value, program.currency, language),
            )
    return translate(
        language,
        "member.next_reward",
        points=format_points(language, program, view.next_reward_remaining),
        reward=name,
    )


def next_tier_text(language: str, program: Program, view: MemberView) -> str:
    """What is still needed for the next level, in the programme's basis: money for spend,
    points, or visits — or the top-level text."""
    from pos_client.rules import TierBasis

    if not view.next_tier_name or view.next_tier_remaining is None:
        return translate(language, "member.top_tier")
    tier = program.tier_by_name(view.next_tier_name)
    name = tier.display_name(language) if tier is not None else view.next_tier_name
    remaining = Decimal(view.next_tier_remaining)
    basis = program.tiers.basis
    if basis is TierBasis.SPEND:
        amount = format_money(remaining, program.currency, language)
    elif basis is TierBasis.VISITS:
        amount = translate(language, "unit.visits", count=int(remaining))
    elif basis is TierBasis.SEGMENTS:
        amount = translate(language, "unit.segments", count=int(remaining))
    elif basis is TierBasis.UNITS and program.earn.by_unit is not None:
        word = program.earn.by_unit.word(language, remaining)
        amount = f"{format_number(remaining.normalize(), language)} {word}"
    else:
        amount = format_points(language, program, int(remaining))
    return translate(language, "member.next_tier", remaining=amount, tier=name)


# ---------------------------------------------------------------- errors and explanations

ERROR_KEYS: dict[str, str] = {
    # identify
    "invalid": N_("error.invalid"),
    "scan_garbage": N_("error.scan_garbage"),
    "too_long": N_("error.too_long"),
    "foreign_characters": N_("error.foreign_characters"),
    "phone_empty": N_("error.phone_empty"),
    "phone_invalid": N_("error.phone_invalid"),
    "not_loyalty_code": N_("error.not_loyalty_code"),
    "check_digit": N_("error.check_digit"),
    "product_code": N_("error.product_code"),
    "card_reader": N_("error.card_reader"),
    "card_refused": N_("error.card_refused"),
    "card_replayed": N_("error.card_replayed"),
    "card_blocked": N_("error.card_blocked"),
    "pin_wrong": N_("error.pin_wrong"),
    "pin_locked": N_("error.pin_locked"),
    "pin_not_set": N_("error.pin_not_set"),
    "pin_offline": N_("error.pin_offline"),
    "pin_invalid": N_("error.pin_invalid"),
    "secure_card_offline": N_("error.secure_card_offline"),
    # checkout and rules
    "member_not_found": N_("error.unknown"),
    "passes_off": N_("error.passes_off"),
    "passes_offline": N_("error.passes_offline"),
    "already_member": N_("error.already_member"),
    "uid_cannot_spend": N_("error.uid_cannot_spend"),
    "phone_cannot_spend": N_("error.phone_cannot_spend"),
    "scan_card_to_spend": N_("error.scan_card_to_spend"),
    "secure_card_to_spend": N_("error.secure_card_to_spend"),
    "identification_cannot_spend": N_("error.identification_cannot_spend"),
    "choose_reward": N_("error.choose_reward"),
    "offline_cap": N_("error.offline_cap"),
    "amount_zero": N_("error.amount_zero"),
    "amount_invalid": N_("error.amount_invalid"),
    "amount_over_limit": N_("error.amount_over_limit"),
    "units_over_limit": N_("error.units_over_limit"),
    "units_not_whole": N_("error.units_not_whole"),
    "units_underpriced": N_("error.units_underpriced"),
    "units_not_earned": N_("error.units_not_earned"),
    "units_too_many_lines": N_("error.units_too_many_lines"),
    "not_combinable": N_("error.not_combinable"),
    "consent_required": N_("error.consent_required"),
    "birthday_required": N_("error.birthday_required"),
    "guardian_required": N_("error.guardian_required"),
    "too_young": N_("error.too_young"),
    "invitation_required": N_("error.invitation_required"),
    "unknown_inviter": N_("error.unknown_inviter"),
    "invitations_used_up": N_("error.invitations_used_up"),
    "name_required": N_("error.name_required"),
    "name_invalid": N_("error.name_invalid"),
    "text_invalid": N_("error.text_invalid"),
    "unknown_reward": N_("error.unknown_reward"),
    "unknown_target": N_("error.unknown_target"),
    "birthday_unavailable": N_("error.birthday_unavailable"),
    "tier_required": N_("error.tier_required"),
    "option_unavailable": N_("error.option_unavailable"),
    "not_enough_for_block": N_("error.not_enough_for_block"),
    "choose_blocks": N_("error.choose_blocks"),
    "not_enough": N_("error.not_enough"),
    "max_blocks": N_("error.max_blocks"),
    "per_sale_cap": N_("error.per_sale_cap"),
    "choose_points": N_("error.choose_points"),
    "min_points": N_("error.min_points"),
    "step": N_("error.step"),
    "action_done": N_("error.action_done"),
    "partner_account_required": N_("error.partner_account_required"),
    "partner_account_invalid": N_("error.partner_account_invalid"),
    # outbox
    "storage": N_("error.storage"),
    "storage_full": N_("error.storage_full"),
}
POINT_PARAMS = ("points", "balance")


def _country(region: str, language: str) -> str:
    from babel import Locale

    try:
        return str(Locale.parse(locale_of(language)).territories.get(region.upper(), region))
    except (ValueError, LookupError):
        return region


def error_text(
    language: str, code: str, params: Mapping[str, Any], program: Program | None = None
) -> str:
    """A coded error as a sentence in `language`: ids become display names, point amounts
    get the programme's unit in the right plural form."""
    key = ERROR_KEYS.get(code, N_("error.generic"))
    values: dict[str, object] = {}
    for name, value in params.items():
        if name in POINT_PARAMS and isinstance(value, int):
            values[name] = format_points(language, program, value)
        elif name == "count" and isinstance(value, int):
            values[name] = value
        elif name == "amount" and isinstance(value, Decimal) and program is not None:
            values[name] = format_money(value, program.currency, language)
        elif name == "most" and program is not None and program.earn.by_unit is not None:
            most = Decimal(str(value))
            values["most"] = format_number(most.normalize(), language)
            values["units"] = program.earn.by_unit.word(language, most)
        elif name == "region":
            values["country"] = _country(str(value), language)
        elif name == "reward_id" and program is not None:
            values["reward"] = program.reward_name(str(value), language)
        elif name == "tier_id" and program is not None:
            values["tier"] = program.tier_name(str(value), language)
        elif name == "target_id" and program is not None:
            values["target"] = program.target_name(str(value), language)
        elif name == "action_id" and program is not None:
            values["action"] = program.action_name(str(value), language)
        else:
            values[name] = value
    try:
        return translate(language, key, **values)
    except (KeyError, IndexError):  # a parameter the sentence needs is missing
        return translate(language, "error.generic")


# How the member on screen was identified (the member screen says it: staff see at once
# whether a secure card proved it, or a number anyone could type).
IDENTIFIED_BY_KEYS: dict[str, str] = {
    "secure_card": N_("member.identified.secure_card"),
    "card_number": N_("member.identified.card_number"),
    "member_number": N_("member.identified.member_number"),
    "phone": N_("member.identified.phone"),
    "phone_pin": N_("member.identified.phone_pin"),
    "card_uid": N_("member.identified.card_uid"),
}


def describe_error(language: str, error: BaseException, program: Program | None = None) -> str:
    """Any core error (CheckoutError, IdentifyError, OutboxError, RulesError…) as a sentence
    for the screen. Log `str(error)` (the English detail) separately."""
    code = getattr(error, "code", None)
    params = getattr(error, "params", None) or {}
    if not isinstance(code, str):
        return translate(language, "error.generic")
    return error_text(language, code, params, program)


DEAD_KEYS: dict[str, str] = {
    "unknown_member": N_("dead.unknown_member"),
    "insufficient_points": N_("dead.insufficient_points"),
    "member_exists": N_("dead.member_exists"),
    "corrupt_entry": N_("dead.corrupt_entry"),
    "server_error": N_("dead.server_error"),
    "conflict": N_("dead.conflict"),
    "redemption_refused": N_("dead.refused"),
    "action_refused": N_("dead.refused"),
    "give_refused": N_("dead.refused"),
    "receive_refused": N_("dead.refused"),
    "offer_refused": N_("dead.refused"),
    "birthday_required": N_("dead.refused"),
    "guardian_required": N_("dead.refused"),
    "too_young": N_("dead.refused"),
    "invitation_required": N_("dead.refused"),
    "unknown_inviter": N_("dead.refused"),
    "invitations_used_up": N_("dead.refused"),
}


def dead_reason(language: str, code: str | None) -> str:
    """Why the server refused a queued sale (OperationDead.code, OutboxEntry.error_code)."""
    return translate(language, DEAD_KEYS.get(code or "", N_("dead.other")))


def dead_message(language: str, code: str | None) -> str:
    """The message bar text when a queued sale is refused for good."""
    return translate(language, "error.refused", detail=dead_reason(language, code))


def breakdown_lines(
    language: str, breakdown: EarnBreakdown, program: Program, currency: str | None = None
) -> list[str]:
    """The earning explanation (EarnBreakdown.explain() is the English one for logs) as short
    sentences: "Косметика на 25,00 $: 50 баллов (2 за 1,00 $)"."""
    from pos_client.rules import ONE, EarnMode, floor_points

    money = currency or program.currency
    unit = format_money(program.earn.unit, money, language)
    rows: list[str] = []
    for line in breakdown.lines:
        values: dict[str, object] = {
            "amount": format_money(line.amount, money, language),
            "points": format_points(language, program, floor_points(line.points)),
            "rate": format_number(line.rate.normalize(), language),
            "unit": unit,
        }
        basis = line.basis
        by_unit = program.earn.by_unit
        if basis == "units" and by_unit is not None and line.units is not None:
            values["units"] = (
                f"{format_number(line.units.normalize(), language)}"
                f" {by_unit.word(language, line.units)}"
            )
            values["unit"] = by_unit.word(language, 1)
            values["rate"] = format_number((line.rate / by_unit.per).normalize(), language)
            if line.category:
                name = program.category_name(line.category, language)
                rows.append(
                    translate(language, "breakdown.units_category", category=name, **values)
                )
            else:
                rows.append(translate(language, "breakdown.units", **values))
        elif program.earn.mode is EarnMode.PER_PURCHASE and basis in ("base", "tier"):
            rows.append(translate(language, "breakdown.per_purchase", **values))
        elif basis == "category":
            name = program.category_name(line.category, language)
            rows.append(translate(language, "breakdown.category", category=name, **values))
        elif basis == "featured":
            rows.append(translate(language, "breakdown.featured", **values))
        elif basis == "tier":
            tier = program.tier_name(breakdown.tier_id, language)
            rows.append(translate(language, "breakdown.tier_floor", tier=tier, **values))
        else:
            rows.append(translate(language, "breakdown.base", **values))
        if line.multiplier != ONE:
            rows.append(
                translate(
                    language,
                    "breakdown.multiplier",
                    tier=program.tier_name(breakdown.tier_id, language),
                    multiplier=format_number(line.multiplier.normalize(), language),
                )
            )
    if breakdown.birthday_bonus:
        rows.append(
            translate(
                language,
                "breakdown.birthday",
                points=format_points(language, program, breakdown.birthday_bonus),
            )
        )
    if breakdown.capped:
        rows.append(
            translate(
                language,
                "breakdown.capped",
                points=format_points(language, program, breakdown.points),
            )
        )
    return rows


# ---------------------------------------------------------------- staff and status texts

READER_STATE_KEYS = {
    "error": N_("readers.error"),
    "disconnected": N_("readers.disconnected"),
}


def readers_state(language: str, states: Mapping[str, str]) -> str:
    """The {state} of status.readers: "готовы" when every reader is ok, else the readers
    that are not, each with its state in words."""
    if not states:
        return translate(language, "readers.none")
    if all(state in ("ok", "connected") for state in states.values()):
        return translate(language, "readers.ready")
    return ", ".join(
        f"{name}: {translate(language, READER_STATE_KEYS.get(state, N_('readers.other')))}"
        for name, state in states.items()
        if state not in ("ok", "connected")
    )


class QueueCounts(Protocol):
    """What outbox_report reads of the queue: outbox.OutboxStats, or the staff screen's
    adapter over queue_service.QueueReport."""

    @property
    def unsent(self) -> int: ...

    @property
    def dead(self) -> int: ...

    @property
    def acked(self) -> int: ...

    def oldest_pending_age(self, now: datetime) -> float | None: ...


class FailedSale(Protocol):
    """A dead entry as the report names it (outbox.OutboxEntry has these and more)."""

    @property
    def key(self) -> str: ...

    @property
    def error_code(self) -> str | None: ...


def outbox_report(
    language: str,
    stats: QueueCounts,
    now: datetime,
    dead: Sequence[FailedSale] = (),
) -> str:
    """The staff screen's outbox lines: counts, the oldest unsent sale's age, failed sales."""
    rows = [
        translate(
            language,
            "report.queue",
            pending=format_number(stats.unsent, language),
            dead=format_number(stats.dead, language),
            acked=format_number(stats.acked, language),
        )
    ]
    age = stats.oldest_pending_age(now)
    if age is not None:
        rows.append(translate(language, "report.oldest", age=format_age(age, language)))
    rows += [
        translate(
            language,
            "report.dead",
            key=entry.key[-8:],
            reason=dead_reason(language, entry.error_code),
        )
        for entry in dead
    ]
    return "\n".join(rows)


def mode_name(language: str, mode: str) -> str:
    return translate(language, N_("mode.kiosk") if mode == "kiosk" else N_("mode.cashier"))


# ---------------------------------------------------------------- English left-over detector

# Words that stay as they are in every language: abbreviations and brand names.
ALLOWED_WORDS = frozenset(
    {"PIN", "EAN", "NFC", "QR", "UID", "SMS", "USB"}
    | {"EN"}  # the language button
    | {"USD", "EUR", "GBP", "UAH", "RUB"}
    | {"Apple", "Google", "Wallet"}  # the phones' own product names, never translated
)
_ASCII_WORD = re.compile(r"(?<![\w])[A-Za-z][A-Za-z'’]*(?![\w])")
_MARKUP = re.compile(r"\[/?[a-z]+(=[^\]]*)?\]")


def english_words(text: str, language: str, allowed: Iterable[str] = ()) -> list[str]:
    """Words in a visible string that look English in a non-English screen: ASCII letter
    words not in ALLOWED_WORDS or `allowed` (e.g. partner brand names). Kivy markup tags
    ("[color=…]") are ignored. Empty for language "en"."""
    if language == "en":
        return []
    allow = set(ALLOWED_WORDS)
    for phrase in allowed:
        allow.update(word.group(0) for word in _ASCII_WORD.finditer(phrase))
    visible = _MARKUP.sub(" ", text)
    # Greek and Cyrillic letters never match [A-Za-z]; mixed words ("PIN-код") match only
    # their ASCII part, which the allow-list decides.
    words = []
    for match in _ASCII_WORD.finditer(visible):
        word = match.group(0).strip("'’")
        known = not word or word in allow or word.upper() in allow
        if not known and not _masked_or_key(visible, match):
            words.append(word)
    return words


_HEX_CHUNK = re.compile(r"[0-9A-F]{2,}")
# A sale's key as the receipt shows it (a UUID): "01a21468-bbca-73c1-…" has letter-only parts.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _masked_or_key(text: str, match: re.Match[str]) -> bool:
    """Not words of any language: a masked surname's initial ("Anna K."), a chunk of a key
    or card number in hex ("04A1 BEEF 9C")."""
    word, end = match.group(0), match.end()
    if len(word) == 1 and word.isupper() and text[end : end + 1] == ".":
        return True
    start = match.start()
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    chunk = text[start:end].strip(",;:()")
    return bool(_HEX_CHUNK.fullmatch(chunk) or _UUID.fullmatch(chunk))


def category_label(language: str, program: Program, category_id: str) -> str:
    """An earn category's button text: its display name, "No category" for ""."""
    if not category_id:
        return translate(language, "earn.no_category")
    return program.category_name(category_id, language)
