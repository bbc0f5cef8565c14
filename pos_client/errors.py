"""Errors that carry a machine-readable code and parameters beside their English detail.

`str(error)` stays the English detail for logs and the CLI; screens turn `code` and `params`
into a sentence in the customer's language (ui.i18n.describe_error). Parameters are plain
values: ids (reward_id, target_id, tier_id), whole numbers of points, counts.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CodedError(Exception):
    default_code: ClassVar[str] = "generic"

    def __init__(self, message: str = "", code: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code
        self.params: dict[str, Any] = params


class LedgerSchemaError(CodedError):
    """The embedded ledger cannot be opened as it is: written by a newer release, not a
    ledger, damaged, or an upgrade step failed (the file is left as it was)."""

    default_code = "ledger_schema"


class CardLinkRefused(CodedError):
    """A secure card that cannot be linked to the member asked: no such member
    (`unknown_member`), or the card is another member's (`card_linked`)."""

    default_code = "card_link_refused"
