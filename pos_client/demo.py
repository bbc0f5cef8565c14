"""Demo members and the scripted headless scenario behind `pos-client demo --headless`."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pos_client.bootstrap import Terminal
from pos_client.checkout import CheckoutError, MemberSession
from pos_client.domain import Consent, Purchase, PurchaseLine
from pos_client.files import write_private_atomically
from pos_client.identify import gs1_check_digit
from pos_client.ledger import Ledger
from pos_client.operations import EnrollOp, SaleOp
from pos_client.ports import CardRefused
from pos_client.privacy import PhoneHasher
from pos_client.sun import card_url, load_sun_keys

DEMO_NAMESPACE = uuid.UUID("5b0c7e52-8d7e-4e0f-9a59-3c1d8f1a2b60")


def demo_key(name: str) -> str:
    """Stable keys, so seeding twice applies nothing twice."""
    return str(uuid.uuid5(DEMO_NAMESPACE, name))


def _ean(body12: str) -> str:
    return body12 + str(gs1_check_digit(body12))


def _gsrn(body17: str) -> str:
    return body17 + str(gs1_check_digit(body17))


@dataclass(frozen=True)
class DemoMember:
    handle: str
    first_name: str
    last_name: str
    phone: str  # E.164
    card_number: str
    card_uid: str | None = None
    member_number: str | None = None
    birthday: date | None = None
    history: tuple[tuple[str, str], ...] = ()  # (amount, category) sales before today


DEMO_MEMBERS = (
    DemoMember(
        "anna",
        "Anna",
        "Karenina",
        "+79123456789",
        _ean("290000000001"),
        card_uid="04A224C25E6C80",
        history=(("1200.00", "cosmetics"), ("900.00", "fragrance"), ("1500.00", "")),
    ),
    DemoMember(
        "bob",
        "Bob",
        "Smith",
        "+16502530000",
        _ean("290000000002"),
        card_uid="3B9AC1F2",
        history=(("45.50", ""), ("30.00", "cosmetics")),
    ),
    DemoMember(
        "eleni",
        "Eleni",
        "Papadopoulou",
        "+306912345678",
        _ean("290000000003"),
        card_uid="04E1E2E3E4E5E6",
        member_number=_gsrn("04600000000000031"),
        history=tuple((f"{4000 + 100 * i}.00", "") for i in range(2)),
    ),
    DemoMember(
        "olena",
        "Olena",
        "Shevchenko",
        "+380671234567",
        _ean("290000000004"),
        card_uid="A1B2C3D4",
    ),
)


def demo_card_keys(path: Path) -> Path:
    """The demo's secure-card keys, made once at random (mode 0600): the demo's own cards
    are personalised with them, no store's card opens with them."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            f'meta_read_key = "{secrets.token_hex(16)}"\n'
            f'file_read_key = "{secrets.token_hex(16)}"\n'
            f'diversify = true\nsystem_identifier = "{b"POS demo".hex()}"\n'
            f'card_master_key = "{secrets.token_hex(16)}"\n'  # `card issue` on the demo
        )
        write_private_atomically(path, text.encode(), durable=False)
    return path


def demo_card_message(keys_file: str | Path, member: DemoMember, counter: int) -> str:
    """What the demo member's secure card answers on its `counter`-th read, made with the
    demo's keys: the demo's genuine tap, and what a clone of the card can only replay."""
    keys = load_sun_keys(Path(keys_file))
    uid = bytes.fromhex(member.card_uid or "")
    return card_url(
        "https://loyalty.example/c", keys.meta_read_key, keys.file_read_key_for(uid), uid, counter
    )


