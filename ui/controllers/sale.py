"""Recording what happens at the counter: earn, redeem, give, enroll, and the receipt.

Nothing that spends points is recorded on the first tap: the screen asks for a `Proposal`
(what, how many points, the balance after), shows it in a confirmation dialog, and only
Confirm calls the `confirm_*` method that records. Every text is in the current language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pos_client import rules
from pos_client.checkout import AlreadyMember, Checkout, CheckoutError, MemberSession, Receipt
from pos_client.domain import Purchase, PurchaseLine
from pos_client.events import OperationSynced
from pos_client.operations import PARTNER_ACCOUNT_MAX, partner_account_problem
from pos_client.outbox import OutboxError
from pos_client.rules import Program, RulesError
from ui import i18n
from ui.controllers.navigation import Navigator
from ui.controllers.printing import PrintController
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts

# (amount as typed, category id) or (amount, category, units as typed: km, nights)
Lines = list[tuple[str, str] | tuple[str, str, str]]


@dataclass(frozen=True)
class Proposal:
    """What a spending choice would do, for the confirmation dialog: a question and lines
    (points spent, cash to pay or what the target receives, the balance after)."""

    title: str
    lines: tuple[str, ...]


def purchase_of(lines: Lines, language: str = "en") -> Purchase | None:
    """The purchase of the lines typed on the keypad ("12,50" where "," is the decimal
    separator, "12.50" everywhere); None when an amount is not one."""
    items = []
    for typed, category, *more in lines:
        if not typed or typed in (".", i18n.decimal_separator(language)):
            continue
        amount = i18n.parse_amount(typed, language)
        units = None
        if more and more[0] and more[0] not in (".", i18n.decimal_separator(language)):
            units = i18n.parse_amount(more[0], language)
            if units is None:
                return None
        if amount is None:
            return None
        try:
            items.append(PurchaseLine(amount, category, units=units or None))
        except ValueError:
            return None
    return Purchase(tuple(items)) if items else None


class SaleController:
    def __init__(
        self,
        checkout: Checkout,
        program: Program,
        nav: Navigator,
        texts: Texts,
        customer: Customer,
        activity: Activity,
        images: Path,
        confirm_amount_over: Decimal = Decimal("1000.00"),
        printer: PrintController | None = None,
    ) -> None:
        self._checkout = checkout
        self._printer = printer
        self._confirm_amount_over = confirm_amount_over
        self._program = program
        self._nav = nav
        self._texts = texts
        self._customer = customer
        self._activity = activity
        self._images = images
        self._balance_before: int | None = None  # the spendable balance before the last receipt
        self._synced_balance: int | None = None  # the ledger's balance once that sale synced

    # ------------------------------------------------------------ earning

    def use_program(self, program: Program) -> None:
        self._program = program

    def program_categories(self) -> list[str]:
        earn = self._program.earn
        by_unit = earn.by_unit.category_rates if earn.by_unit else {}
        return ["", *sorted({*earn.category_rates, *by_unit})]

    def units_name(self) -> str | None:
        """What a line's units are called ("Miles flown"), or None when the programme does
        not earn by units."""
        by_unit = self._program.earn.by_unit
        if by_unit is None:
            return None
        word = by_unit.word(self._lang, 2)
        return word[:1].upper() + word[1:]

    def units_decimals(self) -> int:
        """Decimals a line's units may carry (0: whole nights or miles)."""
        by_unit = self._program.earn.by_unit
        return by_unit.decimals if by_unit is not None else 0

    def units_text(self, typed: str) -> str:
        """ "3 858 miles flown": typed units as the language writes them."""
        by_unit = self._program.earn.by_unit
        units = i18n.parse_amount(typed, "en") if typed else None
        if by_unit is None or units is None:
            return ""
        return (
            f"{i18n.format_number(units.normalize(), self._lang)} {by_unit.word(self._lang, units)}"
        )

    def preview_lines(self, lines: Lines) -> tuple[str, str]:
        """The points these lines earn, and the rules' breakdown."""
        purchase = purchase_of(lines, self._lang)
        session = self._customer.session
        if purchase is None or session is None:
            return "", ""
        try:
            breakdown = self._checkout.preview(session, purchase)
        except RulesError as exc:  # a line past the programme's most units: said, not shown
            return self._texts.error(exc), ""
        total = self._money(purchase.total)
        free = self._checkout.free_items(session, purchase)
        rows = i18n.breakdown_lines(self._lang, breakdown, self._program)
        if free.count:
            rows.insert(0, self._free_line(free.count, free.value))
        for index, offer in enumerate(self._checkout.sale_offers(session, purchase)):
            rows.insert(index, self._offer_line(offer))
        return (
            f"{total}: " + self._texts.tr("earn.preview", points=self._points(breakdown.points)),
            "\n".join(rows),
        )

    def _offer_line(self, offer: rules.AppliedOffer) -> str:
        """A partner offer's line: its money off, or its bonus points."""
        found = self._program.offer(offer.offer_id)
        name = f"{found.partner}: {found.display_name(self._lang)}" if found else offer.offer_id
        if offer.points:
            points = self._points(offer.points)
            return self._texts.tr("receipt.offer_points", name=name, points=points)
        value = self._money(offer.discount)
        return self._texts.tr("receipt.offer_discount", name=name, value=value)

    def _free_line(self, count: int, value: Decimal) -> str:
        """ "Every 5th night free ×1: −€120.00"."""
        rule = self._program.every_nth
        name = rule.display_name(self._lang) if rule is not None else ""
        return self._texts.tr("receipt.free", name=name, count=count, value=self._money(value))

    def line_problem(self, typed: str) -> str | None:
        """Why this amount cannot be a line (empty, zero, not an amount), or None."""
        amount = purchase_of([(typed, "")], self._lang)
        if amount is None or amount.total <= 0:
            return self._texts.tr("error.amount_zero")
        return None

    def propose_large_earn(self, lines: Lines) -> Proposal | None:
        """A question before recording a purchase above the terminal's limit (a slip on the
        keypad: 700 for 7.00), or None when it needs none."""
        purchase = purchase_of(lines, self._lang)
        session = self._customer.session
        if purchase is None or session is None or purchase.total <= self._confirm_amount_over:
            return None
        tr = self._texts.tr
        points = self._checkout.preview(session, purchase).points
        title = tr("confirm.large_title", amount=self._money(purchase.total))
        body = (
            tr("confirm.large_limit", amount=self._money(self._confirm_amount_over)),
            tr("confirm.earn", points=self._points(points)),
        )
        return Proposal(title, body)

    def confirm_earn(self, lines: Lines) -> None:
        purchase = purchase_of(lines, self._lang)
        if purchase is None or self._customer.session is None:
            self._nav.show_message(self._texts.tr("error.amount_zero"))
            return
        self._record(lambda session: self._checkout.earn(session, purchase))

    # ------------------------------------------------------------ redemption and giving

    @property
    def _lang(self) -> str:
        return self._texts.language

    def _points(self, count: int) -> str:
        return i18n.format_points(self._lang, self._program, count)

    def _money(self, amount: Decimal) -> str:
        return i18n.format_money(amount, self._program.currency, self._lang)

    def _reward_name(self, reward_id: str, default: str | None = None) -> str:
        return self._program.reward_name(reward_id, self._lang, default)

    def _missing(self, count: int) -> str:
        """ "300 more points": what a member still needs for something."""
        word = self._program.unit_word(self._lang, count)
        if word is None:  # the catalog's unit: "300 points" -> "points"
            word = self._points(count).split(" ", 1)[-1]
        number = i18n.format_number(count, self._lang)
        return self._texts.tr("redeem.missing", count=number, unit=word)

    def locked_progress(self) -> tuple[str, float] | None:
        """The nearest reward a higher level opens, as "28 more stars to “Free drink”" and
        how far along the member is; None when no reward waits for a level (or the level is
        not reached by earning points)."""
        session = self._customer.session
        if session is None:
            return None
        locked = rules.locked_reward(self._program, session.spendable, session.view.stats)
        if locked is None:
            return None
        count = locked.remaining
        word = self._program.unit_word(self._lang, count)
        if word is None:
            word = self._points(count).split(" ", 1)[-1]
        text = self._texts.tr(
            "redeem.locked_progress",
            count=i18n.format_number(count, self._lang),
            unit=word,
            reward=self._reward_name(locked.reward.id, locked.reward.name),
        )
        return text, locked.progress

    def _error(self, exc: BaseException) -> str:
        return i18n.describe_error(self._lang, exc, self._program)

    def redemption_options(self) -> list[dict[str, Any]]:
        """The member's rewards as options: `enabled` ones can be chosen; the others say what
        is still missing ("300 more points") in `missing`."""
        session = self._customer.session
        if session is None:
            return []
        spendable = session.spendable
        options: list[dict[str, Any]] = []

        def add(option: dict[str, Any], cost: int) -> None:
            option["enabled"] = cost <= spendable
            option["missing"] = "" if option["enabled"] else self._missing(cost - spendable)
            options.append(option)

        for reward in session.view.rewards:
            name = self._reward_name(reward.reward_id, reward.name)
            add(
                {
                    "kind": "reward",
                    "reward_id": reward.reward_id,
                    "option": None,
                    "label": f"{name} — {self._points(reward.cost)}",
                },
                reward.cost,
            )
            try:
                alternatives = self._program.reward(reward.reward_id).points_plus_cash
            except Exception:  # a reward the cached view knows but the programme no longer has
                alternatives = ()
            for index, (cost, cash) in enumerate(alternatives):
                add(
                    {
                        "kind": "reward",
                        "reward_id": reward.reward_id,
                        "option": index,
                        "label": f"{name} — {self._points(cost)} + {self._money(cash)}",
                    },
                    cost,
                )
        pam = self._program.points_as_money
        if pam is not None:
            blocks = spendable // pam.block_points
            for count in sorted({1, blocks} - {0}) or [1]:
                add(
                    {
                        "kind": "blocks",
                        "blocks": count,
                        "label": self._texts.tr(
                            "redeem.blocks",
                            blocks=count,
                            value=self._money(pam.block_value),
                            points=self._points(count * pam.block_points),
                        ),
                    },
                    count * pam.block_points,
                )
        return options

    def _balance_line(self, balance: int, done: bool = False) -> str:
        """The balance after: before confirming it is to come ("will remain"), on the
        receipt it is done ("remains") — the languages say those differently."""
        points = self._points(max(0, balance))
        if done:
            return self._texts.tr("receipt.balance_after", points=points)
        return self._texts.tr("sale.balance_after", points=points)

    def propose_redemption(self, option: dict[str, Any]) -> Proposal | str:
        """What choosing this option would do, for the confirmation; or why it cannot be."""
        session = self._customer.session
        if session is None:
            return self._texts.tr("error.generic")
        tr = self._texts.tr
        try:
            if option["kind"] == "blocks":
                pam = self._program.points_as_money
                assert pam is not None
                total = pam.block_value * option["blocks"]
                plan = self._checkout.plan_redemption(
                    session, blocks=option["blocks"], purchase_total=total
                )
                title = tr(
                    "confirm.blocks_title",
                    points=self._points(plan.points),
                    value=self._money(plan.discount),
                )
            else:
                total = None
                plan = self._checkout.plan_redemption(
                    session, reward_id=option["reward_id"], option=option["option"]
                )
                title = tr("confirm.reward_title", reward=self._reward_name(option["reward_id"]))
        except CheckoutError as exc:
            return self._error(exc)
        # What confirm_redemption records: the plan on a purchase of the blocks' value or of
        # the cash still due, which may earn points too.
        purchase = Purchase.of_amount(plan.cash_due if total is None else total)
        earned = self._checkout.preview(session, purchase, plan).points
        lines = [tr("confirm.spend", points=self._points(plan.points))]
        if plan.cash_due > 0:
            lines.append(tr("confirm.cash", amount=self._money(plan.cash_due)))
        if earned > 0:
            lines.append(tr("confirm.earn", points=self._points(earned)))
        lines.append(self._balance_line(session.spendable - plan.points + earned))
        return Proposal(title, tuple(lines))

    def confirm_redemption(self, option: dict[str, Any]) -> str | None:
        """Record the redemption (after the customer confirmed); a problem, or None."""
        checkout = self._checkout
        if option["kind"] == "blocks":
            pam = self._program.points_as_money
            assert pam is not None
            total = pam.block_value * option["blocks"]

            def by_blocks(session: MemberSession) -> Receipt:
                plan = checkout.plan_redemption(
                    session, blocks=option["blocks"], purchase_total=total
                )
                return checkout.earn(session, Purchase.of_amount(total), plan)

            return self._record(by_blocks)
        return self._record(
            lambda session: checkout.redeem(session, option["reward_id"], option["option"])
        )

    def give_targets(self) -> list[dict[str, Any]]:
        return [
            {
                "id": t.id,
                "kind": t.kind,
                "name": t.display_name(self._lang),
                "step": max(t.points_per_unit, t.min_points),
                "label": i18n.give_target_label(self._lang, self._program, t),
            }
            for t in self._program.give_targets
        ]

    def account_problem(self, target_id: str, account: str) -> str | None:
        """Why this is not an account number at the partner, in words; or None."""
        code = partner_account_problem(account)
        if code is None:
            return None
        params = {"target_id": target_id, "count": PARTNER_ACCOUNT_MAX}
        return i18n.error_text(self._lang, code, params, self._program)

    def propose_give(
        self, target_id: str, points: int, partner_account: str | None = None
    ) -> Proposal | str:
        """What sending these points would do, for the confirmation; or why it cannot be.
        A transfer to a partner needs the member's account number there."""
        session = self._customer.session
        if session is None:
            return self._texts.tr("error.generic")
        try:
            self._checkout.check_can_spend(session)
            plan = rules.plan_give(self._program, target_id, points, session.spendable)
        except (CheckoutError, RulesError) as exc:
            return self._error(exc)
        tr, target = self._texts.tr, plan.target
        account_line: tuple[str, ...] = ()
        if target.kind == "partner":
            problem = self.account_problem(target.id, partner_account or "")
            if problem is not None:
                return problem
            account_line = (tr("confirm.account", value=partner_account),)
        name = target.display_name(self._lang)
        units = int(plan.converted)
        converted = i18n.format_target_units(self._lang, self._program, target, units)
        if target.kind == "charity":
            title = tr("confirm.donate_title", target=name)
            result = tr("confirm.donation", converted=converted)
        else:
            title = tr("confirm.transfer_title", target=name)
            result = tr("confirm.receive", converted=converted)
        lines = (
            tr("confirm.spend", points=self._points(plan.points)),
            result,
            *account_line,
            self._balance_line(session.spendable - plan.points),
        )
        return Proposal(title, lines)

    def confirm_give(
        self, target_id: str, points: int, partner_account: str | None = None
    ) -> str | None:
        return self._record(
            lambda session: self._checkout.give(session, target_id, points, partner_account)
        )

    # ------------------------------------------------------------ enrollment

    def invitation_needed(self) -> bool:
        """Whether joining needs an existing member's invitation."""
        return self._program.membership.invitation

    def find_inviter(self, digits: str) -> None:
        """Look up the inviting member by phone (off the clock); the enroll screen hears."""
        screen = self._nav.screen("enroll")
        if not digits:
            screen.error = self._texts.tr("error.unknown_inviter")
            return

        def done(session: Any, error: BaseException | None) -> None:
            if error is not None:
                screen.error = self._error(error)
                return
            screen.inviter_id = session.view.member_id
            screen.invited_text = self._texts.tr(
                "enroll.invited_by", name=session.view.display_name
            )
            screen.step = "name"

        self._nav.run_async(lambda: self._checkout.inviter(digits, "phone"), done)

    def birthday_needed(self) -> bool:
        """Whether joining asks for a birthday (the programme's age gate)."""
        return self._program.membership.min_age is not None

    def birthday_problem(self, digits: str) -> tuple[str | None, bool]:
        """(why this typed birthday cannot join, or None; whether a guardian must consent)."""
        from ui.forms import birthday_of

        birthday = birthday_of(digits)
        today = self._checkout.today()
        if birthday is None or birthday > today or birthday.year < 1900:
            return self._texts.tr("error.birthday_invalid"), False
        gate = self._program.membership
        refusal = rules.enrollment_refusal(gate, birthday, today, guardian=False)
        if refusal is None:
            return None, False
        if refusal[0] == "guardian_required":
            return None, True
        return self._texts.tr(f"error.{refusal[0]}", count=gate.min_age), False

    def enroll(
        self,
        first_name: str,
        consent: bool,
        marketing: bool,
        birthday_digits: str = "",
        guardian: bool = False,
        invited_by: str = "",
    ) -> str | None:
        """Join the programme with the phone typed before (off the clock); a problem, or None."""
        from ui.forms import birthday_of

        phone = self._customer.pending_phone
        if not phone:
            return self._texts.tr("phone.invalid")
        if not consent:
            return self._texts.tr("error.consent_required")
        if not first_name.strip():
            return self._texts.tr("error.name_required")
        birthday = birthday_of(birthday_digits) if self.birthday_needed() else None

        def done(session: Any, error: BaseException | None) -> None:
            screen = self._nav.screen("enroll")
            if isinstance(error, AlreadyMember):
                self._customer.session = error.session
                self._nav.go("member")
                return
            if error is not None:
                screen.error = self._error(error)
                return
            from pos_client.cards import render_card

            self._customer.session = session
            number = session.view.card_number or ""
            screen.welcome_text = self._texts.tr("enroll.welcome", name=first_name.strip())
            screen.card_number = number
            screen.card_image = str(
                render_card(number, "ean13", self._images / f"card-{number}.png")
            )
            if self._printer is not None:
                self._printer.card(session.view.display_name, number)

        self._nav.run_async(
            lambda: self._checkout.enroll(
                phone,
                first_name,
                consent=consent,
                marketing=marketing,
                birthday=birthday,
                guardian_consent=guardian,
                invited_by=invited_by,
            ),
            done,
        )
        return None

    # ------------------------------------------------------------ receipts

    def _record(self, action: Callable[[MemberSession], Receipt]) -> str | None:
        session = self._customer.session
        if session is None:
            return None
        try:
            receipt = action(session)
        except CheckoutError as exc:
            return self._error(exc)
        except OutboxError as exc:  # disk full, read-only: refuse, never lose
            text = self._error(exc)
            self._nav.show_message(text)
            return text
        self._balance_before = session.spendable
        self.show_receipt(receipt)
        return None

    def receipt_text(self) -> str:
        """The last receipt in the current language: earned, spent (by name), cash to pay if
        any, and the balance after (or that it is pending while offline)."""
        receipt = self._customer.last_receipt
        if receipt is None:
            return ""
        tr, lang = self._texts.tr, self._lang
        rows = []
        if receipt.expected_points:
            rows.append(f"{tr('receipt.earned')}: +{self._points(receipt.expected_points)}")
        if receipt.redeemed_points:
            points = self._points(receipt.redeemed_points)
            if receipt.kind == "give" and receipt.reward_id:
                target = self._program.give_target(receipt.reward_id)
                units = receipt.redeemed_points // target.points_per_unit
                rows.append(
                    tr(
                        "receipt.donated" if target.kind == "charity" else "receipt.transferred",
                        points=points,
                        target=target.display_name(lang),
                        converted=i18n.format_target_units(lang, self._program, target, units),
                    )
                )
            elif receipt.reward_id:
                name = self._reward_name(receipt.reward_id)
                rows.append(tr("receipt.spent_reward", points=points, reward=name))
            else:
                off = tr("redeem.money_off", value=self._money(receipt.discount))
                rows.append(tr("receipt.spent_reward", points=points, reward=off))
        if receipt.free_count:
            rows.append(self._free_line(receipt.free_count, receipt.free_value))
        rows += [self._offer_line(offer) for offer in receipt.offers]
        if receipt.kind == "sale" and receipt.cash_due > 0:
            rows.append(f"{tr('receipt.cash_due')}: {self._money(receipt.cash_due)}")
        if self._synced_balance is not None:  # synced: the ledger's word, never "pending"
            rows.append(self._balance_line(self._synced_balance, done=True))
        elif receipt.offline:
            rows.append(tr("receipt.balance_pending"))
        elif self._balance_before is not None:
            after = self._balance_before - receipt.redeemed_points + receipt.expected_points
            rows.append(self._balance_line(after, done=True))
        return "\n".join(rows)

    def show_receipt(self, receipt: Receipt) -> None:
        from pos_client.cards import render_card

        self._customer.last_receipt = receipt
        self._synced_balance = None
        screen = self._nav.screen("receipt")
        screen.summary_text = self.receipt_text()
        screen.synced = False
        screen.when_text = self._texts.moment(receipt.recorded_at)
        screen.key_text = receipt.key
        image = render_card(
            receipt.key.replace("-", ""), "code128", self._images / f"key-{receipt.key}.png"
        )
        screen.key_image = str(image)
        if self._printer is not None:  # queued: printing never holds the sale back
            self._printer.receipt(receipt, screen.summary_text)
        self._nav.switch("receipt")
        self._activity.touch()

    def on_synced(self, event: OperationSynced) -> None:
        """The sale on the receipt reached the backend (on the clock): the receipt says
        synced, and an offline receipt's pending balance becomes the ledger's balance."""
        receipt = self._customer.last_receipt
        if receipt is None or event.key != receipt.key:
            return
        balance = event.result.get("balance")
        if isinstance(balance, int) and not isinstance(balance, bool):
            self._synced_balance = balance
        screen = self._nav.screen("receipt")
        screen.synced = True
        screen.summary_text = self.receipt_text()
