"""`pos-client`: the terminal's command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pos_client.bootstrap import Terminal, build_terminal
from pos_client.checkout import AlreadyMember, CheckoutError, MemberNotFound, MemberSession
from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, PurchaseLine, mask_tail, member_view_to_json
from pos_client.errors import LedgerSchemaError
from pos_client.files import private_dir, tighten_descriptor
from pos_client.identify import IdentifyError
from pos_client.operations import UNITS_TEXT
from pos_client.outbox import EntryState, OutboxError, quarantine, read_incidents, reseal
from pos_client.rules import RulesError
from pos_client.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("pos_client")


MONEY_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


class UsageError(Exception):
    pass


def money(text: str) -> Decimal:
    # Digits and one point, as a till prints them: not "1e3", " 10 ", "1_000" or "١٠".
    if not MONEY_TEXT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not an amount (digits and a point): {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"amount must be zero or more: {text!r}")
    return value


def units(text: str) -> Decimal:
    """A line's units (kilometres, nights): digits and at most 3 decimals."""
    if not UNITS_TEXT.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a number of units (up to 7 digits and 3 decimals): {text!r}"
        )
    return Decimal(text)


def line(text: str) -> PurchaseLine:
    """AMOUNT[:CATEGORY[:SKU]][@UNITS]"""
    head, at, tail = text.partition("@")
    parts = head.split(":")
    if len(parts) > 3 or (at and not tail):
        raise argparse.ArgumentTypeError(f"use AMOUNT[:CATEGORY[:SKU]][@UNITS], got {text!r}")
    amount = money(parts[0])
    return PurchaseLine(
        amount,
        parts[1] if len(parts) > 1 else "",
        parts[2] if len(parts) > 2 else "",
        units=units(tail) if at else None,
    )


