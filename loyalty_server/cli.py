"""`loyalty-server`: serve, migrate, terminal add/revoke, partner add/revoke, merchant
token/revoke, program add/list/cancel, settlement, member import, purge, expire, openapi."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loyalty_server.settings import ServerSettings, from_environment

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def shown(text: str) -> str:
    """Something a user typed, safe to print: characters that are not printable (controls,
    ANSI escapes, bidi overrides, bytes that were not UTF-8) as \\x.. or \\u.... escapes."""
    return "".join(char if char.isprintable() else escaped(char) for char in text)


ECHOED_NAME_CHARS = 40  # a refused name is echoed cut to this many characters


def shown_cut(text: str, limit: int = ECHOED_NAME_CHARS) -> str:
    """`shown(text)` cut to its first `limit` characters (then "…"): a refusal quotes enough
    to recognise what was typed, not 5,000 characters of it."""
    return shown(text[:limit]) + ("…" if len(text) > limit else "")


def escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was no UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def complain(message: str) -> None:
    """One line on stderr, named as the CLI's errors are: `loyalty-server: MESSAGE`."""
    print(f"loyalty-server: {message}", file=sys.stderr)


def settings_from(args: argparse.Namespace) -> ServerSettings:
    if (
        not getattr(args, "database_url", None)
        and not os.environ.get("LOYALTY_SERVER_DATABASE_URL")
        and not getattr(args, "told_default", False)
    ):
        args.told_default = True
        # Never silently: a command run in the wrong directory would make a new database.
        default = ServerSettings.database_url.split("///", 1)[1]
        print(
            f"loyalty-server: using the default database {Path(default).resolve()} "
            "(set LOYALTY_SERVER_DATABASE_URL or --database-url for another)",
            file=sys.stderr,
        )
    try:
        settings = from_environment(
            database_url=getattr(args, "database_url", None),
            program=getattr(args, "program", None),
            phone_key_file=(
                Path(args.phone_key_file) if getattr(args, "phone_key_file", None) else None
            ),
        )
    except ValueError as exc:  # a setting out of range: say which, no traceback
        complain(str(exc))
        raise SystemExit(2) from None
    problem = database_url_problem(settings.database_url)
    if problem:
        complain(problem)
        raise SystemExit(2)
    tighten_files(settings)
    return settings


# The database holds names, full card numbers, phone HMACs and token hashes; the key file
# the store-wide phone key: readable by the server's user only.
PRIVATE_MODE = 0o600


def private_files(settings: ServerSettings) -> list[Path]:
    """The server's files of secrets: a SQLite database with its -wal and -shm, the phone
    key file."""
    from sqlalchemy.engine import make_url

    files = [settings.phone_key_file]
    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        files += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return files


