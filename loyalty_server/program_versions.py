"""Programme versions uploaded while the server runs (the console, `loyalty-server program
add`), each active from its `activate_at` until a later one's; the programme file the server
starts with (the base) stands before the first. Every worker process reads which version is
active from the database (`ActiveProgram`), so a scheduled change takes effect in all of them
within seconds of its time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from loyalty_server.schema import program_versions
from loyalty_server.schema import terminals as terminals_table
from pos_client.configfile import ConfigError
from pos_client.domain import utcnow
from pos_client.ledger import Ledger
from pos_client.program import MAX_PROGRAM_BYTES, ProgramDocument, program_to_json
from pos_client.program_words import (
    PERIODS,
    describe_program,
    earning,
    number,
    other_rules,
    points,
    rewards,
    tier_line,
    tiers,
)
from pos_client.rules import EarnMode, Program

log = logging.getLogger("loyalty_server")

# An activation this far in the past is a mistake (a date typed wrong), not "now".
PAST_TOLERANCE = timedelta(minutes=1)
FURTHEST_AHEAD = timedelta(days=365)
REFRESH_S = 5.0  # how stale a worker's view of the active version may be, at most
UPLOADER_MAX = 32  # the column's width


class ProgramSourceError(ConfigError):
    """An uploaded programme refused: the message says why, as the CLI says it of a file."""


class VersionRefused(ValueError):
    """A version that cannot be added or cancelled (when, who, already stored, active)."""


# ------------------------------------------------------------------ checking an upload


def check_program_source(source: str | bytes, label: str) -> tuple[ProgramDocument, Program]:
    """An uploaded programme text checked as `loyalty-server serve` and `pos-client program
    show` check a programme file (the same ConfigError texts, `label` in place of the
    file's path), bounded first: at most 256 KiB, UTF-8, no control characters but tab,
    newline and carriage return. ProgramSourceError says what is wrong."""
    if isinstance(source, str):
        try:
            raw = source.encode()
        except UnicodeEncodeError:
            raise ProgramSourceError(f"{label}: not UTF-8 text") from None
    else:
        raw = bytes(source)
    if len(raw) > MAX_PROGRAM_BYTES:
        raise ProgramSourceError(
            f"{label}: a programme larger than {MAX_PROGRAM_BYTES} bytes"
            f" ({MAX_PROGRAM_BYTES // 1024} KiB)"
        )
    try:
        text = raw.decode().removeprefix("\ufeff")  # a BOM some editors write
    except UnicodeDecodeError as exc:
        raise ProgramSourceError(
            f"{label}: not UTF-8 text (byte {exc.start} cannot be read)"
        ) from None
    for index, char in enumerate(text):
        code = ord(char)
        if (code < 0x20 and char not in "\t\n\r") or code == 0x7F:
            line = text.count("\n", 0, index) + 1
            raise ProgramSourceError(
                f"{label}: line {line}: a control character (U+{code:04X}) in a programme"
                " text; only tab, newline and carriage return are allowed"
            )
    document = ProgramDocument.of(text)
    try:
        program = document.parse(label)
    except ConfigError as exc:
        raise ProgramSourceError(str(exc)) from None
    except RecursionError:  # tables or arrays nested thousands deep
        raise ProgramSourceError(f"{label}: not valid TOML: nested too deeply") from None
    return document, program


# ------------------------------------------------------------------ the stored versions


@dataclass(frozen=True)
class StoredVersion:
    version: str
    uploaded_at: datetime
    uploaded_by: str
    activate_at: datetime


@dataclass(frozen=True)
class VersionRow:
    """A row of `list_versions`: `status` is active, scheduled or past; the base (the
    programme file the server started with) has no times and is active until the first
    upload's activation, past after."""

    version: str
    status: str  # active | scheduled | past
    activate_at: datetime | None  # None: the base
    uploaded_at: datetime | None
    uploaded_by: str | None
    program_id: str | None = None  # the base's id; an upload's is parsed only on demand

    @property
    def is_base(self) -> bool:
        return self.activate_at is None


def stored_versions(engine: Engine) -> list[StoredVersion]:
    """Every uploaded version, by activation time (oldest first), without its text."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                program_versions.c.version,
                program_versions.c.uploaded_at,
                program_versions.c.uploaded_by,
                program_versions.c.activate_at,
            ).order_by(program_versions.c.activate_at, program_versions.c.version)
        ).all()
    return [StoredVersion(r.version, r.uploaded_at, r.uploaded_by, r.activate_at) for r in rows]


def stored_source(engine: Engine, version: str) -> str | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(program_versions.c.source).where(program_versions.c.version == version)
        ).scalar_one_or_none()
    return str(found) if found is not None else None


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise VersionRefused(f"{name}: a time without a time zone")
    return moment


def unnamed_merchants(engine: Engine, program: Program) -> list[str]:
    """Merchants that paired terminals (not revoked) belong to, which `program`'s coalition
    does not name: under it they would earn at the base rates and settle under an unknown
    merchant."""
    named = {m.id for m in program.coalition.merchants} if program.coalition else set()
    with engine.connect() as conn:
        merchants = conn.execute(
            select(terminals_table.c.merchant)
            .where(terminals_table.c.merchant != "", terminals_table.c.revoked_at.is_(None))
            .distinct()
        ).scalars()
        return sorted(str(m) for m in merchants if m not in named)


def add_version(
    engine: Engine,
    source: str | bytes,
    uploaded_by: str,
    activate_at: datetime,
    now: datetime | None = None,
    label: str = "uploaded programme",
) -> StoredVersion:
    """Check and store a programme version that becomes active at `activate_at` (aware).
    Refused (ProgramSourceError, with the CLI's message): a text that is no valid
    programme. Refused (VersionRefused): an activation more than a minute past or more
    than a year ahead, or at the same moment as another version's; a version (the text's
    hash) already stored; a coalition that no longer names a merchant whose terminals are
    paired; an uploader's name empty, longer than 32 characters or not printable."""
    now = _aware(now or utcnow(), "now")
    activate_at = _aware(activate_at, "activate_at")
    name = uploaded_by.strip()
    if not name or len(name) > UPLOADER_MAX or not name.isprintable():
        raise VersionRefused(
            f"uploaded_by: 1 to {UPLOADER_MAX} printable characters (a user's name)"
        )
    document, program = check_program_source(source, label)
    if activate_at < now - PAST_TOLERANCE:
        raise VersionRefused("activate_at is in the past: a version activates from now on")
    if activate_at > now + FURTHEST_AHEAD:
        raise VersionRefused("activate_at is more than a year ahead")
    orphans = unnamed_merchants(engine, program)
    if orphans:
        raise VersionRefused(
            f"programme {program.id} does not name merchant(s) {', '.join(orphans)}, whose"
            " terminals are paired: add them to its coalition, or revoke those terminals first"
        )
    stored = StoredVersion(document.version, now, name, activate_at)
    try:
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            taken = conn.execute(
                select(program_versions.c.version).where(
                    (program_versions.c.version == document.version)
                    | (program_versions.c.activate_at == activate_at)
                )
            ).all()
            if taken:
                if any(row.version == document.version for row in taken):
                    raise VersionRefused(
                        f"version {document.version} is already stored (this very text was"
                        " uploaded before): cancel it first to schedule it again"
                    )
                raise VersionRefused("another version activates at that very moment")
            conn.execute(
                program_versions.insert().values(
                    version=document.version,
                    source=document.source,
                    uploaded_at=now,
                    uploaded_by=name,
                    activate_at=activate_at,
                )
            )
    except IntegrityError:  # a concurrent upload of the same text won
        raise VersionRefused(f"version {document.version} is already stored") from None
    return stored


def cancel_version(engine: Engine, version: str, now: datetime | None = None) -> None:
    """Delete a version that is still scheduled. Refused (VersionRefused): no such
    version, or one whose activation time has come (it is, or was, the rules)."""
    now = _aware(now or utcnow(), "now")
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        found = conn.execute(
            select(program_versions.c.activate_at).where(program_versions.c.version == version)
        ).scalar_one_or_none()
        if found is None:
            raise VersionRefused(f"no uploaded version {version}")
        if found <= now:
            raise VersionRefused(
                f"version {version} is already active (or was): upload the rules wanted"
                " instead, activating when they should"
            )
        conn.execute(program_versions.delete().where(program_versions.c.version == version))


def _active_among(versions: Iterable[StoredVersion], now: datetime) -> StoredVersion | None:
    active = None
    for stored in versions:  # by activation time
        if stored.activate_at <= now:
            active = stored
    return active


def active_version(engine: Engine, now: datetime, base: ProgramDocument) -> ProgramDocument:
    """The programme in force at `now`: the uploaded version with the latest activation
    at or before it, else the base (the programme file the server started with)."""
    active = _active_among(stored_versions(engine), now)
    if active is None:
        return base
    source = stored_source(engine, active.version)
    return base if source is None else ProgramDocument(active.version, source)


def list_versions(engine: Engine, now: datetime, base: ProgramDocument) -> list[VersionRow]:
    """The base and every uploaded version, oldest activation first, each with its status."""
    versions = stored_versions(engine)
    active = _active_among(versions, now)
    rows = [VersionRow(base.version, "past" if active is not None else "active", None, None, None)]
    for stored in versions:
        status = (
            "active" if stored is active else "scheduled" if stored.activate_at > now else "past"
        )
        rows.append(
            VersionRow(
                stored.version,
                status,
                stored.activate_at,
                stored.uploaded_at,
                stored.uploaded_by,
            )
        )
    return rows


# ------------------------------------------------------------------ what changes


def _rate_words(program: Program, rate: Decimal) -> str:
    return f"{number(rate)} {program.unit_name}"


def describe_changes(old: Program, new: Program) -> list[str]:
    """What changes from `old` to `new`, one plain English sentence a line: earning rates
    (base and per category), tiers, rewards, points as money, birthday, expiry, then any
    other rule's sentence that differs. ["No change to the rules."] when there is none."""
    if old == new:
        return ["No change to the rules."]
    rows: list[str] = []
    if (old.id, old.name) != (new.id, new.name):
        rows.append(f"Programme: {old.name} ({old.id}) becomes {new.name} ({new.id}).")
    if old.currency != new.currency:
        rows.append(f"Currency: {old.currency} becomes {new.currency}.")
    if old.unit_name != new.unit_name:
        rows.append(f"Unit: {old.unit_name} become {new.unit_name}.")
    rows += _earning_changes(old, new)
    if old.tiers.period != new.tiers.period:
        rows.append(
            f"Tiers: now counted {PERIODS[new.tiers.period]} (was {PERIODS[old.tiers.period]})."
        )
    rows += _tier_changes(old, new)
    rows += _reward_changes(old, new)
    rows += _money_changes(old, new)
    rows += _birthday_changes(old, new)
    if old.expiry != new.expiry:
        rows.append(_was_now("Expiry", _expiry_line(old), _expiry_line(new)))
    rows += _other_changes(old, new, covered=rows)
    return rows or ["No change to the rules as a manager reads them (only names or wording)."]


def _earning_changes(old: Program, new: Program) -> list[str]:
    rows = []
    if _base_rate(old) != _base_rate(new):
        rows.append(f"Earning: {_base_rate(new)} (was {_base_rate(old)}).")
    before, after = old.earn.category_rates, new.earn.category_rates
    for category in sorted(before.keys() | after.keys()):
        name = new.category_name(category, "en") if category in after else category
        if category in before and category in after:
            name = new.category_name(category, "en")
            if before[category] != after[category]:
                rows.append(
                    f"Earning on {name}: {_rate_words(old, before[category])} becomes"
                    f" {_rate_words(new, after[category])}."
                )
        elif category in after:
            rows.append(
                f"Earning on {name}: now {_rate_words(new, after[category])} (was the base rate)."
            )
        else:
            name = old.category_name(category, "en")
            rows.append(
                f"Earning on {name}: back to the base rate (was"
                f" {_rate_words(old, before[category])})."
            )
    return rows


def _base_rate(program: Program) -> str:
    earn = program.earn
    if earn.by_unit is not None and not earn.by_unit.with_amount:
        return earning(program)[0].rstrip(".")
    if earn.mode is EarnMode.PER_PURCHASE:
        return f"{points(program, earn.rate)} per purchase"
    return f"{points(program, earn.rate)} per {number(earn.unit)} {program.currency} spent"


def _tier_changes(old: Program, new: Program) -> list[str]:
    rows = []
    before = {tier.id: tier for tier in old.tiers.tiers}
    after = {tier.id for tier in new.tiers.tiers}
    for tier in old.tiers.tiers:
        if tier.id not in after:
            rows.append(f"Tier removed: {tier.name} ({tier.id}).")
    for tier in new.tiers.tiers:
        was = before.get(tier.id)
        if was is None:
            rows.append(f"Tier added: {tier_line(new, tier).strip()}")
            continue
        if was.threshold != tier.threshold:
            rows.append(
                f"Tier {tier.name} ({tier.id}): reached at {number(tier.threshold)}"
                f" (was {number(was.threshold)})."
            )
        if was.multiplier != tier.multiplier:
            rows.append(
                f"Tier {tier.name} ({tier.id}): earns x{number(tier.multiplier)}"
                f" (was x{number(was.multiplier)})."
            )
        same_numbers = (was.threshold, was.multiplier) == (tier.threshold, tier.multiplier)
        if same_numbers and tier_line(old, was) != tier_line(new, tier):
            rows.append(f"Tier {tier.name} ({tier.id}) becomes: {tier_line(new, tier).strip()}")
    return rows


def _reward_changes(old: Program, new: Program) -> list[str]:
    rows = []
    before = {reward.id: reward for reward in old.catalog}
    after = {reward.id: reward for reward in new.catalog}
    for reward in old.catalog:
        if reward.id not in after:
            rows.append(f"Reward removed: {reward.name} ({reward.id}).")
    for reward in new.catalog:
        was = before.get(reward.id)
        if was is None:
            rows.append(
                f"Reward added: {reward.name} ({reward.id}) for {points(new, reward.cost)}."
            )
        elif was.cost != reward.cost:
            rows.append(
                f"Reward {reward.name} ({reward.id}): costs {points(new, reward.cost)}"
                f" (was {points(old, was.cost)})."
            )
        elif was != reward:
            rows.append(f"Reward {reward.name} ({reward.id}): its terms change.")
    return rows


def _money_changes(old: Program, new: Program) -> list[str]:
    if old.points_as_money == new.points_as_money:
        return []
    lines = {
        program: next((r for r in rewards(program) if r.startswith("Points as money")), None)
        for program in (old, new)
    }
    return [_was_now("Points as money", lines[old] or "not offered", lines[new] or "not offered")]


def _birthday_changes(old: Program, new: Program) -> list[str]:
    if (old.birthday, old.birthday_reward) == (new.birthday, new.birthday_reward):
        return []
    was = [r for r in other_rules(old) if r.startswith("Birthday")]
    now = [r for r in other_rules(new) if r.startswith("Birthday")]
    return [_was_now("Birthday", " ".join(was) or "no gift", " ".join(now) or "no gift")]


def _was_now(topic: str, was: str, now: str) -> str:
    """ "Expiry: was points never expire; now points expire 12 months after they are
    earned." from two of the description's sentences on `topic`."""

    def body(sentence: str) -> str:
        return sentence.removeprefix(f"{topic}:").strip().rstrip(".")

    return f"{topic}: was {body(was)}; now {body(now)}."


def _expiry_line(program: Program) -> str:
    return next(r for r in other_rules(program) if r.startswith("Expiry"))


def _other_changes(old: Program, new: Program, covered: list[str]) -> list[str]:
    """Every other sentence of the programme's description that differs (tiers' period
    and downgrade, offers, actions, transfers, coalition, membership, limits), as no
    longer / now."""
    before, after = _other_rules(old), _other_rules(new)
    rows = [f"No longer: {row.strip()}" for row in before if row not in after]
    rows += [f"Now: {row.strip()}" for row in after if row not in before]
    return [row for row in rows if row not in covered]


def _other_rules(program: Program) -> list[str]:
    """The description's sentences but the head and those describe_changes compares
    itself (base rate, category rates, tiers' lines, rewards, points as money, birthday,
    expiry)."""
    unit = program.unit_name
    handled = {
        *earning(program)[:1],
        *tiers(program)[:1],
        *(tier_line(program, tier) for tier in program.tiers.tiers),
        *(
            f"  {program.category_name(category, 'en')}: {number(rate)} {unit} instead."
            for category, rate in program.earn.category_rates.items()
        ),
    }
    return [
        row
        for row in describe_program(program)[1:]
        if row not in handled
        and not row.startswith(("Reward ", "  or ", "Points as money", "Birthday", "Expiry"))
    ]


# ------------------------------------------------------------------ the active programme


@dataclass(frozen=True)
class ProgramSnapshot:
    """One programme version as a request uses it, start to end: never two in a request."""

    document: ProgramDocument
    program: Program
    ledger: Ledger
    etag: str  # the quoted version, as /v1/program's ETag
    body: dict[str, Any]  # /v1/program's JSON body
    activate_at: datetime | None  # None: the base


def make_snapshot(
    document: ProgramDocument,
    program: Program,
    ledger: Ledger,
    activate_at: datetime | None = None,
) -> ProgramSnapshot:
    body = {**program_to_json(program), "version": document.version, "source": document.source}
    return ProgramSnapshot(document, program, ledger, f'"{document.version}"', body, activate_at)


class ActiveProgram:
    """The programme in force, as one worker process sees it: the base (the file the server
    started with) until an uploaded version's activation time, then that version. Read
    from the database at most every `refresh_s` seconds, and at once when the next known
    activation time has passed; `refresh()` reads it now (after an upload or a cancel).
    A database that cannot be read keeps the version in force (and says so in the log)."""

    def __init__(
        self,
        engine: Engine,
        base: ProgramSnapshot,
        ledger_for: Callable[[ProgramDocument, Program], Ledger],
        refresh_s: float = REFRESH_S,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.base = base
        self.ledger_for = ledger_for
        self.refresh_s = refresh_s
        self.clock = clock
        self.monotonic = monotonic
        self._current = base
        self._next_at: datetime | None = None
        self._read_at: float | None = None  # monotonic time of the last read
        self._lock = threading.Lock()
        self._built: dict[str, ProgramSnapshot] = {base.document.version: base}

    def snapshot(self) -> ProgramSnapshot:
        """The version in force now (read again if due): take it once per request."""
        if self._due():
            with self._lock:
                if self._due():  # not read meanwhile by a request that waited before this one
                    return self._read()
        return self._current

    def _due(self) -> bool:
        read_at, next_at = self._read_at, self._next_at
        return (
            read_at is None
            or self.monotonic() - read_at >= self.refresh_s
            or (next_at is not None and self.clock() >= next_at)
        )

    def refresh(self) -> ProgramSnapshot:
        """Read the version in force from the database now."""
        with self._lock:
            return self._read()

    def _read(self) -> ProgramSnapshot:
        """`refresh`, the lock held."""
        now = self.clock()
        try:
            versions = stored_versions(self.engine)
            active = _active_among(versions, now)
            self._next_at = next((v.activate_at for v in versions if v.activate_at > now), None)
            if active is None:
                self._current = self.base
            elif active.version != self._current.document.version:
                self._current = self._build(active)
        except (OperationalError, DBAPIError) as exc:
            log.warning(
                "programme versions not read (%s): version %s stays in force",
                type(exc).__name__,
                self._current.document.version,
            )
        except ConfigError as exc:  # stored, then refused by this release's checks
            log.error("programme version refused, the one in force stays: %s", exc)
        self._read_at = self.monotonic()
        return self._current

    def _build(self, stored: StoredVersion) -> ProgramSnapshot:
        built = self._built.get(stored.version)
        if built is None:
            source = stored_source(self.engine, stored.version)
            if source is None:  # cancelled between the two reads
                return self._current
            document = ProgramDocument(stored.version, source)
            program = document.parse(f"programme version {stored.version}")
            built = make_snapshot(
                document, program, self.ledger_for(document, program), stored.activate_at
            )
            if len(self._built) > 8:  # a long-running worker keeps a few, not every one
                self._built = {self.base.document.version: self.base}
            self._built[stored.version] = built
            log.info("programme version %s (%s) in force", stored.version, program.id)
        return built