def load(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.data_dir:
        settings = replace(
            settings,
            storage=replace(settings.storage, data_dir=Path(args.data_dir)),
            phone_key_file=Path(args.data_dir) / "phone.key",
        )
    return settings


def out(args: argparse.Namespace, data: dict[str, Any], text: Sequence[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        for row in text:
            print(row)


def describe_session(
    session: MemberSession, unit: str, offer_uses: Mapping[str, int] | None = None
) -> list[str]:
    view = session.view
    rows = [
        f"member:   {view.display_name} (phone {view.phone_hint or '-'})",
        f"tier:     {view.tier_name}",
        f"balance:  {view.balance} {unit}"
        + ("" if session.online else "  (offline: last known)")
        + (f"  pending +{session.pending_points}" if session.pending_points else "")
        + (f" -{session.pending_redemptions}" if session.pending_redemptions else ""),
    ]
    if view.next_tier_name:
        rows.append(f"next tier: {view.next_tier_name} in {view.next_tier_remaining}")
    if view.next_reward_name:
        rows.append(f"next reward: {view.next_reward_name} in {view.next_reward_remaining} {unit}")
    for reward in view.rewards:
        mark = "*" if reward.affordable else " "
        rows.append(f"  {mark} {reward.reward_id}: {reward.name} ({reward.cost} {unit})")
    for left in view.offers:
        uses = left.uses_left - (offer_uses or {}).get(left.offer_id, 0)
        if uses > 0:
            rows.append(f"offer:    {left.offer_id} ({uses} use(s) left)")
    if view.invitations_left is not None:
        rows.append(f"invitations left: {view.invitations_left}")
    return rows


def sync_after(terminal: Terminal, args: argparse.Namespace) -> str:
    if getattr(args, "no_sync", False):
        return "not synced (--no-sync)"
    report = terminal.sync.drain()
    if report.busy:
        return "another process is syncing; it will send this sale"
    return f"synced {report.acked}, dead {report.dead}, " + (
        "online" if report.online else "offline: kept in the outbox"
    )


# ------------------------------------------------------------------ commands


def cmd_identify(args: argparse.Namespace) -> int:
    with build_terminal(load(args)) as terminal:
        identities = terminal.checkout.readings(args.raw, args.hint)
        if len(identities) > 1:  # several readings: the one that finds the member, if any
            with contextlib.suppress(MemberNotFound):
                identities = [terminal.checkout.find_any(identities).identity]
        identity = identities[0]
        data: dict[str, Any] = {
            "kind": identity.kind.value,
            "masked": identity.masked(),
            "symbology": identity.symbology,
        }
        rows = [
            " ".join(filter(None, (identity.kind.value, identity.symbology, identity.masked())))
        ]
        try:
            session = terminal.checkout.find(identity)
        except MemberNotFound:
            data["member"] = None
            rows.append("no member with this identifier")
        else:
            data["member"] = member_view_to_json(session.view)
            uses = terminal.outbox.offer_uses_since(session.view.member_id, session.view.as_of)
            rows += describe_session(session, terminal.program.unit_name, uses)
        out(args, data, rows)
    return EXIT_OK


def cmd_earn(args: argparse.Namespace) -> int:
    lines = tuple(args.line or ())
    if args.amount is not None:
        lines = (PurchaseLine(args.amount, args.category or "", units=args.units), *lines)
    elif args.units is not None:
        raise UsageError("--units goes with --amount (a --line takes AMOUNT@UNITS)")
    if not lines:
        raise UsageError("give --amount or at least one --line")
    purchase = Purchase(lines)
    with build_terminal(load(args)) as terminal:
        checkout = terminal.checkout
        session = checkout.identify(args.member)
        plan = None
        if args.reward or args.blocks or args.all_blocks:
            plan = checkout.plan_redemption(
                session,
                reward_id=args.reward,
                blocks=args.blocks,
                all_blocks=args.all_blocks,
                option=args.option,
                purchase_total=purchase.total,
            )
        receipt = checkout.earn(session, purchase, plan)
        status = sync_after(terminal, args)
        entry = terminal.outbox.get(receipt.key)
        result = entry.result if entry else None
        data = {
            "key": receipt.key,
            "expected_points": receipt.expected_points,
            "redeemed_points": receipt.redeemed_points,
            "cash_due": str(receipt.cash_due),
            "offers": [
                {"offer_id": o.offer_id, "discount": str(o.discount), "points": o.points}
                for o in receipt.offers
            ],
            "state": entry.state.value if entry else "unknown",
            "result": result,
        }
        rows = [
            f"sale {receipt.key} recorded for {receipt.member_name}",
            *(f"  {row}" for row in receipt.breakdown),
            *(
                f"  offer {offer.offer_id}: "
                + (f"-{offer.discount}" if offer.discount else f"+{offer.points}")
                for offer in receipt.offers
            ),
            *(
                f"  offer {refused.get('offer_id')} not credited: {refused.get('code')}"
                for refused in (result or {}).get("offers_refused", [])
                if isinstance(refused, dict)
            ),
            f"points: +{receipt.expected_points}"
            + (f", redeemed {receipt.redeemed_points}" if receipt.redeemed_points else ""),
            f"cash due: {receipt.cash_due}",
            status,
        ]
        if result:
            rows.append(f"balance now {result.get('balance')}")
        out(args, data, rows)
    return EXIT_OK


def cmd_redeem(args: argparse.Namespace) -> int:
    with build_terminal(load(args)) as terminal:
        session = terminal.checkout.identify(args.member)
        receipt = terminal.checkout.redeem(session, args.reward, args.option)
        status = sync_after(terminal, args)
        out(
            args,
            {
                "key": receipt.key,
                "redeemed_points": receipt.redeemed_points,
                "cash_due": str(receipt.cash_due),
            },
            [
                f"redeemed {receipt.redeemed_points} for {args.reward}"
                f" (cash due {receipt.cash_due}), sale {receipt.key}",
                status,
            ],
        )
    return EXIT_OK


def cmd_action(args: argparse.Namespace) -> int:
    with build_terminal(load(args)) as terminal:
        session = terminal.checkout.identify(args.member)
        receipt = terminal.checkout.record_action(session, args.action)
        status = sync_after(terminal, args)
        out(
            args,
            {"key": receipt.key, "points": receipt.expected_points},
            [f"{receipt.breakdown[0]} recorded ({receipt.key})", status],
        )
    return EXIT_OK


def read_pin(prompt: str) -> str:
    """A PIN typed without echo at a terminal, or the next line of stdin (scripts)."""
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def cmd_award(args: argparse.Namespace) -> int:
    """A staff award with the staff member's PIN (and the approver's), read without echo."""
    with build_terminal(load(args)) as terminal:
        session = terminal.checkout.identify(args.member)
        staff = (args.staff, read_pin(f"PIN of {args.staff}: "))
        approver = (args.approver, read_pin(f"PIN of {args.approver}: ")) if args.approver else None
        result = terminal.checkout.award(
            session, args.points, args.reason, staff, approver, key=args.key
        )
        approved = f", approved by {result.get('approver_id')}" if result.get("approver_id") else ""
        out(
            args,
            result,
            [
                f"awarded {result.get('points')} to {session.view.display_name}"
                f" by {result.get('staff_id')}{approved} ({result.get('status')})",
                f"balance now {result.get('balance')}",
            ],
        )
    return EXIT_OK


def cmd_staff_add(args: argparse.Namespace) -> int:
    """A staff member of this terminal's own ledger (on the store server's backend, staff
    are added there: loyalty-server staff add)."""
    from pos_client.ledger.staff_awards import add_staff

    with build_terminal(load(args)) as terminal:
        if terminal.ledger is None:
            raise UsageError("this terminal uses the store server: loyalty-server staff add")
        if terminal.program.staff_awards is None:
            raise UsageError("the programme has no [staff_awards]")
        try:
            add_staff(
                terminal.ledger.writer,
                args.staff_id,
                args.name or args.staff_id,
                read_pin("staff PIN: "),
            )
        except ValueError as exc:
            raise UsageError(f"staff {args.staff_id}: {exc}") from None
    print(f"staff {args.staff_id} added")
    return EXIT_OK


def invited_by(terminal: Terminal, raw: str | None) -> str:
    if not raw:
        return ""
    if not terminal.program.membership.invitation:
        raise UsageError("--invited-by: the programme is not joined by invitation")
    return terminal.checkout.inviter(raw).view.member_id


def cmd_enroll(args: argparse.Namespace) -> int:
    birthday = date.fromisoformat(args.birthday) if args.birthday else None
    with build_terminal(load(args)) as terminal:
        try:
            session = terminal.checkout.enroll(
                args.phone,
                args.first_name,
                args.last_name or "",
                consent=args.consent,
                marketing=args.marketing,
                birthday=birthday,
                guardian_consent=args.guardian_consent,
                invited_by=invited_by(terminal, args.invited_by),
            )
        except AlreadyMember as exc:
            print(f"already a member: {exc.session.view.display_name}", file=sys.stderr)
            return EXIT_FAILED
        status = sync_after(terminal, args)
        view = session.view
        out(
            args,
            {"member_id": view.member_id, "card_number": view.card_number},
            [f"enrolled {view.display_name}, card {view.card_number}", status],
        )
    return EXIT_OK


def cmd_queue_status(args: argparse.Namespace) -> int:
    with build_terminal(load(args)) as terminal:
        status = terminal.sync.publish_status()
        stats = terminal.outbox.stats()
        dead = terminal.outbox.entries(EntryState.DEAD, limit=50)
        age = status.oldest_pending_age_s
        data: dict[str, Any] = {
            "pending": stats.pending,
            "sending": stats.sending,
            "acked": stats.acked,
            "dead": stats.dead,
            "oldest_pending_age_s": age,
            "dead_entries": [
                {"key": e.key, "kind": e.kind, "code": e.error_code, "error": e.last_error}
                for e in dead
            ],
        }
        rows = [
            f"pending {stats.pending}, sending {stats.sending}, acked {stats.acked},"
            f" dead {stats.dead}"
        ]
        if age is not None:
            rows.append(f"oldest unsent sale: {age:.0f} s old")
        rows += [f"dead {e.key} ({e.kind}): {e.error_code}: {e.last_error}" for e in dead]
        incidents = read_incidents(terminal.outbox.path)
        data["incidents"] = incidents
        if incidents:
            rows.append(
                f"{len(incidents)} outbox incident(s) recorded, the last: {incidents[-1]}"
                " (check the figures, then remove the .incidents file)"
            )
        out(args, data, rows)
    return EXIT_OK


def cmd_queue_retry(args: argparse.Namespace) -> int:
    if not args.all and not args.key:
        raise UsageError("give --key KEY or --all")
    with build_terminal(load(args)) as terminal:
        count = terminal.outbox.requeue_dead(None if args.all else args.key)
        terminal.outbox.make_due()
        print(
            f"{count} dead entr{'y' if count == 1 else 'ies'} queued again; "
            + sync_after(terminal, args)
        )
    return EXIT_OK


def cmd_queue_quarantine(args: argparse.Namespace) -> int:
    from pos_client.bootstrap import terminal_running
    from pos_client.outbox import held_by_another

    storage = load(args).storage
    path = storage.outbox_path
    if terminal_running(storage.data_dir) or (path.exists() and held_by_another(path)):
        # Its pending sales would move aside under it while it keeps recording.
        raise UsageError(
            f"a terminal is running on {storage.data_dir}: stop it first, then quarantine"
        )
    moved = quarantine(path)
    if not moved:
        print(f"no outbox at {path}")
        return EXIT_FAILED
    for target in moved:
        print(f"kept aside: {target}")
    print("a new, empty outbox will be made on next use; recover entries from the kept file")
    return EXIT_OK


def cmd_queue_reseal(args: argparse.Namespace) -> int:
    path = load(args).storage.outbox_path
    written, moved = reseal(path)
    for target in moved:
        print(f"unreadable record kept aside: {target}")
    print(f"outbox {path} checked; its records of sales written now say {written}")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    with build_terminal(load(args)) as terminal:
        terminal.outbox.make_due()
        report = terminal.sync.drain()
        if report.busy:
            print("another process is draining the outbox")
            return EXIT_FAILED
        stats = terminal.outbox.stats()
        out(
            args,
            {
                "sent": report.sent,
                "acked": report.acked,
                "dead": report.dead,
                "online": report.online,
                "pending": stats.unsent,
            },
            [
                f"sent {report.sent}, acked {report.acked}, dead {report.dead}, "
                f"pending {stats.unsent}; "
                + ("online" if report.online else f"offline: {report.error}")
            ],
        )
        return EXIT_OK if report.online else EXIT_FAILED


def cmd_card_render(args: argparse.Namespace) -> int:
    from pos_client.cards import render_card

    written = render_card(args.number, args.format, Path(args.out))
    print(f"wrote {written}")
    return EXIT_OK


def cmd_card_issue(args: argparse.Namespace) -> int:
    """Personalise a blank NTAG 424 DNA on a PC/SC reader for the programme, read it back,
    and (with --member) link it to the member through the backend. Presenting an issued
    card again is safe: it is read back, not rewritten (and linked if asked)."""
    import secrets

    from drivers.pcsc import CardReadError, connected_card
    from pos_client.ntag424 import Ntag424Error, card_keys, issue_card, url_template
    from pos_client.ports import BackendUnavailable, CardRefused
    from pos_client.sun import load_sun_keys

    settings = load(args)
    keys_file = args.keys or settings.backend.card_keys_file
    if not keys_file:
        raise UsageError("give --keys FILE: the programme's card keys with card_master_key")
    try:
        url_template(args.url)
        keys = load_sun_keys(Path(keys_file).expanduser())
        card_keys(keys, bytes(7))  # a file that can issue cards
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for weakness in keys.weaknesses(issuing=True):
        print(f"pos-client: warning: {keys_file}: {weakness}", file=sys.stderr)
    with build_terminal(settings) as terminal:
        member = terminal.checkout.identify(args.member).view if args.member else None

        def known(uid: bytes) -> bool:
            try:
                return terminal.network.card_known(uid)
            except BackendUnavailable:
                raise Ntag424Error(
                    "the store server cannot confirm this card is new (it must, before a "
                    "card gets its keys): try again when it answers"
                ) from None

        try:
            with connected_card(args.reader, args.wait) as card:
                issued = issue_card(card.transmit, keys, args.url, secrets.token_bytes, known)
        except (CardReadError, Ntag424Error, ValueError) as exc:
            again = not getattr(exc, "final", True) or isinstance(exc, CardReadError)
            hint = " (present the card again: issuing resumes where it stopped)" if again else ""
            print(f"pos-client: card not issued: {exc}{hint}", file=sys.stderr)
            return EXIT_FAILED
        uid = mask_tail(issued.uid.hex().upper(), 4)
        said = {
            (True, False): "issued",
            (True, True): "issued (finished: it had been taken away part-way)",
            (False, False): "already issued here, read back (unchanged)",
        }[(issued.personalised, issued.resumed)]
        rows = [f"card {uid}: {said}; its message verifies (read counter {issued.counter})"]
        data: dict[str, Any] = {
            "card": uid,
            "personalised": issued.personalised,
            "resumed": issued.resumed,
            "linked": None,
        }
        if member is not None:
            try:
                linked = terminal.network.link_card(issued.url, member.member_id)
            except CardRefused as exc:
                print(f"pos-client: card issued but not linked: {exc}", file=sys.stderr)
                return EXIT_FAILED
            except BackendUnavailable as exc:
                print(
                    f"pos-client: card issued but not linked ({exc}); present it again with "
                    "the same command when the store server answers",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            data["linked"] = member.member_id
            rows.append(f"{'linked to' if linked else 'already linked to'} {member.display_name}")
        out(args, data, rows)
    return EXIT_OK


def cmd_card_block(args: argparse.Namespace) -> int:
    """On a terminal with its own ledger (the store): block a member's lost or stolen
    cards. A terminal of a store server: `loyalty-server card block` there."""
    with build_terminal(load(args)) as terminal:
        if terminal.ledger is None:
            raise UsageError("this terminal's store server blocks cards: loyalty-server card block")
        try:
            _member, blocked = terminal.ledger.block_member_cards(args.member, args.card or "")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not blocked:
        print("pos-client: no card of this member to block", file=sys.stderr)
        return EXIT_FAILED
    print(f"blocked {len(blocked)} card(s): {', '.join(blocked)}")
    return EXIT_OK


def cmd_pin_set(args: argparse.Namespace) -> int:
    """The member chooses a PIN (found by phone, they may then spend with it), found by
    their card; --change: the current PIN first. PINs are read from standard input (a line
    each) or typed at a prompt (the new one twice), never from the command line."""
    import getpass

    def read(prompt: str) -> str:
        if not sys.stdin.isatty():
            return sys.stdin.readline(64).strip()
        try:
            return getpass.getpass(prompt)
        except (EOFError, KeyboardInterrupt):
            raise UsageError("no PIN given") from None

    with build_terminal(load(args)) as terminal:
        session = terminal.checkout.identify(args.member)  # before asking for any PIN
        current = read("current PIN: ") if args.change else None
        pin = read("member's new PIN: ")
        if sys.stdin.isatty() and read("again: ") != pin:
            raise UsageError("the two PINs differ")
        terminal.checkout.set_pin(session, pin, current)
        print(f"PIN {'changed' if args.change else 'set'} for {session.view.display_name}")
    return EXIT_OK


def cmd_program_show(args: argparse.Namespace) -> int:
    from pos_client.program import load_program, preset_names
    from pos_client.program_words import describe_program

    settings = load(args)
    name = args.preset or settings.program
    program = load_program(name, settings.config_dir)
    for row in describe_program(program):
        print(row)
    print(f"(presets available: {', '.join(preset_names(settings.config_dir))})")
    return EXIT_OK


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from pos_client.demo import seed_demo_members

    with build_terminal(load(args)) as terminal:
        if terminal.ledger is None:
            raise UsageError("demo members are seeded into the embedded ledger only")
        members = seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        # Demo members are fictional: their numbers are printed so a person can type them.
        for member in members:
            print(
                f"{member.first_name} {member.last_name[:1]}.: card {member.card_number},"
                f" phone {member.phone} (demo)"
                + (f", tag {member.card_uid}" if member.card_uid else "")
            )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from pos_client.bootstrap import doctor_checks
    from pos_client.doctor import Level

    checks = doctor_checks(load(args))
    marks = {Level.OK: "ok ", Level.WARN: "WARN", Level.BAD: "BAD"}
    for check in checks:
        print(f"{marks[check.level]} {check.name}: {check.detail}")
    problems = sum(check.level is Level.BAD for check in checks)
    warnings = sum(check.level is Level.WARN for check in checks)
    if problems:
        print(f"{problems} problem(s)" + (f", {warnings} warning(s)" if warnings else ""))
    elif warnings:
        print(f"no problems, {warnings} warning(s)")
    else:
        print("all checks passed")
    return EXIT_FAILED if problems else EXIT_OK  # warnings alone: a working terminal


def cmd_pair(args: argparse.Namespace) -> int:
    """Pair this terminal with a store server: keep its token (the phone key stays there)."""
    from pos_client.backends.http import pair_terminal
    from pos_client.ports import BackendUnavailable

    settings = load(args)
    try:
        answer = pair_terminal(args.url, args.code)
    except BackendUnavailable as exc:
        print(f"pos-client: {exc}", file=sys.stderr)
        return EXIT_FAILED
    data_dir = settings.storage.data_dir
    private_dir(data_dir)
    token_path = Path(settings.backend.token_file or data_dir / "terminal.token").expanduser()
    secrets_kept = [(token_path, answer["token"])]
    if answer.get("phone_key"):  # an older server still hands the store-wide key out
        secrets_kept.append((settings.phone_key_file, answer["phone_key"]))
    for path, secret in secrets_kept:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        tighten_descriptor(descriptor)  # an existing file keeps its mode: made 0600
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
    print(f"paired as terminal {answer['terminal_id']}; token kept in {token_path}")
    if not answer.get("phone_key"):
        print("the store's phone key stays on the server: phone numbers are keyed there")
    print(f'set [backend] kind = "http" and url = "{args.url}" in this terminal\'s config')
    return EXIT_OK


SIM_COMMANDS = (
    "tap",
    "remove",
    "scan",
    "phone",
    "ndef",
    "sun",
    "error",
    "offline",
    "online",
    "latency",
    "wait",
    "play",
    "status",
)


def cmd_sim(args: argparse.Namespace) -> int:
    from drivers.simulated import send_command

    port = args.port
    if port is None:
        port_file = load(args).storage.data_dir / "sim.port"
        try:
            port = int(port_file.read_text().strip())
        except (OSError, ValueError):
            raise UsageError(
                f"no running terminal with a simulated reader ({port_file} not found);"
                " start one with `pos-client run --headless` or give --port"
            ) from None
    command: dict[str, Any] = {"cmd": args.action}
    if args.value is not None:
        command["value"] = str(Path(args.value).resolve()) if args.action == "play" else args.value
    try:
        reply = send_command(port, command)
    except OSError as exc:
        raise UsageError(f"cannot reach the simulated reader on port {port}: {exc}") from None
    if not reply.get("ok"):
        print(f"pos-client: sim {args.action}: {reply.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    print("ok" + (f": {reply['reader']}" if "reader" in reply else ""))
    return EXIT_OK


def describe_event(event: Any, unit: str) -> str | None:
    from pos_client.events import ReaderStatus, SyncStatus
    from pos_client.printing import PrinterStatus
    from pos_client.scanning import CardRemoved, IdentificationFailed, MemberIdentified

    if isinstance(event, MemberIdentified):
        view = event.session.view
        return (
            f"member {view.display_name} tier {view.tier_name} balance {view.balance} {unit}"
            f" via {event.source}" + ("" if event.session.online else " (offline)")
        )
    if isinstance(event, IdentificationFailed):
        return f"not identified ({event.reason}) via {event.source}: {event.message}"
    if isinstance(event, CardRemoved):
        return f"card removed from {event.source}"
    if isinstance(event, ReaderStatus):
        return f"reader {event.source} {event.state}" + (
            f": {event.detail}" if event.detail else ""
        )
    if isinstance(event, SyncStatus):
        return f"sync {'online' if event.online else 'OFFLINE'}, pending {event.pending}"
    if isinstance(event, PrinterStatus):
        return f"printer {event.source} {event.state.value.replace('_', ' ')}" + (
            f": {event.detail}" if event.detail else ""
        )
    return None


def cmd_run(args: argparse.Namespace) -> int:
    import queue
    import signal
    import time

    from pos_client.bootstrap import run_terminal
    from pos_client.events import ReaderStatus, SyncStatus
    from pos_client.printing import PrinterStatus
    from pos_client.scanning import CardRemoved, IdentificationFailed, MemberIdentified
    from pos_client.staff import kiosk_pin_problem

    settings = load(args)
    problem = kiosk_pin_problem(settings.terminal.mode.value, settings.admin.pin)
    if problem is not None:
        raise ConfigError(problem)
    if not args.headless:
        return run_window(settings)
    lines: queue.Queue[str] = queue.Queue()
    stop = {"now": False}

    def on_signal(_signum: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    last_sync: list[tuple[bool, int]] = []
    unit = [""]

    def show(event: Any) -> None:
        if isinstance(event, SyncStatus):
            key = (event.online, event.pending)
            if last_sync and last_sync[-1] == key:
                return
            last_sync.append(key)
        text = describe_event(event, unit[0])
        if text:
            lines.put(text)

    def listen(terminal: Any) -> None:  # before the readers open: their first event shows
        unit[0] = terminal.program.unit_name
        kinds = (MemberIdentified, IdentificationFailed, CardRemoved, ReaderStatus, SyncStatus)
        for kind in (*kinds, PrinterStatus):
            terminal.bus.subscribe(kind, show)

    with run_terminal(
        settings, lambda name, problem: lines.put(f"reader {name}: {problem}"), listen
    ) as running:
        print(
            f"terminal {settings.terminal.id} running ({len(running.readers)} reader(s));"
            " Ctrl-C stops",
            flush=True,
        )
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            try:
                print(lines.get(timeout=0.1), flush=True)
            except queue.Empty:
                continue
    print("stopped", flush=True)
    return EXIT_OK


def run_window(settings: Settings) -> int:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from pos_client.bootstrap import build_app, run_terminal

    with run_terminal(settings) as running, contextlib.suppress(KeyboardInterrupt):
        build_app(settings, running).run()
    return EXIT_OK


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    """The demo's own throwaway data folder: it never touches a real store's ledger. Its
    secure-card keys are made there at random (owner-only), for the demo's cards alone."""
    from pos_client.demo import demo_card_keys

    return replace(
        settings,
        storage=replace(settings.storage, data_dir=data_dir, ledger_url=""),
        phone_key_file=data_dir / "phone.key",
        backend=replace(
            settings.backend, card_keys_file=str(demo_card_keys(data_dir / "card-keys.toml"))
        ),
    )


def cmd_demo_screens(args: argparse.Namespace, settings: Settings, data_dir: Path) -> int:
    """The demo on the real screens: a window if there is a display, else offscreen with
    a screenshot of each step of the field-test scenario in demo-output/."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from pos_client.bootstrap import build_app, run_terminal
    from pos_client.demo import DemoRun, seed_demo_members, summarise
    from ui.app import has_display

    settings = demo_settings(settings, data_dir)
    # The screens show sync happening, so the background worker runs fast.
    settings = replace(
        settings,
        sync=replace(settings.sync, interval_s=0.5, backoff_base_s=0.2, backoff_cap_s=1.0),
    )
    with run_terminal(settings) as running:
        terminal = running.terminal
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        app = build_app(settings, running)
        if has_display() and not args.offscreen:
            print(
                f"demo window open; drive it with `{own_command()} --data-dir "
                f"{data_dir} sim tap 04A224C25E6C80` (and scan, phone, offline, online)"
            )
            with contextlib.suppress(KeyboardInterrupt):
                app.run()
            return EXIT_OK
        from ui.demo import field_test
        from ui.script import run_app_with_script

        shots = Path(args.output)
        runner = run_app_with_script(app, field_test, shots)
        terminal.sync.drain()
        recorded = [entry.key for entry in terminal.outbox.entries(limit=10_000)]
        summary = summarise(terminal, DemoRun(recorded=recorded))
    print(
        f"demo: {len(runner.screenshots)} screenshots in {shots}/, "
        f"{summary['sales']} operations, {summary['synced']} synced, "
        f"{summary['pending']} pending, {summary['lost']} lost, "
        f"{summary['duplicated']} duplicated"
    )
    index = write_gallery(settings, data_dir, shots / "gallery")
    print(f"gallery: every screen in 4 languages at 2 sizes, {index}")
    return EXIT_OK if summary["lost"] == 0 and summary["duplicated"] == 0 else EXIT_FAILED


def write_gallery(settings: Settings, data_dir: Path, folder: Path) -> Path:
    """The screen tour (ui/tour.py) in each language, a picture of every state at each
    gallery size, and an index page; one fresh demo terminal per language."""
    from pos_client.bootstrap import build_app, run_terminal
    from pos_client.demo import seed_demo_members
    from ui.script import run_app_with_script
    from ui.tour import GALLERY_LANGUAGES, GALLERY_SIZES, gallery, write_gallery_index

    for language in GALLERY_LANGUAGES:
        tour_settings = demo_settings(settings, data_dir / f"gallery-{language}")
        tour_settings = replace(
            tour_settings,
            terminal=replace(tour_settings.terminal, inactivity_s=3600.0),
            sync=replace(settings.sync, interval_s=0.5, backoff_base_s=0.2, backoff_cap_s=1.0),
        )
        with run_terminal(tour_settings) as running:
            assert running.terminal.ledger is not None
            seed_demo_members(running.terminal.ledger, running.terminal.checkout.hasher)
            app = build_app(tour_settings, running)

            def script(app: Any, language: str = language) -> Any:
                return gallery(app, language, GALLERY_SIZES, folder)

            run_app_with_script(app, script)
    return write_gallery_index(folder)


def cmd_demo(args: argparse.Namespace) -> int:
    from pos_client.demo import run_headless_demo

    settings = load(args)
    with tempfile.TemporaryDirectory(prefix="pos-client-demo-") as scratch:
        data_dir = Path(args.data_dir) if args.data_dir else Path(scratch)
        if not args.headless and not args.json:
            return cmd_demo_screens(args, settings, data_dir)
        with build_terminal(demo_settings(settings, data_dir)) as terminal:
            echo: Callable[[str], None] | None = None if args.json else print
            summary = run_headless_demo(terminal, echo=echo)
    if args.json:
        summary.pop("transcript", None)
        print(json.dumps(summary, indent=2, default=str))
    ok = summary["lost"] == 0 and summary["duplicated"] == 0 and summary["balances_consistent"]
    return EXIT_OK if ok else EXIT_FAILED


def own_command() -> str:
    """How this command was started, so a printed hint can be pasted as is."""
    started = Path(sys.argv[0])
    if started.name == "pos-client" and started.is_file():
        return os.path.relpath(started) if not started.is_absolute() else str(started)
    return "pos-client"


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-client", description=__doc__)
    parser.add_argument("--config", help="user config file (or POS_CLIENT_CONFIG)")
    parser.add_argument("--data-dir", help="where the outbox, ledger and keys live")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help_text: str,
        parent: Any = commands,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def member_arg(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--member", required=True, help="card number, tag UID or phone")
        sub.add_argument("--no-sync", action="store_true", help="leave it in the outbox")
        sub.add_argument("--json", action="store_true")

    sub = command("identify", cmd_identify, "parse raw input and look the member up")
    sub.add_argument("raw")
    sub.add_argument("--hint", choices=("phone", "nfc", "barcode"))
    sub.add_argument("--json", action="store_true")

    sub = command("earn", cmd_earn, "record a sale (and optionally a redemption)")
    member_arg(sub)
    sub.add_argument("--amount", type=money)
    sub.add_argument("--category")
    sub.add_argument(
        "--units", type=units, help="the --amount line's units (km, nights) when earning by them"
    )
    sub.add_argument("--line", type=line, action="append", help="AMOUNT[:CATEGORY[:SKU]][@UNITS]")
    sub.add_argument("--reward")
    sub.add_argument("--option", type=int, help="points + cash option index")
    sub.add_argument("--blocks", type=int)
    sub.add_argument("--all-blocks", action="store_true")

    sub = command("redeem", cmd_redeem, "redeem a catalog reward")
    member_arg(sub)
    sub.add_argument("--reward", required=True)
    sub.add_argument("--option", type=int)

    sub = command("action", cmd_action, "record a non-purchase action (e.g. vaccination)")
    member_arg(sub)
    sub.add_argument("--action", required=True)

    sub = command("award", cmd_award, "a staff award of points (PINs read without echo)")
    sub.add_argument("--member", required=True, help="card number, tag UID or phone")
    sub.add_argument("--json", action="store_true")
    sub.add_argument("--key", help="the key of an award that got no answer, to give it again")
    sub.add_argument("--points", type=int, required=True)
    sub.add_argument("--reason", required=True)
    sub.add_argument("--staff", required=True, help="the staff member who awards")
    sub.add_argument("--approver", help="another staff member, above the approval size")

    sub = command("staff-add", cmd_staff_add, "a staff member of this terminal's ledger")
    sub.add_argument("staff_id")
    sub.add_argument("--name")

    sub = command("enroll", cmd_enroll, "enroll a new member by phone")
    sub.add_argument("--phone", required=True)
    sub.add_argument("--first-name", required=True)
    sub.add_argument("--last-name")
    sub.add_argument("--birthday", help="YYYY-MM-DD")
    sub.add_argument("--consent", action="store_true", help="the customer accepted the terms")
    sub.add_argument("--marketing", action="store_true")
    sub.add_argument(
        "--guardian-consent",
        action="store_true",
        help="a parent or guardian consented for a minor (a programme's age gate)",
    )
    sub.add_argument(
        "--invited-by",
        metavar="CARD_OR_PHONE",
        help="the member who invites (a programme joined by invitation)",
    )
    sub.add_argument("--no-sync", action="store_true")
    sub.add_argument("--json", action="store_true")

    queue = commands.add_parser("queue", help="the outbox").add_subparsers(
        dest="queue_command", required=True, metavar="ACTION"
    )
    sub = command("status", cmd_queue_status, "pending, dead and acked entries", queue)
    sub.add_argument("--json", action="store_true")
    sub = command("retry", cmd_queue_retry, "send dead entries again (same keys)", queue)
    sub.add_argument("--key")
    sub.add_argument("--all", action="store_true")
    command("quarantine", cmd_queue_quarantine, "keep a damaged outbox aside", queue)
    command(
        "reseal",
        cmd_queue_reseal,
        "after an unreadable manifest: write it again from the outbox (checked)",
        queue,
    )

    sub = command("sync", cmd_sync, "send what is pending now")
    sub.add_argument("--json", action="store_true")

    card = commands.add_parser("card", help="member cards").add_subparsers(
        dest="card_command", required=True, metavar="ACTION"
    )
    sub = command("render", cmd_card_render, "render a card barcode to SVG or PNG", card)
    sub.add_argument("number")
    sub.add_argument("--format", choices=("ean13", "code128"), default="ean13")
    sub.add_argument("--out", required=True)

    sub = command(
        "issue",
        cmd_card_issue,
        "personalise a blank NTAG 424 DNA on a PC/SC reader (secure card), link it",
        card,
    )
    sub.add_argument("--url", required=True, help="the card's base URL, e.g. https://shop/c")
    sub.add_argument("--keys", help="card keys file (default: backend.card_keys_file)")
    sub.add_argument("--member", help="link to this member: card number, tag UID or phone")
    sub.add_argument("--reader", default="", help="part of the PC/SC reader's name")
    sub.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a card")
    sub.add_argument("--json", action="store_true")

    sub = command("block", cmd_card_block, "block a member's lost or stolen cards", card)
    sub.add_argument("member", help="the member's id or card number")
    sub.add_argument("--card", help="only the card whose UID ends with these hex digits")

    pin = commands.add_parser("pin", help="member PINs").add_subparsers(
        dest="pin_command", required=True, metavar="ACTION"
    )
    sub = command("set", cmd_pin_set, "set a member's PIN (read from standard input)", pin)
    sub.add_argument("--member", required=True, help="the member's card number (scanned)")
    sub.add_argument("--change", action="store_true", help="the current PIN is read first")

    program = commands.add_parser("program", help="loyalty programs").add_subparsers(
        dest="program_command", required=True, metavar="ACTION"
    )
    sub = command("show", cmd_program_show, "show the configured program", program)
    sub.add_argument("--preset")

    command("seed-demo", cmd_seed_demo, "add the demo members to the local ledger")

    sub = command("pair", cmd_pair, "pair this terminal with a store server")
    sub.add_argument("url")
    sub.add_argument("code")

    command("doctor", cmd_doctor, "check readers, ports, backend, clock, disk and outbox")

    sub = command("run", cmd_run, "run the terminal: readers, identification, sync")
    sub.add_argument("--headless", action="store_true", help="no window: print what happens")
    sub.add_argument("--duration", type=float, help="stop after this many seconds")

    sub = command("sim", cmd_sim, "drive a running terminal's simulated reader")
    sub.add_argument("action", choices=SIM_COMMANDS)
    sub.add_argument("value", nargs="?", help="UID, code, phone number, seconds or scenario file")
    sub.add_argument("--port", type=int, help="the simulated reader's port (default: sim.port)")

    sub = command("demo", cmd_demo, "run the demo on a throwaway embedded ledger")
    sub.add_argument("--headless", action="store_true", help="no window: scripted scenario")
    sub.add_argument("--json", action="store_true", help="one JSON summary object")
    sub.add_argument("--offscreen", action="store_true", help="screenshots even with a display")
    sub.add_argument("--output", default="demo-output", help="where screenshots go")
    return parser


ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (ConfigError, "configuration error"),
    (IdentifyError, "cannot identify"),
    (MemberNotFound, "not found"),
    (CheckoutError, "refused"),
    (RulesError, "refused"),
    (OutboxError, "outbox"),
    (LedgerSchemaError, "ledger"),
    (UsageError, "usage"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    # Kivy logs through Python's logging (configured above) instead of adding a console
    # handler of its own, which printed every line twice.
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    try:
        code: int = args.handler(args)
        return code
    except Exception as exc:
        for error_type, label in ERRORS:
            if isinstance(exc, error_type):
                print(f"pos-client: {label}: {exc}", file=sys.stderr)
                return EXIT_USAGE if error_type in (ConfigError, UsageError) else EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
