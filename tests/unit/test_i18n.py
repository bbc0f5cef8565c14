"""Catalogs complete and current, plural forms, programme names, coded errors, the keypad's
decimal separator and the English left-over detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from pos_client import rules
from pos_client.checkout import CheckoutError
from pos_client.configfile import ConfigError, Section
from pos_client.domain import Purchase, PurchaseLine
from pos_client.identify import IdentifyError, identify
from pos_client.outbox import OutboxStats, OutboxUnavailable
from pos_client.plurals import PLURAL_FORMS, plural_count
from pos_client.program import load_program, parse_program
from ui import babel_extract, i18n

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
LANGUAGES = list(i18n.LOCALES)
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]


def read(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as handle:
        return read_po(handle)


# ---------------------------------------------------------------- catalogs


def test_every_key_used_in_py_and_kv_is_translated_in_every_language() -> None:
    used = babel_extract.keys_used(ROOT / "ui")
    assert len(used) > 50
    for language in LANGUAGES:
        catalog = i18n._from_po(language, i18n.po_path(language))
        missing = sorted(set(used) - catalog.keys())
        assert not missing, f"{language}: untranslated {missing} (run `make i18n`)"
        for key in used:
            plural = key in i18n.PLURALS
            assert (key in catalog.plural) is plural, f"{language}: {key} plural is {plural}"


def test_catalogs_are_current_with_the_template_and_the_template_with_the_code() -> None:
    template = read(ROOT / "ui/locale/pos.pot")
    template_ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in template if m.id}
    used = babel_extract.keys_used(ROOT / "ui")
    expected = {(k, k) if k in i18n.PLURALS else k for k in used}
    assert template_ids == expected, "ui/locale/pos.pot is stale: run `make i18n`"
    for language in LANGUAGES:
        po = read(i18n.po_path(language))
        ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in po if m.id}
        assert ids == template_ids, f"{language}/pos.po is stale: run `make i18n`"
        assert not [m.id for m in po if m.id and m.fuzzy], f"{language}: fuzzy entries"
        assert not po.obsolete


def test_plural_headers_match_the_core_rules() -> None:
    for language in LANGUAGES:
        po = read(i18n.po_path(language))
        assert po.plural_forms.replace(" ", "") == PLURAL_FORMS[language].replace(" ", "")
        assert po.num_plurals == plural_count(language)
    assert (plural_count("ru"), plural_count("uk"), plural_count("el"), plural_count("en")) == (
        3,
        3,
        2,
        2,
    )


def test_mo_and_po_give_the_same_catalog(tmp_path: Path) -> None:
    from babel.messages.mofile import write_mo

    for language in LANGUAGES:
        po = read(i18n.po_path(language))
        mo_path = tmp_path / f"{language}.mo"
        with mo_path.open("wb") as handle:
            write_mo(handle, po)
        from_po = i18n._from_po(language, i18n.po_path(language))
        from_mo = i18n._from_mo(language, mo_path)
        assert from_po.singular == from_mo.singular
        assert from_po.plural == from_mo.plural


@pytest.mark.parametrize(
    ("language", "left", "expected"),
    [
        ("en", 1, "Wrong PIN: 1 try left"),
        ("en", 2, "Wrong PIN: 2 tries left"),
        ("ru", 1, "Неверный PIN-код: осталась 1 попытка"),
        ("ru", 2, "Неверный PIN-код: осталось 2 попытки"),
        ("ru", 5, "Неверный PIN-код: осталось 5 попыток"),
        ("ru", 21, "Неверный PIN-код: осталась 21 попытка"),
        ("uk", 1, "Неправильний PIN-код: залишилася 1 спроба"),
        ("uk", 3, "Неправильний PIN-код: залишилося 3 спроби"),
        ("el", 1, "Λάθος PIN: απομένει 1 προσπάθεια"),
        ("el", 2, "Λάθος PIN: απομένουν 2 προσπάθειες"),
    ],
)
def test_plural_messages(language: str, left: int, expected: str) -> None:
    assert i18n.translate(language, "admin.wrong_pin", left=left) == expected


def test_wording_defects_are_gone() -> None:
    texts = {
        lang: "\n".join(i18n.load_catalog(lang).singular.values())
        + "\n".join("\n".join(forms) for forms in i18n.load_catalog(lang).plural.values())
        for lang in LANGUAGES
    }
    assert "Повторить ошибки" not in texts["ru"] and "Повторити помилки" not in texts["uk"]
    assert "ещё не участник" not in texts["ru"]
    assert "Невірний" not in texts["uk"]
    assert "'" not in texts["uk"]  # the Ukrainian apostrophe is U+2019
    assert i18n.translate("uk", "enroll.first_name") == "Ім’я"
    assert not i18n.translate("el", "admin.locked", seconds=5).endswith(" δ")
    assert i18n.translate("el", "admin.locked", seconds=5).endswith("5 δευτ.")
    # English quotes with “ ”, never «» (Russian and Ukrainian do; Greek uses «» too).
    assert "«" not in texts["en"] and "»" not in texts["en"]
    # The receipt says what is done: past or perfective, never a future tense.
    done = {lang: i18n.translate(lang, "receipt.balance_after", points="7") for lang in LANGUAGES}
    assert done == {
        "en": "Balance after: 7",
        "ru": "Осталось на счёте: 7",
        "uk": "Залишилося на рахунку: 7",
        "el": "Νέο υπόλοιπο: 7",
    }
    # The terminal never asks for an e-mail address: the terms do not promise e-mail.
    for lang, mail in (("en", "mail"), ("ru", "почт"), ("uk", "пошт"), ("el", "ταχυδρομ")):
        terms = i18n.translate(lang, "enroll.terms_text").lower()
        assert mail not in terms and "sms" in terms, lang


# ---------------------------------------------------------------- points, names


@pytest.mark.parametrize(
    ("language", "count", "expected"),
    [
        ("ru", 1, "1 балл"),
        ("ru", 2, "2 балла"),
        ("ru", 5, "5 баллов"),
        ("uk", 2, "2 бали"),
        ("el", 1, "1 πόντος"),
        ("el", 1500, "1.500 πόντοι"),
        ("en", 1, "1 point"),
        ("en", 5000, "5,000 points"),
    ],
)
def test_points_with_the_programme_unit(language: str, count: int, expected: str) -> None:
    program = load_program("category_tiers", CONFIG)
    assert i18n.format_points(language, program, count) == expected


def test_stars_and_fallback_units() -> None:
    stars = load_program("stars", CONFIG)
    assert i18n.format_points("ru", stars, 5) == "5 звёзд"
    assert i18n.format_points("el", stars, 1) == "1 αστέρι"
    bare = rules.Program(**{**stars.__dict__, "unit_forms": rules.UnitForms()})
    assert i18n.format_points("uk", bare, 2) == "2 зірки"  # the catalog's unit.stars


@pytest.mark.parametrize(
    "preset", ["category_tiers", "stars", "wellness_blocks", "airline_miles", "hotel_nights"]
)
def test_presets_name_everything_in_every_language(preset: str) -> None:
    program = load_program(preset, CONFIG)
    named = [
        *program.tiers.tiers,
        *program.catalog,
        *program.give_targets,
        *program.categories,
        *program.actions.values(),
    ]
    if program.birthday_reward is not None:
        named.append(program.birthday_reward)
    for language in TRANSLATED:
        for item in named:
            assert item.display_name(language) != item.name or item.name == "Sky Miles", item
        for category in program.earn.category_rates:
            assert program.category_name(category, language) != category
        assert program.unit_word(language, 5)
        for target in program.give_targets:
            assert target.unit_is_currency or target.unit_forms.word(language, 2)
        by_unit = program.earn.by_unit
        if by_unit is not None:
            for category in by_unit.category_rates:
                assert program.category_name(category, language) != category
            assert by_unit.word(language, 5) != by_unit.unit
        if program.every_nth is not None:
            assert program.every_nth.display_name(language) != program.every_nth.name
    assert program.tiers.tiers[0].display_name("xx") == program.tiers.tiers[0].name


def _program(extra: str) -> rules.Program:
    import tomllib

    base = """
