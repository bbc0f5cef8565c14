"""The console's four languages, as the terminal's: English is the key, and each other
language a table of its translations (`catalog.py`); a string not translated shows in
English (a test keeps every catalog complete)."""

from __future__ import annotations

from collections.abc import Callable

from loyalty_server.console.catalog import TRANSLATIONS

LANGUAGES = ("en", "ru", "uk", "el")

# Notices after a change, by the code in the redirect's query (never text from the URL).
NOTICES = {
    "adjusted": "Points adjusted.",
    "blocked": "Cards blocked.",
    "no-card": "This member has no card to block.",
    "linked": "Card linked.",
    "already": "This form was sent already: nothing changed.",
    "scheduled": "The version is scheduled.",
    "cancelled": "The version is cancelled.",
}


# Words shown translated that no template spells out: they reach `_()` as values (an
# error, a role, a kind, a status, an audit action). The dashboard's labels and the
# NOTICES are read from their own places by the catalog test. Text from other modules
# (programme checks and words, ledger refusals, terminal-name problems) stays English.
DYNAMIC = (
    # chart titles (routes.dashboard)
    "Points earned and spent",
    "The activation time is in the past.",
    "Too many searches. Wait a minute.",
    "A terminal in service has this name already.",
    "The activation time is more than a year ahead.",
    "the card number's check digit is wrong (mistyped?)",
    # refusals and errors of routes.py, shown by the sign-in, members, programme and
    # error pages (`_(error)`, `_(message)`)
    "The sign-in form expired. Please try again.",
    "Too many sign-in attempts. Wait a minute.",
    "Wrong name or password.",
    "This form is out of date or was not sent by the console.",
    "An auditor reads the console and changes nothing.",
    "Not a phone number: give it whole, with its country code (+…).",
    "No such member.",
    "A reason of 3 to 200 characters is required.",
    "A reason has no control characters.",
    "An adjustment moves at least one point.",
    "This form is out of date.",
    "This card is linked to a member already, or blocked.",
    "No such terminal.",
    "No such decision.",
    "No such flag.",
    "This flag was decided already.",
    "Nothing was earned that day to reverse.",
    "The activation time is a date and a time.",
    "Choose a programme file (TOML).",
    "Dates as YYYY-MM-DD.",
    "A period of at most 400 days, its end after its start.",
    "Some of the form's values are not valid.",
    "Refused.",
    "Not Found",  # Starlette's, for an unknown page under /console/
    "Method Not Allowed",
    # data.card_problem
    "a card is linked by its UID or its number",
    "a card UID is 8 to 20 hex digits",
    "a card number is 4 to 64 letters or digits",
    # roles (accounts.ROLES)
    "manager",
    "auditor",
    # transaction kinds the ledger writes (member history)
    "earn",
    "redeem",
    "birthday",
    "offer",
    "action",
    "hold",
    "release",
    "invite",
    "transfer",
    "transfer_in",
    "donate",
    "expire",
    "adjust",
    "award",
    # card kinds (data.member_cards)
    "card_uid",
    "card_number",
    "member_number",
    "secure_card_uid",
    "blocked_card_uid",
    "blocked_card_number",
    # audit actions beside the changes
    "search",
    # the units of a duration (routes._ago): days, hours, minutes, seconds
    "d",
    "h",
    "min",
    "s",
    # terminal modes and reader states (heartbeats)
    "cashier",
    "kiosk",
    "connected",
    "disconnected",
    "error",
    # flag decisions
    "approved",
    "reversed",
    # programme version statuses
    "active",
    "scheduled",
    "past",
    # audit actions
    "sign-in",
    "locked",
    "block-cards",
    "link-card",
    "add-terminal",
    "rename-terminal",
    "revoke-terminal",
    "flag-approve",
    "flag-reverse",
    "export",
    "program-upload",
    "program-cancel",
)


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The language chosen in the console (cookie), else the browser's first we speak."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "")[:200].split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


# Keys that are codes, not English: how English shows them.
ENGLISH = {
    "card_number": "card number",
    "card_uid": "card UID",
    "member_number": "member number",
    "secure_card_uid": "secure card UID",
    "blocked_card_uid": "blocked card UID",
    "blocked_card_number": "blocked card number",
}


def translator(language: str) -> Callable[[str], str]:
    table = TRANSLATIONS.get(language, ENGLISH)

    def translate(text: str) -> str:
        return table.get(text, text)

    return translate