def tighten_files(settings: ServerSettings) -> None:
    """Make existing files of secrets (from before, or made under a looser umask) 0600."""
    import stat

    for path in private_files(settings):
        try:
            mode = path.stat().st_mode
            # Only the server's own regular files: a setting pointing at a device or a FIFO
            # (/dev/zero) is refused later, never chmod-ed here.
            if stat.S_ISREG(mode) and mode & 0o777 != PRIVATE_MODE:
                path.chmod(PRIVATE_MODE)
        except FileNotFoundError:
            continue
        except OSError as exc:
            print(
                f"loyalty-server: warning: cannot make {shown(str(path))} private "
                f"({exc.strerror}); chmod 600 it",
                file=sys.stderr,
            )


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config interpolates "%": a percent-encoded password must stay as it is.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
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
    if settings.sun_keys_file is not None:
        # Checked before serving (each worker loads them again): a bad file stops the
        # server with its reason, never a traceback, never a key's value.
        from pos_client.sun import load_sun_keys

        try:
            weak = load_sun_keys(settings.sun_keys_file).weaknesses()
        except ValueError as exc:
            complain(f"LOYALTY_SERVER_SUN_KEYS_FILE: {exc}")
            return 2
        for weakness in weak:
            complain(f"warning: LOYALTY_SERVER_SUN_KEYS_FILE: {weakness}")
    from pos_client.program import load_program_document, resolve_program_path

    # The programme checked here, once, for every worker count: a bad file is one line
    # naming the operator's file, not workers failing one after another.
    document = load_program_document(settings.program, settings.config_dir)
    program = document.parse(str(resolve_program_path(settings.program, settings.config_dir)))
    from loyalty_server.pass_routes import signers
    from loyalty_server.passes import PassesUnavailable

    try:  # wallet pass keys checked before serving: a wrong key would sign passes no phone takes
        signers(settings.passes, program.name)
    except PassesUnavailable as exc:
        complain(f"wallet passes: {exc}")
        return 2
    from pos_client.privacy import load_or_create_key

    try:  # the store's phone key: read (or made) here, so a bad file is one line
        load_or_create_key(settings.phone_key_file)
    except (OSError, ValueError) as exc:
        complain(f"phone key file: {getattr(exc, 'strerror', None) or exc}")
        return 2
    if not args.no_migrate:
        migrate(settings.database_url)
    else:
        problem = schema_problem(args, settings.database_url)
        if problem:  # serving an old schema would answer every request wrongly
            complain(problem)
            return 2
    # X-Forwarded-For is believed only from the proxies the store names: uvicorn's default
    # (trust it from 127.0.0.1) let anyone behind a same-host TCP relay pick the address the
    # pairing lockout counts.
    trusted = os.environ.get("LOYALTY_SERVER_TRUSTED_PROXIES", "").strip()
    raw_workers = os.environ.get("LOYALTY_SERVER_WORKERS", "").strip() or "1"
    if not raw_workers.isdigit() or not 1 <= int(raw_workers) <= 64:
        complain("LOYALTY_SERVER_WORKERS: expected a whole number from 1 to 64")
        return 2
    workers = args.workers or int(raw_workers)
    served: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
    }
    if workers > 1:
        # Each worker process builds its own app from the environment: hand it the
        # settings given on the command line. Nothing that matters is kept in a worker's
        # memory (limits and lockouts are in the database), so N workers behave as one.
        # The programme is the file as it was at this start, copied aside: a worker
        # restarted later (a crash) must not read a file edited since and serve another
        # programme beside the others.
        # Kept beside the server's key file (its own folder, which no temp cleaner ages
        # out), private, and removed when the server stops.
        snapshot = settings.phone_key_file.resolve().parent / f".program-{os.getpid()}.toml"
        snapshot.unlink(missing_ok=True)
        descriptor = os.open(snapshot, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(document.source)
            os.environ["LOYALTY_SERVER_DATABASE_URL"] = settings.database_url
            os.environ["LOYALTY_SERVER_PROGRAM"] = str(snapshot)
            os.environ["LOYALTY_SERVER_PHONE_KEY_FILE"] = str(settings.phone_key_file)
            uvicorn.run(
                "loyalty_server.app:app_from_environment",
                factory=True,
                workers=workers,
                **served,
            )
        finally:
            snapshot.unlink(missing_ok=True)
        return 0
    uvicorn.run(create_app(settings), **served)
    return 0


def engine_for(args: argparse.Namespace) -> Any:
    from pos_client.ledger import make_engine

    return make_engine(settings_from(args).database_url)


def cmd_terminal_add(args: argparse.Namespace) -> int:
    from loyalty_server.terminals import add_terminal, name_problem

    settings = settings_from(args)
    name = unicodedata.normalize("NFC", args.name)
    problem = name_problem(name)
    if problem:
        complain(f"terminal name '{shown_cut(name)}': {problem}")
        return 2
    merchant = ""
    if args.merchant is not None:
        found = coalition_merchant(settings, args.merchant)
        if found is None:
            return 2
        merchant = found
    terminal_id, code = add_terminal(
        engine_for(args), name, settings.pairing_code_ttl_s, merchant=merchant
    )
    of_merchant = f", merchant {merchant}" if merchant else ""
    print(
        f"terminal {terminal_id} ({shown(name)}{of_merchant}); pairing code: {code}"
        f" (valid {settings.pairing_code_ttl_s // 60} min, once)"
    )
    print(f"on the terminal: pos-client pair <server url> {code}")
    return 0


def coalition_merchant(settings: Any, merchant_id: str) -> str | None:
    """`merchant_id` if the programme's coalition names it; else says why and None."""
    from pos_client.program import load_program

    program = load_program(settings.program, settings.config_dir)
    if program.coalition is None:
        complain(f"programme {program.id} is no coalition: it has no merchants")
        return None
    found = program.coalition.merchant(merchant_id)
    if found is None:
        known = ", ".join(m.id for m in program.coalition.merchants)
        complain(f"no merchant '{shown_cut(merchant_id)}' in programme {program.id} ({known})")
        return None
    return found.id


def cmd_merchant_token(args: argparse.Namespace) -> int:
    from loyalty_server.merchants import OPERATOR_KEY, issue_token
    from pos_client.program import load_program

    settings = settings_from(args)
    if args.operator == (args.merchant is not None):
        complain("name one merchant, or --operator (who reads every merchant's settlement)")
        return 2
    if args.operator:
        program = load_program(settings.program, settings.config_dir)
        if program.coalition is None:
            complain(f"programme {program.id} is no coalition: there is nothing to settle")
            return 2
        key: str | None = OPERATOR_KEY
    else:
        key = coalition_merchant(settings, args.merchant)
    if key is None:
        return 2
    token = issue_token(engine_for(args), key)
    who = "the operator" if args.operator else f"merchant {key}"
    print(f"{who}; settlement token (shown once; an earlier one no longer works): {token}")
    print("read with: GET /v1/settlement?from=YYYY-MM-DD&to=YYYY-MM-DD, Authorization: Bearer")
    return 0


def cmd_merchant_revoke(args: argparse.Namespace) -> int:
    from loyalty_server.merchants import OPERATOR_KEY, revoke
    from pos_client.program import merchant_id_problem

    key = OPERATOR_KEY if args.operator else (args.merchant or "")
    known = args.operator or merchant_id_problem(key) is None  # "*" is the operator's alone
    if not key or not known or not revoke(engine_for(args), key):
        complain(f"no active settlement token for {shown_cut(key) or 'nobody'}")
        return 1
    print("settlement token revoked: it no longer works")
    return 0


def parse_day(text: str, option: str) -> Any:
    from datetime import date

    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    complain(f"{option}: expected a date as YYYY-MM-DD, got '{shown_cut(text)}'")
    return None


def cmd_settlement(args: argparse.Namespace) -> int:
    """The coalition's settlement for the store days FROM..TO (inclusive), as CSV: one row
    per merchant (the operator first), or with --payments one row per pair that owes."""
    from zoneinfo import ZoneInfo

    from pos_client.files import write_private_atomically
    from pos_client.ledger.settlement import (
        CSV_COLUMNS,
        PAYMENT_COLUMNS,
        merchant_row,
        payment_row,
        settlement_for,
    )
    from pos_client.program import load_program

    settings = settings_from(args)
    program = load_program(settings.program, settings.config_dir)
    if program.coalition is None:
        complain(f"programme {program.id} is no coalition: there is nothing to settle")
        return 2
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if start is None or end is None:
        return 2
    try:
        report = settlement_for(
            engine_for(args),
            program.coalition,
            start,
            end,
            ZoneInfo(settings.timezone),
            program.currency,
        )
    except ValueError as exc:
        complain(f"--from {start} --to {end}: {exc}")
        return 2
    columns, rows = (
        (PAYMENT_COLUMNS, [payment_row(p) for p in report.payments])
        if args.payments
        else (CSV_COLUMNS, [merchant_row(m) for m in report.merchants])
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if not args.out:
        sys.stdout.write(text.getvalue())
        return 0
    target = Path(args.out)
    if target.exists() or target.is_symlink():
        complain(f"--out '{shown_cut(args.out)}' exists: name a new file (nothing is overwritten)")
        return 2
    try:  # whole or not at all: written beside it, then renamed into place
        write_private_atomically(target, text.getvalue())
    except OSError as exc:
        complain(f"--out '{shown_cut(args.out)}': {exc.strerror or type(exc).__name__}")
        return 2
    print(
        f"settlement {start}..{end} ({program.currency}): {len(rows)} row(s)"
        f" in {shown_cut(args.out)}"
    )
    return 0


def cmd_terminal_revoke(args: argparse.Namespace) -> int:
    from loyalty_server.strict import UUID_PATTERN
    from loyalty_server.terminals import revoke

    # Terminal ids are UUIDs (as `terminal add` printed them, lowercase; a copy in capitals
    # is the same id): anything else (bytes that are no UTF-8 too) is no terminal.
    terminal_id = args.terminal_id.lower()
    if not UUID_PATTERN.match(terminal_id) or not revoke(engine_for(args), terminal_id):
        complain(f"no terminal {shown(args.terminal_id)}")
        return 1
    print(f"terminal {terminal_id} revoked: its token no longer works")
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
        complain(
            f"'{shown(args.name)}' is not a partner that transfers into programme {program.id}"
            f" (partners: {', '.join(inbound) or 'none'})"
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

    if (
        not args.name.isprintable()
        or not args.name.isascii()
        or not revoke(engine_for(args), args.name)
    ):
        complain(f"no active partner {shown(args.name)}")
        return 1
    print(f"partner {args.name} revoked: its token no longer works")
    return 0


MAX_IMPORT_BYTES = 64 * 1024 * 1024  # a members file larger than this is refused unread


def cmd_member_import(args: argparse.Namespace) -> int:
    """CSV columns: first_name,last_name,phone,card_number[,birthday][,consent_text_id].

    Every row is checked as the API checks an enrollment (strict names, GS1 check digits,
    no future birthday, a valid phone); if any row is bad, nothing is imported and each bad
    row is listed with its line and reason (never its phone). Card numbers left empty are
    generated: in-store EAN-13s with their check digit, unique in the file and the store."""
    from loyalty_server import strict
    from pos_client.checkout import new_card_number
    from pos_client.ledger import Ledger
    from pos_client.privacy import PhoneHasher, load_or_create_key
    from pos_client.program import load_program

    settings = settings_from(args)
    program = load_program(settings.program, settings.config_dir)
    check = strict.checker(program.currency)
    ledger = Ledger(engine_for(args), program, check=check)
    hasher = PhoneHasher(load_or_create_key(settings.phone_key_file))
    try:
        rows = read_member_rows(Path(args.csv))
    except ImportRefused as exc:
        complain(f"{shown(args.csv)}: {exc}; nothing imported")
        return 1
    bodies: list[dict[str, Any]] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    phones: dict[str, int] = {}
    cards: dict[str, int] = {}
    for line, row in rows:
        try:
            body, phone_key = member_body(row, args.region, hasher, check)
        except ImportRefused as exc:
            bad.append((line, str(exc)))
            continue
        card = body["card_number"]
        if phone_key in phones:
            bad.append((line, f"the same phone as line {phones[phone_key]}"))
            continue
        if card and card in cards:
            bad.append((line, f"card_number: the same as line {cards[card]}"))
            continue
        phones[phone_key] = line
        if card:
            cards[card] = line
        if ledger.find_member_id("phone", phone_key) is not None:
            bad.append((line, "this phone already belongs to a member"))
            continue
        if card and ledger.find_member_id("card_number", card) is not None:
            bad.append((line, "card_number: already a member's"))
            continue
        bodies.append(body)
        lines.append(line)
    for body in bodies:  # generated after every given number is known
        while not body["card_number"]:
            card = new_card_number()
            if card not in cards and ledger.find_member_id("card_number", card) is None:
                body["card_number"] = card
                cards[card] = -1
    if not bad:
        # Imported members are the operator's: a programme joined by invitation takes them.
        outcomes = ledger.apply_many(bodies, all_or_nothing=True, founder=True)
        for line, outcome in zip(lines, outcomes, strict=True):
            if isinstance(outcome, Exception):
                bad.append((line, getattr(outcome, "message", "refused")))
    if bad:
        for line, reason in sorted(bad):
            complain(f"line {line}: {reason}")
        print(f"imported 0 member(s): {len(bad)} bad row(s); fix them and import the file again")
        return 1
    print(f"imported {len(bodies)} member(s)")
    return 0


class ImportRefused(ValueError):
    """A members file, or one row of it, that cannot be imported (the reason, no phone)."""


def read_member_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The file's rows with their line numbers; refused whole if it is no UTF-8 CSV with a
    first_name and a phone column."""
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ImportRefused(f"larger than {MAX_IMPORT_BYTES // 2**20} MiB")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            if not {"first_name", "phone"} <= columns:
                raise ImportRefused("the header needs first_name and phone columns")
            return [(reader.line_num, row) for row in reader]
    except OSError as exc:
        raise ImportRefused(f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ImportRefused("not UTF-8 text") from None
    except csv.Error as exc:
        raise ImportRefused(f"not a CSV file ({exc})") from None


def member_body(
    row: dict[str, Any], region: str, hasher: Any, check: Any
) -> tuple[dict[str, Any], str]:
    """An enrollment body for one CSV row (card_number "" when one is to be generated) and
    its phone key; ImportRefused with the field and reason, never the value."""
    from datetime import date

    from loyalty_server import strict
    from pos_client.domain import Consent, utcnow, uuid7
    from pos_client.identify import IdentifyError, parse_phone
    from pos_client.operations import EnrollOp, OpRejected, parse_operation

    if None in row or any(value is None for value in row.values()):
        raise ImportRefused("not as many fields as the header")
    try:
        phone = parse_phone(row["phone"], region)
    except IdentifyError as exc:
        raise ImportRefused(f"phone: {exc}") from None
    try:
        text = (row.get("birthday") or "").strip()
        birthday = date.fromisoformat(text) if text else None
    except ValueError:
        raise ImportRefused("birthday: expected a date as YYYY-MM-DD") from None
    card = (row.get("card_number") or "").strip()
    problem = strict.card_number_problem(card) if card else None
    if problem:
        raise ImportRefused(f"card_number: {problem}")
    now = utcnow()
    phone_key = hasher.phone_key(phone.value)
    op = EnrollOp(
        key=uuid7(),
        member_id=uuid7(),
        first_name=row["first_name"].strip(),
        last_name=(row.get("last_name") or "").strip(),
        phone_key=phone_key,
        phone_last=phone.value[-2:],
        card_number=card or "2900000000001",  # a valid stand-in while checking the rest
        consent=Consent((row.get("consent_text_id") or "import").strip(), now, "import"),
        occurred_at=now,
        birthday=birthday,
    )
    body = op.to_body()
    try:  # the API's checks, as the server applies them to an enrollment
        check(parse_operation(body), body)
    except OpRejected as exc:
        raise ImportRefused(exc.message) from None
    body["card_number"] = card
    return body, phone_key


def database_url_problem(database_url: str) -> str | None:
    """Why this URL cannot be used (its text may hold a password: never repeated), or None.
    Parsed, and its driver imported, before any command uses it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
        url.get_dialect().import_dbapi()
    except (ArgumentError, ValueError):
        return (
            "the database URL is not one this server reads (expected e.g."
            " sqlite+pysqlite:///path/store.sqlite or postgresql://user@host/db);"
            " check --database-url or LOYALTY_SERVER_DATABASE_URL"
        )
    except ImportError as exc:
        return (
            f"the database URL names a driver that is not installed ({exc.name or 'unknown'});"
            " use sqlite+pysqlite:// or postgresql:// (psycopg 3)"
        )
    return None


def schema_problem(args: argparse.Namespace, database_url: str) -> str | None:
    """Why this database cannot be written by an admin command yet (with what to run), or
    None when its schema is at the migrations' head."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from pos_client.ledger import make_engine

    url = make_url(database_url)
    given = url.render_as_string(hide_password=True) if args.database_url else None
    run = "loyalty-server migrate" + (f" --database-url '{given}'" if given else "")
    sqlite_file = url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:")
    if sqlite_file and not Path(str(url.database)).exists():
        return f"no database at {url.database}; to create it, run: {run}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        return f"cannot open the database: {shown_cut(reason, 300)}"
    finally:
        engine.dispose()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current - known:
        return (
            f"the database has a newer schema (revision {', '.join(sorted(current - known))})"
            " than this release knows: run the release that made it (never migrate it back)"
        )
    if current != heads:
        state = "has no loyalty schema" if not current else "has an older schema"
        return f"the database {state}; run first: {run}"
    return None


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


def cmd_security_events(args: argparse.Namespace) -> int:
    """The secure-card refusals of the last days, newest first, in the store's time zone:
    what the store reviews (a replayed card is a copy in circulation; a forged one, an
    attempt). A card is shown by the last 4 hex digits of its UID only."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from loyalty_server.schema import security_events
    from pos_client.domain import utcnow

    settings = settings_from(args)
    zone = ZoneInfo(settings.timezone)
    since = utcnow() - timedelta(days=args.days)
    with engine_for(args).connect() as conn:
        rows = conn.execute(
            select(security_events)
            .where(security_events.c.at >= since)
            .order_by(security_events.c.at.desc(), security_events.c.id.desc())
            .limit(1000)
        ).all()
    for row in rows:
        card = f"card ...{row.card[-4:]}" if row.card else "card unknown"
        when = row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}  {row.kind:<10}  terminal {row.terminal_id}  {card}")
    print(f"{len(rows)} security event(s) in the last {args.days} day(s)")
    return 0


def activation_time(text: str, zone_name: str) -> Any:
    """`--activate-at`: "now", or an ISO date and time in the store's zone (an explicit
    offset is taken as given); None (said why) when it is none."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from pos_client.domain import utcnow

    if text.strip().lower() == "now":
        return utcnow()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        complain(
            f"--activate-at '{shown_cut(text)}': expected a date and time such as"
            f" 2026-12-01T00:00 (store time, {zone_name}), or now"
        )
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
    return moment


def read_program_upload(path: Path) -> bytes | None:
    """A programme file's bytes, read as an upload is (a regular file, at most one byte
    past the limit, which the check then refuses); None (said why) when unreadable."""
    import stat

    from pos_client.program import MAX_PROGRAM_BYTES

    try:
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                complain(f"{shown(str(path))}: not a regular file")
                return None
            return handle.read(MAX_PROGRAM_BYTES + 1)
    except OSError as exc:
        complain(f"{shown(str(path))}: cannot read: {exc.strerror}")
        return None


def cmd_program_add(args: argparse.Namespace) -> int:
    """Schedule a programme file to become the rules at --activate-at (store time): checked
    as `serve` checks its programme, then what changes from the rules in force before it."""
    import getpass
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from loyalty_server.program_versions import (
        VersionRefused,
        active_version,
        add_version,
        check_program_source,
        describe_changes,
    )
    from pos_client.program import load_program_document

    settings = settings_from(args)
    activate_at = activation_time(args.activate_at, settings.timezone)
    raw = read_program_upload(Path(args.file))
    if activate_at is None or raw is None:
        return 2
    try:
        uploader = args.uploaded_by or getpass.getuser()
    except (KeyError, OSError):
        uploader = "cli"
    engine = engine_for(args)
    base = load_program_document(settings.program, settings.config_dir)
    before = active_version(engine, activate_at - timedelta(microseconds=1), base)
    try:
        stored = add_version(engine, raw, uploader, activate_at, label=shown(args.file))
    except VersionRefused as exc:
        complain(str(exc))
        return 2
    _document, program = check_program_source(raw, shown(args.file))
    when = stored.activate_at.astimezone(ZoneInfo(settings.timezone))
    print(
        f"version {stored.version} ({program.id}) activates at"
        f" {when:%Y-%m-%d %H:%M:%S} {settings.timezone}; uploaded by {stored.uploaded_by}"
    )
    print(f"changes from version {before.version}:")
    for row in describe_changes(before.parse(f"version {before.version}"), program):
        print(f"  {row}")
    return 0


def cmd_program_list(args: argparse.Namespace) -> int:
    """The programme file the server starts with and every uploaded version, oldest
    activation first, with its status (active, scheduled, past), in store time."""
    from zoneinfo import ZoneInfo

    from loyalty_server.program_versions import list_versions
    from pos_client.domain import utcnow
    from pos_client.program import load_program_document

    settings = settings_from(args)
    zone = ZoneInfo(settings.timezone)
    base = load_program_document(settings.program, settings.config_dir)
    rows = list_versions(engine_for(args), utcnow(), base)
    for row in rows:
        if row.activate_at is None:
            print(f"{row.version}  {row.status:<9}  the programme file ({shown(settings.program)})")
            continue
        when = row.activate_at.astimezone(zone)
        print(
            f"{row.version}  {row.status:<9}  from {when:%Y-%m-%d %H:%M:%S} {settings.timezone}"
            f"  uploaded by {shown(row.uploaded_by or '')}"
        )
    print(f"{len(rows) - 1} uploaded version(s)")
    return 0


def cmd_program_cancel(args: argparse.Namespace) -> int:
    """Forget a version still scheduled (one already in force is replaced by another)."""
    from loyalty_server.program_versions import VersionRefused, cancel_version

    settings_from(args)
    try:
        cancel_version(engine_for(args), args.version)
    except VersionRefused as exc:
        complain(shown_cut(str(exc), 200))
        return 2
    print(f"version {args.version} cancelled")
    return 0


def cmd_card_block(args: argparse.Namespace) -> int:
    """Block a member's cards reported lost or stolen (all, or the one whose UID ends with
    --card): unlinked; their taps refused as security events from then on."""
    from pos_client.ledger import Ledger
    from pos_client.program import load_program

    settings = settings_from(args)
    ledger = Ledger(engine_for(args), load_program(settings.program, settings.config_dir))
    try:
        _member, blocked = ledger.block_member_cards(args.member, args.card or "")
    except ValueError as exc:
        complain(str(exc))
        return 1
    if not blocked:
        complain("no card of this member to block" + (f" ending {args.card}" if args.card else ""))
        return 1
    print(f"blocked {len(blocked)} card(s): {', '.join(blocked)}")
    return 0


def cmd_member_pin_reset(args: argparse.Namespace) -> int:
    """Forget a member's PIN (they forgot it and are at the desk): they choose a new one at
    a terminal. MEMBER is the member's id or card number."""
    from pos_client.ledger import Ledger
    from pos_client.program import load_program

    settings = settings_from(args)
    ledger = Ledger(engine_for(args), load_program(settings.program, settings.config_dir))
    member_id = ledger.member_by_reference(args.member)
    if member_id is None:
        complain("no member with this id or card number")
        return 1
    if not ledger.reset_member_pin(member_id):
        complain("this member has no PIN")
        return 1
    print("PIN forgotten: the member chooses a new one at a terminal")
    return 0


