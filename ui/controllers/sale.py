"""Recording what happens at the counter: earn, redeem, give, enroll, and the receipt."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pos_client.checkout import AlreadyMember, Checkout, CheckoutError, MemberSession, Receipt
from pos_client.domain import Purchase, PurchaseLine
from pos_client.events import OperationSynced
from pos_client.outbox import OutboxError
from pos_client.rules import Program
from ui.controllers.navigation import Navigator
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts

Lines = list[tuple[str, str]]  # (amount as typed, category id)


def purchase_of(lines: Lines) -> Purchase | None:
    try:
        items = tuple(PurchaseLine(Decimal(a), c) for a, c in lines if a and a != ".")
    except (InvalidOperation, ValueError):
        return None
    return Purchase(items) if items else None


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
    ) -> None:
        self._checkout = checkout
        self._program = program
        self._nav = nav
        self._texts = texts
        self._customer = customer
        self._activity = activity
        self._images = images

    # ------------------------------------------------------------ earning

    def program_categories(self) -> list[str]:
        return ["", *sorted(self._program.earn.category_rates)]

    def preview_lines(self, lines: Lines) -> tuple[str, str]:
        """The points these lines earn, and the rules' breakdown."""
        purchase = purchase_of(lines)
        session = self._customer.session
        if purchase is None or session is None:
            return "", ""
        breakdown = self._checkout.preview(session, purchase)
        total = self._texts.money(purchase.total)
        return (
            f"{total}: "
            + self._texts.tr("earn.preview", points=self._texts.points(breakdown.points)),
            "\n".join(breakdown.explain()),
        )

    def confirm_earn(self, lines: Lines) -> None:
        purchase = purchase_of(lines)
        if purchase is None or self._customer.session is None:
            detail = self._texts.tr("earn.amount")
            self._nav.show_message(self._texts.tr("error.refused", detail=detail))
            return
        self._record(lambda session: self._checkout.earn(session, purchase))

    # ------------------------------------------------------------ redemption and giving

    def redemption_options(self) -> list[dict[str, Any]]:
        session = self._customer.session
        if session is None:
            return []
        points, money = self._texts.points, self._texts.money
        options: list[dict[str, Any]] = []
        for reward in session.view.rewards:
            options.append(
                {
                    "kind": "reward",
                    "reward_id": reward.reward_id,
                    "option": None,
                    "label": f"{reward.name} — {points(reward.cost)}",
                    "enabled": reward.cost <= session.spendable,
                }
            )
            try:
                alternatives = self._program.reward(reward.reward_id).points_plus_cash
            except Exception:  # a reward the cached view knows but the programme no longer has
                alternatives = ()
            for index, (cost, cash) in enumerate(alternatives):
                options.append(
                    {
                        "kind": "reward",
                        "reward_id": reward.reward_id,
                        "option": index,
                        "label": f"{reward.name} — {points(cost)} + {money(cash)}",
                        "enabled": cost <= session.spendable,
                    }
                )
        pam = self._program.points_as_money
        if pam is not None:
            blocks = session.spendable // pam.block_points
            for count in sorted({1, blocks} - {0}):
                options.append(
                    {
                        "kind": "blocks",
                        "blocks": count,
                        "enabled": True,
                        "label": self._texts.tr(
                            "redeem.blocks",
                            blocks=count,
                            value=money(pam.block_value),
                            points=points(count * pam.block_points),
                        ),
                    }
                )
        return options

    def confirm_redemption(self, option: dict[str, Any]) -> str | None:
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
                "step": max(t.points_per_unit, t.min_points),
                "label": f"{t.name} ({self._texts.points(t.points_per_unit)} = 1 {t.unit_name})",
            }
            for t in self._program.give_targets
        ]

    def confirm_give(self, target_id: str, points: int) -> str | None:
        return self._record(lambda session: self._checkout.give(session, target_id, points))

    # ------------------------------------------------------------ enrollment

    def enroll(self, first_name: str, consent: bool, marketing: bool) -> str | None:
        """Join the programme with the phone typed before (off the clock); a problem, or None."""
        phone = self._customer.pending_phone
        if not phone:
            return self._texts.tr("phone.invalid")
        if not consent:
            return self._texts.tr("enroll.consent")

        def done(session: Any, error: BaseException | None) -> None:
            screen = self._nav.screen("enroll")
            if isinstance(error, AlreadyMember):
                self._customer.session = error.session
                self._nav.go("member")
                return
            if error is not None:
                screen.error = self._texts.tr("error.refused", detail=str(error))
                return
            from pos_client.cards import render_card

            self._customer.session = session
            number = session.view.card_number or ""
            screen.card_number = number
            screen.card_image = str(
                render_card(number, "ean13", self._images / f"card-{number}.png")
            )

        self._nav.run_async(
            lambda: self._checkout.enroll(phone, first_name, consent=consent, marketing=marketing),
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
            return self._texts.tr("error.refused", detail=str(exc))
        except OutboxError as exc:  # disk full, read-only: refuse, never lose
            self._nav.show_message(self._texts.tr("error.refused", detail=str(exc)))
            return str(exc)
        self.show_receipt(receipt)
        return None

    def show_receipt(self, receipt: Receipt) -> None:
        from pos_client.cards import render_card

        self._customer.last_receipt = receipt
        screen = self._nav.screen("receipt")
        points, tr = self._texts.points, self._texts.tr
        rows = []
        if receipt.expected_points:
            rows.append(f"{tr('receipt.earned')}: +{points(receipt.expected_points)}")
        if receipt.redeemed_points:
            rows.append(f"{tr('receipt.redeemed')}: -{points(receipt.redeemed_points)}")
        if receipt.kind == "sale":
            rows.append(f"{tr('receipt.cash_due')}: {self._texts.money(receipt.cash_due)}")
        rows.extend(receipt.breakdown if receipt.kind == "give" else ())
        screen.summary_text = "\n".join(rows)
        screen.synced = False
        screen.when_text = self._texts.moment(receipt.recorded_at)
        screen.key_text = receipt.key
        image = render_card(
            receipt.key.replace("-", ""), "code128", self._images / f"key-{receipt.key}.png"
        )
        screen.key_image = str(image)
        self._nav.switch("receipt")
        self._activity.touch()

    def on_synced(self, event: OperationSynced) -> None:
        receipt = self._customer.last_receipt
        if receipt is not None and event.key == receipt.key:
            self._nav.screen("receipt").synced = True