id = "p"
name = "P"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
"""
    return parse_program(Section(tomllib.loads(base + extra), "test.toml"))


def test_loader_validates_names_units_and_categories() -> None:
    with pytest.raises(ConfigError, match="earn category 'wine' needs a display name"):
        _program("[earn.category_rates]\nwine = 2\n")
    with pytest.raises(ConfigError, match="unknown language 'ua'"):
        _program('[catalog_x]\n[[catalog]]\nid = "a"\nname = "A"\nnames = { ua = "Б" }\n')
    with pytest.raises(ConfigError, match="expected 3 non-empty plural forms"):
        _program('[units]\nru = ["балл", "баллов"]\n')
    program = _program('[categories.wine]\nname = "Wine"\nnames = { el = "Κρασί" }\n')
    assert program.category_name("wine", "el") == "Κρασί"
    assert program.category_name("wine", "ru") == "Wine"


# ---------------------------------------------------------------- errors, breakdown, reports


def test_core_errors_become_sentences_without_english_details() -> None:
    program = load_program("category_tiers", CONFIG)
    with pytest.raises(IdentifyError) as caught:
        identify("555", "US", "phone")
    text = i18n.describe_error("ru", caught.value, program)
    assert "Соединенные Штаты" in text and not i18n.english_words(text, "ru")
    assert "region US" in str(caught.value)  # the English detail stays for logs
    tier = program.tiers.tiers[0]
    with pytest.raises(rules.RulesError) as refused:
        rules.plan_reward(program, "gift-card-25", 120, tier)
    error = CheckoutError(str(refused.value), refused.value.code, **refused.value.params)
    assert (
        i18n.describe_error("ru", error, program) == "Нужно: 5\xa0000 баллов; на счёте: 120 баллов"
    )
    assert i18n.describe_error("el", error, program) == "Κόστος: 5.000 πόντοι, υπόλοιπο: 120 πόντοι"
    full = OutboxUnavailable("outbox x: the disk is full")
    assert full.code == "storage_full"
    assert "заполнена" in i18n.describe_error("ru", full)
    assert i18n.describe_error("uk", ValueError("boom")) == "Тут це неможливо"
    assert i18n.error_text("el", "max_blocks", {"count": 1}) == "Έως 1 πακέτο σε αυτή την αγορά"


def test_every_error_code_has_a_translated_sentence() -> None:
    for language in TRANSLATED:
        for key in {*i18n.ERROR_KEYS.values(), *i18n.DEAD_KEYS.values()}:
            assert i18n._lookup(language, key, 1), (language, key)


def test_breakdown_is_translated() -> None:
    program = load_program("category_tiers", CONFIG)
    platinum = program.tiers.by_id("platinum")
    purchase = Purchase((PurchaseLine(Decimal(25), "cosmetics"), PurchaseLine(Decimal(10), "")))
    breakdown = rules.earn_points(program, purchase, platinum)
    assert "tier:platinum" in breakdown.explain()[0]  # English for logs
    lines = i18n.breakdown_lines("ru", breakdown, program)
    assert lines[0] == "25,00\xa0$ на уровне «Платина»: 100 баллов (4 за 1,00\xa0$)"
    for language in TRANSLATED:
        for line in i18n.breakdown_lines(language, breakdown, program):
            assert not i18n.english_words(line, language), line
    member = program.tiers.by_id("member")
    lines = i18n.breakdown_lines("el", rules.earn_points(program, purchase, member), program)
    assert lines[0].startswith("Καλλυντικά 25,00")


def test_staff_report_and_readers() -> None:
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    stats = OutboxStats(2, 1, 40, 1, now - timedelta(minutes=5))
    report = i18n.outbox_report("ru", stats, now)
    assert report.splitlines() == [
        "Не отправлено: 3 · Ошибки: 1 · Доставлено: 40",
        "Самая старая в очереди: 5 минут назад",
    ]
    assert i18n.readers_state("uk", {"wedge": "ok", "pcsc": "ok"}) == "готові"
    assert i18n.readers_state("el", {"pcsc": "error"}) == "pcsc: σφάλμα"
    assert i18n.dead_reason("ru", "insufficient_points") == "недостаточно на счёте"


# ---------------------------------------------------------------- keypad


def test_decimal_separator_and_amount_parsing() -> None:
    assert i18n.decimal_separator("en") == "."
    assert {i18n.decimal_separator(lang) for lang in ("ru", "uk", "el")} == {","}
    assert i18n.parse_amount("12,50", "ru") == Decimal("12.50")
    assert i18n.parse_amount("12.5", "el") == Decimal("12.5")
    assert i18n.parse_amount("12,50", "en") is None
    assert i18n.parse_amount("1.2,5", "ru") is None
    assert i18n.parse_amount(",", "uk") is None
    assert i18n.parse_amount("", "en") is None
    assert i18n.amount_for_display("3.5", "ru") == "3,5"


# ---------------------------------------------------------------- English left-overs


def test_english_left_over_detector() -> None:
    assert i18n.english_words("1 ok", "ru") == ["ok"]
    assert i18n.english_words("Баланс: 120 points", "ru") == ["points"]
    assert i18n.english_words("PIN-код персонала", "ru") == []
    assert i18n.english_words("[color=8a8f98]Δωροκάρτα 25 $[/color] QR", "el") == []
    assert i18n.english_words("Sky Miles (100 баллов = 1 миля)", "ru") == ["Sky", "Miles"]
    # A masked surname's initial and hex key chunks are not English words.
    assert i18n.english_words("Anna K.   ••••89", "ru", ["Anna Kowalski"]) == []
    assert i18n.english_words("Ключ: 04A1 BEEF 9C0D", "ru") == []
    # A receipt's sale key, whose parts may be letters only (the layout walk failed on it).
    assert i18n.english_words("01a21468-bbca-73c1-abd5-7b44b2d67ec7", "el") == []
    assert i18n.english_words("bbca-73c1", "el") == ["bbca"]
    assert i18n.english_words("K ok", "ru") == ["K", "ok"]
    # A receipt's key (UUIDv7) whose random hex happens to spell letters only ("fafc").
    assert i18n.english_words("01a2146d-fafc-72a9-a704-0873b81678d2", "uk") == []
    assert i18n.english_words("cafe-face", "uk") == ["cafe", "face"]
    assert i18n.english_words("Beef", "ru") == ["Beef"]
    assert i18n.english_words("Sky Miles", "ru", allowed=["Sky Miles"]) == []
    assert i18n.english_words("Welcome", "en") == []
    assert i18n.english_words("OK", "uk") == ["OK"]


def test_no_catalog_text_is_english_outside_en() -> None:
    for language in TRANSLATED:
        catalog = i18n.load_catalog(language)
        for key, text in catalog.singular.items():
            assert not i18n.english_words(text.replace("{", " {"), language.strip()) or all(
                w
                in {
                    "detail",
                    "points",
                    "reward",
                    "tier",
                    "remaining",
                    "amount",
                    "rate",
                    "unit",
                    "category",
                    "multiplier",
                    "value",
                    "blocks",
                    "seconds",
                    "count",
                    "name",
                    "converted",
                    "key",
                    "units",
                    "most",
                    "day",
                    "reason",
                    "pending",
                    "dead",
                    "acked",
                    "age",
                    "state",
                    "target",
                    "action",
                    "balance",
                    "country",
                    "left",
                }
                for w in i18n.english_words(text, language)
            ), (language, key, text)
