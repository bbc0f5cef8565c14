"""`loyalty-server`: serve, migrate, terminal add/revoke, partner add/revoke, member import,
openapi."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loyalty_server.settings import ServerSettings, from_environment

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def settings_from(args: argparse.Namespace) -> ServerSettings:
    return from_environment(
        database_url=getattr(args, "database_url", None),
        program=getattr(args, "program", None),
        phone_key_file=Path(args.phone_key_file) if getattr(args, "phone_key_file", None) else None,
    )


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(config, "head")


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    migrate(settings.database_url)
    print("database schema is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from loyalty_server.app import create_app

    settings = settings_from(args)
    if not args.no_migrate:
        migrate(settings.database_url)
    # X-Forwarded-For is believed only from the proxies the store names: uvicorn's default
    # (trust it from 127.0.0.1) let anyone behind a same-host TCP relay pick the address the
    # pairing lockout counts.
    trusted = os.environ.get("LOYALTY_SERVER_TRUSTED_PROXIES", "").strip()
    raw_workers = os.environ.get("LOYALTY_SERVER_WORKERS", "").strip() or "1"
    if not raw_workers.isdigit() or not 1 <= int(raw_workers) <= 64:
        print("LOYALTY_SERVER_WORKERS: expected a whole number from 1 to 64", file=sys.stderr)
        return 2
    workers = args.workers or int(raw_workers)
    if workers > 1:
        # Each worker process builds its own app from the environment: hand it the
        # settings given on the command line. Nothing that matters is kept in a worker's
        # memory (limits and lockouts are in the database), so N workers behave as one.
        os.environ["LOYALTY_SERVER_DATABASE_URL"] = settings.database_url
        os.environ["LOYALTY_SERVER_PROGRAM"] = settings.program
        os.environ["LOYALTY_SERVER_PHONE_KEY_FILE"] = str(settings.phone_key_file)
        uvicorn.run(
            "loyalty_server.app:app_from_environment",
            factory=True,
            workers=workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
        )
        return 0
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    return 0


def engine_for(args: argparse.Namespace) -> Any:
    from pos_client.ledger import make_engine

    return make_engine(settings_from(args).database_url)


def cmd_terminal_add(args: argparse.Namespace) -> int:
    from loyalty_server.terminals import add_terminal

    settings = settings_from(args)
    terminal_id, code = add_terminal(engine_for(args), args.name, settings.pairing_code_ttl_s)
    print(
        f"terminal {terminal_id} ({args.name}); pairing code: {code}"
        f" (valid {settings.pairing_code_ttl_s // 60} min, once)"
    )
    print(f"on the terminal: pos-client pair <server url> {code}")
    return 0


def cmd_terminal_revoke(args: argparse.Namespace) -> int:
    from loyalty_server.terminals import revoke

    if not revoke(engine_for(args), args.terminal_id):
        print(f"no terminal {args.terminal_id}", file=sys.stderr)
        return 1
    print(f"terminal {args.terminal_id} revoked: its token no longer works")
    return 0


def cmd_partner_add(args: argparse.Namespace) -> int:
    from loyalty_server.partners import add_partner
    from pos_client.program import load_program
    from pos_client.rules import RulesError

    settings = settings_from(args)
    program = load_program(settings.program, settings.config_dir)
    try:
        target = program.give_target(args.name)
    except RulesError:
        target = None
    if target is None or target.kind != "partner" or not target.inbound_points_per_unit:
        inbound = [
            t.id for t in program.give_targets if t.kind == "partner" and t.inbound_points_per_unit
        ]
        print(
            f"{args.name!r} is not a partner that transfers into programme {program.id}"
            f" (partners: {', '.join(inbound) or 'none'})",
            file=sys.stderr,
        )
        return 1
    token = add_partner(engine_for(args), target.id)
    print(f"partner {target.id}; token (shown once, give it to the partner): {token}")
    print(
        f"daily cap: {settings.partner_cap(target.id)} points; revoke: partner revoke {target.id}"
    )
    return 0


def cmd_partner_revoke(args: argparse.Namespace) -> int:
    from loyalty_server.partners import revoke

    if not revoke(engine_for(args), args.name):
        print(f"no active partner {args.name}", file=sys.stderr)
        return 1
    print(f"partner {args.name} revoked: its token no longer works")
    return 0


def cmd_member_import(args: argparse.Namespace) -> int:
    """CSV columns: first_name,last_name,phone,card_number[,birthday][,consent_text_id]."""
    from pos_client.domain import Consent, utcnow, uuid7
    from pos_client.identify import IdentifyError, parse_phone
    from pos_client.ledger import Ledger
    from pos_client.operations import EnrollOp, OpRejected
    from pos_client.privacy import PhoneHasher, load_or_create_key
    from pos_client.program import load_program

    settings = settings_from(args)
    ledger = Ledger(engine_for(args), load_program(settings.program, settings.config_dir))
    hasher = PhoneHasher(load_or_create_key(settings.phone_key_file))
    imported = skipped = 0
    with open(args.csv, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                phone = parse_phone(row.get("phone", ""), args.region)
                from datetime import date

                birthday = date.fromisoformat(row["birthday"]) if row.get("birthday") else None
                now = utcnow()
                op = EnrollOp(
                    key=uuid7(),
                    member_id=uuid7(),
                    first_name=row["first_name"].strip(),
                    last_name=(row.get("last_name") or "").strip(),
                    phone_key=hasher.phone_key(phone.value),
                    phone_last=phone.value[-2:],
                    card_number=(row.get("card_number") or "").strip() or uuid7()[:13],
                    consent=Consent(row.get("consent_text_id") or "import", now, "import"),
                    occurred_at=now,
                    birthday=birthday,
                )
                ledger.apply(op.to_body())
                imported += 1
            except (IdentifyError, OpRejected, KeyError, ValueError) as exc:
                skipped += 1
                print(f"line {line}: skipped: {exc}", file=sys.stderr)
    print(f"imported {imported} member(s), skipped {skipped}")
    return 0 if imported or not skipped else 1


def cmd_purge(args: argparse.Namespace) -> int:
    """Forget idempotency keys older than the retention window."""
    from datetime import timedelta

    from pos_client.domain import utcnow
    from pos_client.ledger import Ledger
    from pos_client.ledger.ledger import purge_operation_keys
    from pos_client.program import load_program

    settings = settings_from(args)
    ledger = Ledger(engine_for(args), load_program(settings.program, settings.config_dir))
    cutoff = utcnow() - timedelta(days=settings.key_retention_days)
    removed = purge_operation_keys(ledger, cutoff)
    print(f"forgot {removed} idempotency key(s) older than {settings.key_retention_days} days")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    import tempfile

    from loyalty_server.app import create_app

    with tempfile.TemporaryDirectory() as scratch:
        settings = from_environment(
            database_url=f"sqlite+pysqlite:///{scratch}/spec.sqlite",
            phone_key_file=Path(scratch) / "key",
        )
        spec = create_app(settings).openapi()
    text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--database-url", help="SQLAlchemy URL (or LOYALTY_SERVER_DATABASE_URL)")
        sub.add_argument("--program", help="programme preset or file")
        sub.add_argument("--phone-key-file", help="the store-wide phone HMAC key")

    sub = commands.add_parser("serve", help="run the API")
    common(sub)
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8443)
    sub.add_argument("--no-migrate", action="store_true")
    sub.add_argument(
        "--workers",
        type=int,
        choices=range(1, 65),
        metavar="N",
        help="server processes (or LOYALTY_SERVER_WORKERS; default 1)",
    )
    sub.set_defaults(handler=cmd_serve)

    sub = commands.add_parser("migrate", help="create or upgrade the database schema")
    common(sub)
    sub.set_defaults(handler=cmd_migrate)

    terminal = commands.add_parser("terminal", help="terminals").add_subparsers(
        dest="terminal_command", required=True
    )
    sub = terminal.add_parser("add", help="register a terminal; prints a pairing code")
    common(sub)
    sub.add_argument("name")
    sub.set_defaults(handler=cmd_terminal_add)
    sub = terminal.add_parser("revoke", help="revoke a terminal's token")
    common(sub)
    sub.add_argument("terminal_id")
    sub.set_defaults(handler=cmd_terminal_revoke)

    partner = commands.add_parser("partner", help="partner programmes").add_subparsers(
        dest="partner_command", required=True
    )
    sub = partner.add_parser("add", help="give a partner a token for inbound transfers")
    common(sub)
    sub.add_argument("name", help="the partner's id in the programme (e.g. sky-miles)")
    sub.set_defaults(handler=cmd_partner_add)
    sub = partner.add_parser("revoke", help="revoke a partner's token")
    common(sub)
    sub.add_argument("name")
    sub.set_defaults(handler=cmd_partner_revoke)

    member = commands.add_parser("member", help="members").add_subparsers(
        dest="member_command", required=True
    )
    sub = member.add_parser("import", help="import members from CSV")
    common(sub)
    sub.add_argument("csv")
    sub.add_argument("--region", default="US", help="region for phone numbers without +")
    sub.set_defaults(handler=cmd_member_import)

    sub = commands.add_parser("purge", help="forget idempotency keys past the retention window")
    common(sub)
    sub.set_defaults(handler=cmd_purge)

    sub = commands.add_parser("openapi", help="print the OpenAPI spec")
    sub.add_argument("--out")
    sub.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