def read_pin(prompt: str) -> str:
    """A PIN typed without echo at a terminal, or the next line of stdin (scripts)."""
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def cmd_user_add(args: argparse.Namespace) -> int:
    """A console account (its password read without echo, or the next line of stdin)."""
    from loyalty_server.console.accounts import add_user

    password = read_pin("password: ")
    try:
        add_user(engine_for(args), args.name, args.role, password)
    except ValueError as exc:
        complain(f"user {shown_cut(args.name)}: {exc}")
        return 2
    print(f"user {args.name}: {args.role}")
    return 0


DEMO_PORT = 8787


def seed_demo_store(database_url: str, key_file: Path, program: str, config_dir: Path) -> None:
    """A new demo store: its schema and the demo members with their history."""
    from pos_client.demo import seed_demo_members
    from pos_client.ledger import Ledger, make_engine
    from pos_client.privacy import PhoneHasher, load_or_create_key
    from pos_client.program import load_program

    migrate(database_url)
    ledger = Ledger(make_engine(database_url), load_program(program, config_dir))
    seed_demo_members(ledger, PhoneHasher(load_or_create_key(key_file)))
    ledger.engine.dispose()


def demo_port(wanted: int) -> int:
    """`wanted` if free on loopback, else any free port."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cmd_demo(args: argparse.Namespace) -> int:
    """The store server with its console on loopback over a demo store (made once in
    FOLDER), a manager and an auditor with new passwords printed; then `--then COMMAND`
    (the terminal's demo); the server runs until Ctrl+C (or, with no terminal attached
    to stdin, until the command ends). It stops only the server it started."""
    import secrets
    import signal
    import subprocess
    import time
    import urllib.request

    from loyalty_server.console.accounts import add_user
    from pos_client.ledger import make_engine

    settings = from_environment()
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "store.sqlite"
    url = f"sqlite+pysqlite:///{database}"
    key_file = folder / "store-phone.key"
    if not database.exists():
        seed_demo_store(url, key_file, settings.program, settings.config_dir)
    else:
        migrate(url)
    logins = {role: secrets.token_urlsafe(9) for role in ("manager", "auditor")}
    engine = make_engine(url)
    for role, password in logins.items():
        add_user(engine, role, role, password)
    engine.dispose()
    port = demo_port(args.port)

    def stop_on_term(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so `finally` stops the server below, as Ctrl+C does

    signal.signal(signal.SIGTERM, stop_on_term)
    server = subprocess.Popen(
        [sys.executable, "-m", "loyalty_server.cli", "serve", "--database-url", url,
         "--phone-key-file", str(key_file), "--host", "127.0.0.1", "--port", str(port)],
        stdout=(folder / "server.log").open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        address = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(address + "/console/login", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    complain(f"the store server did not start; see {folder / 'server.log'}")
                    return 1
                time.sleep(0.2)
        print(f"store console: {address}/console/")
        print(f"  sign in as manager / {logins['manager']}   (read-only: auditor / "
              f"{logins['auditor']})")  # fmt: skip
        print(f"  pair a till: the console's Terminals page, then pos-client pair {address} CODE")
        from pos_client.demo import DEMO_MEMBERS

        for member in DEMO_MEMBERS:  # what a manager types to find them
            print(
                f"  demo member {member.first_name} {member.last_name}: card"
                f" {member.card_number}, phone {member.phone}"
            )
        sys.stdout.flush()
        try:
            status = subprocess.call(args.then) if args.then else 0
            if sys.stdin.isatty() or not args.then:
                print("the store server runs until Ctrl+C")
                sys.stdout.flush()
                server.wait()
        except KeyboardInterrupt:  # Ctrl+C or SIGTERM: stopped as asked
            return 0
        return status
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def cmd_user_disable(args: argparse.Namespace) -> int:
    from loyalty_server.console.accounts import disable_user

    if not disable_user(engine_for(args), args.name):
        complain(f"user {shown_cut(args.name)}: no such active user")
        return 1
    print(f"user {args.name}: disabled, signed out")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from loyalty_server.console.accounts import list_users

    for name, role, active in list_users(engine_for(args)):
        print(f"{name}\t{role}\t{'active' if active else 'disabled'}")
    return 0


def cmd_staff_add(args: argparse.Namespace) -> int:
    """A staff member who may award points (their PIN read without echo, or from stdin)."""
    from pos_client.ledger.staff_awards import add_staff

    name = unicodedata.normalize("NFC", args.name or args.staff_id)
    try:
        existed = add_staff(engine_for(args), args.staff_id, name, read_pin("staff PIN: "))
    except ValueError as exc:
        complain(f"staff {shown_cut(args.staff_id)}: {exc}")
        return 2
    print(f"staff {args.staff_id}: {'new PIN' if existed else 'added'}")
    return 0


def cmd_staff_remove(args: argparse.Namespace) -> int:
    from pos_client.ledger.staff_awards import remove_staff

    if not remove_staff(engine_for(args), args.staff_id):
        complain(f"no staff member {shown_cut(args.staff_id)}")
        return 1
    print(f"staff {args.staff_id} removed: their PIN no longer works; their awards stay")
    return 0


def days_back(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3660:
        raise argparse.ArgumentTypeError("a number of days from 1 to 3660")
    return int(text)


def cmd_staff_awards(args: argparse.Namespace) -> int:
    """The audit trail of staff awards: when, member, points, who gave, who approved, why."""
    from datetime import timedelta

    from pos_client.domain import utcnow
    from pos_client.ledger.staff_awards import awards_since

    found = awards_since(engine_for(args), utcnow() - timedelta(days=args.days))
    if not found:
        print(f"no staff awards in the last {args.days} day(s)")
    for award in found:
        approved = f" approved by {award.approver_id}" if award.approver_id else ""
        print(
            f"{award.awarded_at:%Y-%m-%d %H:%M}  member {award.member_id}  +{award.points}"
            f"  by {award.staff_id}{approved}  at {award.terminal_id}  {shown(award.reason)}"
        )
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    """Expire points past the programme's expiry (for cron or a systemd timer); prints each
    member id and the points expired, never a phone or a card."""
    from datetime import UTC, datetime, time
    from zoneinfo import ZoneInfo

    from pos_client.domain import utcnow
    from pos_client.ledger import Ledger
    from pos_client.program import load_program

    settings = settings_from(args)
    migrate(settings.database_url)
    zone = ZoneInfo(settings.timezone)
    if args.as_of:
        try:
            day = datetime.strptime(args.as_of, "%Y-%m-%d").date()
        except ValueError:
            complain(f"--as-of: expected a date as YYYY-MM-DD, got {args.as_of!r}")
            return 2
        today = utcnow().astimezone(zone).date()
        if day > today:  # expiry cannot be undone: never ahead of the calendar
            complain(
                f"--as-of {day.isoformat()}: after today ({today.isoformat()} in"
                f" {settings.timezone}); points due later expire on their day, not before"
            )
            return 2
        # The start of the store's day: what is due on that day expires.
        try:
            as_of = datetime.combine(day, time(), zone).astimezone(UTC)
        except (OverflowError, ValueError):
            complain(f"--as-of {day.isoformat()}: too early a date")
            return 2
    else:
        as_of = utcnow()
    program = load_program(settings.program, settings.config_dir)
    if not program.expiry.enabled:
        print("the programme's points do not expire")
        return 0
    ledger = Ledger(engine_for(args), program, zone=zone)
    expired = ledger.expire(as_of)
    for member_id, points in expired:
        print(f"member {member_id}: {points} point(s) expired")
    total = sum(points for _member, points in expired)
    print(f"expired {total} point(s) of {len(expired)} member(s) as of {as_of.isoformat()}")
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
    sub.add_argument("--merchant", help="the coalition merchant whose till it is")
    sub.set_defaults(handler=cmd_terminal_add, needs_schema=True)
    sub = terminal.add_parser("revoke", help="revoke a terminal's token")
    common(sub)
    sub.add_argument("terminal_id")
    sub.set_defaults(handler=cmd_terminal_revoke, needs_schema=True)

    partner = commands.add_parser("partner", help="partner programmes").add_subparsers(
        dest="partner_command", required=True
    )
    sub = partner.add_parser("add", help="give a partner a token for inbound transfers")
    common(sub)
    sub.add_argument("name", help="the partner's id in the programme (e.g. sky-miles)")
    sub.set_defaults(handler=cmd_partner_add, needs_schema=True)
    sub = partner.add_parser("revoke", help="revoke a partner's token")
    common(sub)
    sub.add_argument("name")
    sub.set_defaults(handler=cmd_partner_revoke, needs_schema=True)

    merchant = commands.add_parser(
        "merchant", help="coalition merchants' settlement tokens"
    ).add_subparsers(dest="merchant_command", required=True)
    for name, handler, text in (
        ("token", cmd_merchant_token, "give a merchant a token to read its settlement"),
        ("revoke", cmd_merchant_revoke, "revoke a merchant's settlement token"),
    ):
        sub = merchant.add_parser(name, help=text)
        common(sub)
        sub.add_argument("merchant", nargs="?", help="the merchant's id in the programme")
        sub.add_argument("--operator", action="store_true", help="the operator's token")
        sub.set_defaults(handler=handler, needs_schema=True)

    staff = commands.add_parser("staff", help="staff who award points").add_subparsers(
        dest="staff_command", required=True
    )
    sub = staff.add_parser("add", help="add a staff member (or set a new PIN)")
    common(sub)
    sub.add_argument("staff_id")
    sub.add_argument("--name")
    sub.set_defaults(handler=cmd_staff_add, needs_schema=True)
    sub = staff.add_parser("remove", help="remove a staff member (their awards stay)")
    common(sub)
    sub.add_argument("staff_id")
    sub.set_defaults(handler=cmd_staff_remove, needs_schema=True)
    sub = staff.add_parser("awards", help="the audit trail of staff awards")
    common(sub)
    sub.add_argument("--days", type=days_back, default=30, help="1 to 3660 (default 30)")
    sub.set_defaults(handler=cmd_staff_awards, needs_schema=True)

    sub = commands.add_parser(
        "demo", help="the store server and its console over a demo store, on loopback"
    )
    sub.add_argument("--folder", default="demo-output/store")
    sub.add_argument("--port", type=int, default=DEMO_PORT)
    sub.add_argument("--then", nargs=argparse.REMAINDER, help="a command to run meanwhile")
    sub.set_defaults(handler=cmd_demo)
    user = commands.add_parser("user", help="console accounts").add_subparsers(
        dest="user_command", required=True
    )
    sub = user.add_parser("add", help="add a console account (or set a new password and role)")
    common(sub)
    sub.add_argument("name")
    sub.add_argument("--role", choices=("manager", "auditor"), required=True)
    sub.set_defaults(handler=cmd_user_add, needs_schema=True)
    sub = user.add_parser("disable", help="disable a console account and end its sessions")
    common(sub)
    sub.add_argument("name")
    sub.set_defaults(handler=cmd_user_disable, needs_schema=True)
    sub = user.add_parser("list", help="console accounts")
    common(sub)
    sub.set_defaults(handler=cmd_user_list, needs_schema=True)
    sub = commands.add_parser("settlement", help="a coalition's settlement for a period, as CSV")
    common(sub)
    sub.add_argument("--from", dest="start", required=True, help="first store day, YYYY-MM-DD")
    sub.add_argument("--to", dest="end", required=True, help="last store day, YYYY-MM-DD")
    sub.add_argument("--payments", action="store_true", help="who owes whom, not per merchant")
    sub.add_argument("--out", help="write the CSV to this file")
    sub.set_defaults(handler=cmd_settlement, needs_schema=True)

    member = commands.add_parser("member", help="members").add_subparsers(
        dest="member_command", required=True
    )
    sub = member.add_parser("import", help="import members from CSV")
    common(sub)
    sub.add_argument("csv")
    sub.add_argument("--region", default="US", help="region for phone numbers without +")
    sub.set_defaults(handler=cmd_member_import, needs_schema=True)
    sub = member.add_parser("pin-reset", help="forget a member's PIN (they forgot it)")
    common(sub)
    sub.add_argument("member", help="the member's id or card number")
    sub.set_defaults(handler=cmd_member_pin_reset, needs_schema=True)

    card = commands.add_parser("card", help="member cards").add_subparsers(
        dest="card_command", required=True
    )
    sub = card.add_parser("block", help="block a member's lost or stolen cards")
    common(sub)
    sub.add_argument("member", help="the member's id or card number")
    sub.add_argument("--card", help="only the card whose UID ends with these hex digits")
    sub.set_defaults(handler=cmd_card_block, needs_schema=True)

    program = commands.add_parser(
        "program", help="programme versions that become the rules at a time"
    ).add_subparsers(dest="program_command", required=True)
    sub = program.add_parser("add", help="schedule a programme file to become the rules")
    common(sub)
    sub.add_argument("file", help="the programme's TOML file")
    sub.add_argument(
        "--activate-at",
        required=True,
        help="when, store time (LOYALTY_SERVER_TIMEZONE): e.g. 2026-12-01T00:00, or now",
    )
    sub.add_argument("--as", dest="uploaded_by", help="who uploads it (default: your user)")
    sub.set_defaults(handler=cmd_program_add, needs_schema=True)
    sub = program.add_parser("list", help="the programme file and the versions uploaded")
    common(sub)
    sub.set_defaults(handler=cmd_program_list, needs_schema=True)
    sub = program.add_parser("cancel", help="cancel a version not active yet")
    common(sub)
    sub.add_argument("version", help="the version, as `program list` shows it")
    sub.set_defaults(handler=cmd_program_cancel, needs_schema=True)

    sub = commands.add_parser("purge", help="forget idempotency keys past the retention window")
    common(sub)
    sub.set_defaults(handler=cmd_purge, needs_schema=True)

    sub = commands.add_parser("expire", help="expire points past the programme's expiry")
    common(sub)
    sub.add_argument("--as-of", help="the store day to expire as of (YYYY-MM-DD; default now)")
    sub.set_defaults(handler=cmd_expire, needs_schema=True)

    sub = commands.add_parser(
        "security-events", help="secure cards refused: forged, unreadable, replayed"
    )
    common(sub)
    sub.add_argument("--days", type=int, default=7, choices=range(1, 3661), metavar="DAYS")
    sub.set_defaults(handler=cmd_security_events, needs_schema=True)

    sub = commands.add_parser("openapi", help="print the OpenAPI spec")
    sub.add_argument("--out")
    sub.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Every file the server and its commands create (the database, its -wal and -shm, the
    # key file) is the server user's alone, whatever umask it was started with.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    from alembic.util.exc import CommandError as AlembicError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pos_client.configfile import ConfigError

    try:
        if getattr(args, "needs_schema", False):
            # A command that reads or writes the ledger on a database not migrated to this
            # release says what to run, rather than failing on a missing table.
            problem = schema_problem(args, settings_from(args).database_url)
            if problem:
                complain(problem)
                return 2
        code: int = args.handler(args)
    except ConfigError as exc:  # the programme or settings file: its key and problem
        complain(shown_cut(str(exc), 500))
        return 2
    except ArgumentError:  # its text may hold the URL, password and all: not shown
        complain(
            "the database URL is not one this server reads (expected e.g."
            " sqlite+pysqlite:///path/store.sqlite or postgresql://user@host/db);"
            " check --database-url or LOYALTY_SERVER_DATABASE_URL"
        )
        return 2
    except AlembicError as exc:  # a revision this release does not know, and the like
        complain(f"the database's schema: {shown_cut(str(exc).splitlines()[0], 300)}")
        return 2
    except SQLAlchemyError as exc:  # unreachable, refused, no such database
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        complain(f"cannot open the database: {shown_cut(reason, 300)}")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