def adult_birthday(day: date, years: int = 35) -> date:
    """The same birthday `years` earlier (29 February: the 28th in a common year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def seed_demo_members(
    ledger: Ledger, hasher: PhoneHasher, today: date | None = None
) -> list[DemoMember]:
    """Enroll the demo members (idempotently) and give them some history."""
    today = today or datetime.now(UTC).date()
    start = datetime.combine(today, datetime.min.time(), UTC) - timedelta(days=30)
    for member in DEMO_MEMBERS:
        member_id = demo_key(f"member:{member.handle}")
        birthday = member.birthday or (today if member.handle == "olena" else None)
        if ledger.program.membership.min_age is not None:  # an age gate: adults, born today
            birthday = adult_birthday(birthday or date(today.year, 6, 15))
        enroll = EnrollOp(
            key=demo_key(f"enroll:{member.handle}"),
            member_id=member_id,
            first_name=member.first_name,
            last_name=member.last_name,
            phone_key=hasher.phone_key(member.phone),
            phone_last=member.phone[-2:],
            card_number=member.card_number,
            consent=Consent("terms-2026-11", start, "seed"),
            occurred_at=start,
            birthday=birthday,
        )
        ledger.apply(enroll.to_body(), founder=True)  # the demo's founding members
        for kind, value in (("card_uid", member.card_uid), ("member_number", member.member_number)):
            if value and ledger.find_member_id(kind, value) is None:
                ledger.link_identifier(member_id, kind, value)
        for index, (amount, category) in enumerate(member.history):
            sale = SaleOp(
                key=demo_key(f"sale:{member.handle}:{index}"),
                member_id=member_id,
                terminal_id="seed",
                occurred_at=start + timedelta(days=index + 1),
                purchase=Purchase((PurchaseLine(Decimal(amount), category),)),
            )
            ledger.apply(sale.to_body())
    return list(DEMO_MEMBERS)


@dataclass
class DemoRun:
    lines: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)  # keys of sales confirmed to the user
    steps: list[dict[str, Any]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def say(self, text: str) -> None:
        self.lines.append(text)
        if self.echo is not None:
            self.echo(text)


def _show(run: DemoRun, session: MemberSession, unit: str) -> None:
    view = session.view
    state = "online" if session.online else "offline, last known"
    run.say(
        f"  member {view.display_name}  phone {view.phone_hint}  tier {view.tier_name}"
        f"  balance {view.balance} {unit} ({state}; pending +{session.pending_points}"
        f" / -{session.pending_redemptions})"
    )
    if view.next_tier_name:
        run.say(f"  next tier {view.next_tier_name}: {view.next_tier_remaining} to go")
    if view.next_reward_name:
        run.say(f"  next reward {view.next_reward_name}: {view.next_reward_remaining} {unit} to go")


def run_headless_demo(
    terminal: Terminal, echo: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The field-test scenario, start to end, on the embedded ledger. Returns the summary."""
    if terminal.ledger is None:
        raise CheckoutError("the headless demo runs on the embedded backend")
    run = DemoRun(echo=echo)
    checkout, program = terminal.checkout, terminal.program
    unit = program.unit_name
    seed_demo_members(terminal.ledger, checkout.hasher)
    run.say(f"Program: {program.name} ({program.id}); store region {checkout.policy.region}")

    def sale(session: MemberSession, purchase: Purchase, label: str, **redeem: Any) -> None:
        plan = None
        if redeem:
            plan = checkout.plan_redemption(session, purchase_total=purchase.total, **redeem)
        preview = checkout.preview(session, purchase, plan)
        receipt = checkout.earn(session, purchase, plan)
        run.recorded.append(receipt.key)
        run.say(
            f"  {label}: total {purchase.total}, earns {preview.points} {unit}"
            + (f", redeems {receipt.redeemed_points}" if receipt.redeemed_points else "")
            + (" [pending: offline]" if receipt.offline else " [recorded]")
        )
        for row in preview.explain():
            run.say(f"      {row}")
        run.steps.append(
            {
                "step": label,
                "key": receipt.key,
                "points": preview.points,
                "redeemed": receipt.redeemed_points,
                "offline": receipt.offline,
            }
        )

    def drain(label: str) -> None:
        report = terminal.sync.drain()
        status = terminal.sync.publish_status()
        run.say(
            f"  sync ({label}): sent {report.sent}, acked {report.acked}, dead {report.dead};"
            f" {'online' if status.online else 'OFFLINE'}, pending {status.pending}"
        )

    anna = DEMO_MEMBERS[0]
    run.say(f"1. Scan a loyalty card (EAN-13 with AIM prefix ]E0, {anna.card_number[:4]}…)")
    session = checkout.identify("]E0" + anna.card_number, hint="barcode")
    _show(run, session, unit)
    sale(
        session,
        Purchase(
            (
                PurchaseLine(Decimal("40.00"), "cosmetics", "LIP-01"),
                PurchaseLine(Decimal("25.00"), "skincare", "FEAT-SERUM-50"),
                PurchaseLine(Decimal("10.99"), "", "BAG-01"),
            )
        ),
        "basket of three lines",
    )
    drain("online")

    run.say("2. Type a phone number on the keypad")
    session = checkout.identify("+1 650-253-0000", hint="phone")
    _show(run, session, unit)
    sale(session, Purchase.of_amount(Decimal("19.99")), "single amount")
    drain("online")

    run.say("3. Tap an NFC card, redeem a reward")
    session = checkout.identify("04:A2:24:C2:5E:6C:80", hint="nfc")
    _show(run, session, unit)
    affordable = [r for r in session.view.rewards if r.affordable and r.cost > 0]
    if affordable:
        reward = affordable[0]
        sale(
            session,
            Purchase.of_amount(Decimal("12.00")),
            f"redeem {reward.name}",
            reward_id=reward.reward_id,
        )
    elif (
        program.points_as_money is not None
        and session.spendable >= program.points_as_money.block_points
    ):
        sale(session, Purchase.of_amount(Decimal("12.00")), "redeem points as money", blocks=1)
    drain("online")

    run.say("4. The network goes down")
    terminal.network.set_online(False)
    session = checkout.identify("]E0" + anna.card_number, hint="barcode")
    _show(run, session, unit)
    for index, amount in enumerate(("8.50", "120.00", "33.30")):
        sale(session, Purchase.of_amount(Decimal(amount), "cosmetics"), f"offline sale {index + 1}")
    try:
        checkout.plan_redemption(session, reward_id=program.catalog[0].id)
        run.say("  offline redemption within the cap: allowed")
    except CheckoutError as exc:
        run.say(f"  offline redemption refused: {exc}")
    new_member = checkout.enroll("+380 67 765 4321", "Taras", "Bulba", consent=True)
    run.say(
        f"  enrolled {new_member.view.display_name} offline, card {new_member.view.card_number}"
    )
    sale(new_member, Purchase.of_amount(Decimal("15.00")), "first sale of the new member")
    drain("offline")

    run.say("5. The network is back")
    terminal.network.set_online(True)
    drain("back online")
    session = checkout.refresh(session)
    _show(run, session, unit)

    run.say("6. A response lost after commit: the terminal re-sends the same keys")
    resent = terminal.network.submit(
        [entry.body for entry in terminal.outbox.entries() if entry.key in run.recorded[:3]]
    )
    run.say("  " + ", ".join(f"{r.key[-6:]}: {r.outcome.value}" for r in resent))

    run.say("7. A secure card (NTAG 424 DNA) is tapped, then a clone of it")
    keys_file = terminal.settings.backend.card_keys_file
    if keys_file:
        # What Anna's card answers on its 42nd read; a clone can only replay such a message.
        url = demo_card_message(keys_file, anna, 42)
        session = checkout.identify(url, hint="sun")
        spends = checkout.spend_refusal(session) is None
        run.say(
            f"  genuine card: {session.view.display_name} identified"
            + (", may spend" if spends else ", may not spend")
        )
        try:
            checkout.identify(url, hint="sun")
            run.say("  clone: ACCEPTED (this must not happen)")
            run.steps.append({"step": "secure card clone", "refused": False})
        except CardRefused as exc:
            run.say(f"  clone: refused ({exc.code}): {exc}")
            run.steps.append({"step": "secure card clone", "refused": True, "code": exc.code})

    summary = summarise(terminal, run)
    run.say(
        f"Summary: {summary['sales']} sales, {summary['synced']} synced, "
        f"{summary['pending']} pending, {summary['lost']} lost, "
        f"{summary['duplicated']} duplicated, balances consistent: {summary['balances_consistent']}"
    )
    summary["transcript"] = run.lines
    return summary


def summarise(terminal: Terminal, run: DemoRun) -> dict[str, Any]:
    ledger = terminal.ledger
    assert ledger is not None
    applied = set(ledger.operation_keys())
    lost = [key for key in run.recorded if key not in applied]
    duplicated = [key for key in run.recorded if ledger.count_transactions(key, "earn") > 1]
    stats = terminal.outbox.stats()
    return {
        "program": terminal.program.id,
        "sales": len(run.recorded),
        "synced": sum(1 for key in run.recorded if key in applied),
        "pending": stats.unsent,
        "dead": stats.dead,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "balances_consistent": not ledger.balance_mismatches(),
        "steps": run.steps,
    }
