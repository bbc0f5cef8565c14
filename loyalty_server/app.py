"""The loyalty server's HTTP API (versioned under /v1), over the shared ledger."""

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from loyalty_server import merchants as merchant_store
from loyalty_server import partners as partner_store
from loyalty_server import strict, terminals
from loyalty_server.bodies import HostileJSONRoute, max_values
from loyalty_server.heartbeats import (
    HEARTBEAT_MAX_BODY,
    HEARTBEATS_PER_MINUTE,
    HeartbeatIn,
    HeartbeatOut,
    record_heartbeat,
)
from loyalty_server.limits import (
    BodyLimit,
    LockoutGate,
    PairingGuard,
    SharedLimits,
    clean_text,
    mask_card,
    upsert,
)
from loyalty_server.pass_routes import pass_router
from loyalty_server.phones import e164_or_none, key_enrollment_phones
from loyalty_server.program_versions import ActiveProgram, make_snapshot
from loyalty_server.schema import flags, security_events
from loyalty_server.schema import terminals as terminals_table
from loyalty_server.settings import ServerSettings, from_environment
from pos_client.domain import MemberView, member_view_to_json, utcnow
from pos_client.errors import CardLinkRefused
from pos_client.ledger import Ledger, make_engine, one_statement_reads, totals
from pos_client.ledger.card_counters import card_key
from pos_client.ledger.expiry import ExpirySchedule, parse_time_of_day
from pos_client.ledger.ledger import Limits
from pos_client.ledger.schema import transactions
from pos_client.ledger.settlement import period_bounds, settlement_for, settlement_json
from pos_client.operations import (
    OP_ACTION,
    OP_ENROLL,
    OP_GIVE,
    OP_SALE,
    OpConflict,
    OpRejected,
    StaffAward,
)
from pos_client.pins import PinRefused
from pos_client.ports import op_result
from pos_client.program import ProgramDocument, load_program_document, resolve_program_path
from pos_client.rules import Program
from pos_client.sun import SunKeys, SunRefused, load_sun_keys

log = logging.getLogger("loyalty_server")
T = TypeVar("T")
Found = TypeVar("Found")
API_VERSION = "1.0.0"
PHONE_LOOKUPS_SPENT = "too many phone lookups from this terminal; wait a minute"
RETRY_IN_A_MINUTE = {"Retry-After": "60"}  # the per-minute budgets refill within a minute


# ------------------------------------------------------------------ models


MemberId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class Health(BaseModel):
    status: Literal["ok"]
    time: datetime
    program: str


def no_surrogates(value: str) -> str:
    if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise ValueError("text that is not valid UTF-8")
    return value


SafeStr = Annotated[str, AfterValidator(no_surrogates)]


def valid_card_number(value: str) -> str:
    problem = strict.card_number_problem(value)
    if problem:
        raise ValueError(f"card_number: {problem}")
    return value


class PairIn(BaseModel):
    # Unknown fields are refused: the unauthenticated body is bounded (1 KiB) and said so.
    model_config = ConfigDict(extra="forbid")

    code: SafeStr = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9]+$")
    share_phone_key: bool = Field(
        False,
        description="true: an older terminal asks for the store-wide phone key; it is given "
        "only where the store allows it (LOYALTY_SERVER_SHARE_PHONE_KEY=1). Otherwise the key "
        "stays on the server, which keys the numbers terminals send (lookup kind "
        "phone_number, enroll with phone)",
    )


class PairOut(BaseModel):
    terminal_id: str
    token: str
    phone_key: str | None = Field(
        None, description="the store-wide HMAC key for phone numbers (hex), if asked for"
    )


class TapIn(BaseModel):
    """A secure card's tap: the URL the card answered with, as read (its SUN message)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(min_length=1, max_length=512, description="the card's NDEF URL, as read")
    uid: str | None = Field(
        None,
        pattern=r"^(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$",
        description="the UID the reader saw (upper-case hex): the message must prove it",
    )


class CardUidIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    uid: str = Field(pattern=r"^(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$")


class CardKnownOut(BaseModel):
    known: bool


class PinIn(BaseModel):
    """A member's PIN as typed (digits only; the rules for a new one are the ledger's)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    pin: str = Field(pattern=r"^[0-9]{1,16}$")


class PinSetIn(PinIn):
    current_pin: str | None = Field(
        None, pattern=r"^[0-9]{1,16}$", description="the PIN set now: needed to change it"
    )


class PinCheckOut(BaseModel):
    ok: bool
    remaining: int = Field(description="tries left before the PIN locks (when not ok)")
    locked_until: datetime | None = Field(description="refused, whatever the PIN, until then")
    no_pin: bool = Field(description="the member has chosen no PIN")


class CardLinkIn(BaseModel):
    """A secure card just issued (or presented) linked to a member: its message proves the
    card is genuine and here."""

    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(min_length=1, max_length=512, description="the card's NDEF URL, as read")
    member_id: str = Field(pattern=strict.MEMBER_ID_PATTERN.pattern)


class CardLinkOut(BaseModel):
    member_id: str
    linked: bool = Field(description="false: the card already was this member's")


class LookupIn(BaseModel):
    kind: Literal["card_uid", "card_number", "member_number", "phone", "phone_number"]
    value: SafeStr = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="HMAC hex for phone; the E.164 number for phone_number (keyed here)",
    )

    @model_validator(mode="after")
    def strict_value(self) -> "LookupIn":
        problem = None
        if self.kind == "phone":
            problem = strict.phone_key_problem(self.value)
        elif self.kind == "card_number":
            problem = strict.card_number_problem(self.value)
        if problem:
            raise ValueError(f"{self.kind}: {problem}")
        return self


class RewardOut(BaseModel):
    reward_id: str
    name: str
    cost: int
    affordable: bool
    kind: str
    value: str | None


class StatsOut(BaseModel):
    points_in_period: int
    spend_in_period: str
    visits_in_period: int
    units_in_period: str = Field("0", description="the programme's earning unit (km, nights)")
    segments_in_period: int = Field(0, description="sale lines that carried units")
    tenure_months: int = Field(0, description="months of (active) membership, as tiers count")
    lifetime_units: str = Field("0", description="units over the membership (every Nth free)")
    lifetime_visits: int = Field(0, description="purchases over the membership (every Nth free)")


class StaffAwardIn(BaseModel):
    """A staff member's award of points to a member, with their PIN and, above the
    programme's approval size, another staff member's."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    member_id: str = Field(min_length=1, max_length=64)
    points: int = Field(ge=1, le=100_000)
    reason: str = Field(min_length=1, max_length=200)
    staff_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    staff_pin: str = Field(pattern=r"^[0-9]{4,8}$")
    approver_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    approver_pin: str | None = Field(None, pattern=r"^[0-9]{4,8}$")


class StaffAwardOut(BaseModel):
    status: Literal["applied", "duplicate"]
    key: str
    member_id: str
    points: int
    staff_id: str
    approver_id: str | None
    balance: int | None = None


class OfferLeftOut(BaseModel):
    offer_id: str
    uses_left: int


class MemberOut(BaseModel):
    member_id: str
    points_held: int = Field(0, description="points held until a first spend (a gate)")
    gate_remaining: str | None = Field(
        None, description="what the member still has to spend before held points count"
    )
    display_name: str = Field(description="first name and initial only")
    phone_hint: str = Field(description="last digits only")
    tier_id: str
    tier_name: str
    balance: int
    stats: StatsOut
    next_tier_name: str | None
    next_tier_remaining: str | None
    next_reward_name: str | None
    next_reward_remaining: int | None
    rewards: list[RewardOut]
    birthday_reward: bool
    card_number: str | None
    as_of: str
    points_expiring: int = Field(0, description="of the balance, expiring in the next 30 days")
    expiring_on: str | None = Field(
        None, description="the store day (YYYY-MM-DD) the first of them expire"
    )
    offers: list[OfferLeftOut] = Field(
        default_factory=list, description="partner offers open to the member today"
    )
    invitations_left: int | None = Field(
        None, description="a programme joined by invitation: the member's still to give"
    )


class HistoryItem(BaseModel):
    kind: str
    points: int
    amount_minor: int
    reward_id: str | None
    occurred_at: datetime


class Operation(BaseModel):
    """One operation body as terminals record it (sale, enroll, action, give)."""

    # Documented as strings, checked per operation by the ledger: a malformed key or type
    # (a number, an unpaired surrogate) refuses that operation alone, not the whole batch.
    model_config = ConfigDict(extra="allow")
    # So the schema says any JSON value: its result (status 400) says what was wrong.
    type: Annotated[
        Any,
        WithJsonSchema({"description": "sale, enroll, action or give (a string of at most 16)"}),
    ]
    key: Annotated[
        Any, WithJsonSchema({"description": "the operation's idempotency key: a UUID (string)"})
    ]


# A batch's operations as sent: any JSON value, each checked by the ledger on its own, so one
# that is no object, or has a key that is no text (an unpaired surrogate) or no `key` or
# `type`, is refused alone (status 400 in its own result); the rest of the batch applies.
RawOperation = Annotated[
    Any,
    WithJsonSchema(
        {
            "description": "one operation body as terminals record it (sale, enroll, action, "
            "give): a JSON object. Anything else, or a malformed one, is refused alone, in its "
            "own result (status 400; its key is the item's `key` when that is a string, else "
            "empty); results are in the order of the operations",
            "properties": {
                "type": {"description": "sale, enroll, action or give (a string of at most 16)"},
                "key": {"description": "the operation's idempotency key: a UUID (string)"},
            },
            "additionalProperties": True,
        }
    ),
]


def batch_model(max_batch: int) -> type[BaseModel]:
    """The batch body, bounded by the configured batch limit."""
    return create_model(
        "BatchIn",
        operations=(list[RawOperation], Field(min_length=1, max_length=max_batch)),
    )


class OpResultOut(BaseModel):
    key: str = Field(
        description="the operation's key; empty for an item that is no object or whose key is "
        "missing or no string (results are in the order of the operations sent)"
    )
    outcome: Literal["applied", "duplicate", "rejected", "conflict", "retry"]
    status: int = Field(
        200,
        description="this operation's own HTTP-style status: 200 applied or duplicate, 400 "
        "malformed, 403 not allowed from a terminal, 404 unknown member, 409 conflict, 422 "
        "refused by a rule or limit, 429 over a rate (retry later), 503 retry later",
    )
    result: dict[str, Any] | None = None
    code: str | None = None
    error: str | None = None


class BatchOut(BaseModel):
    results: list[OpResultOut]


class Problem(BaseModel):
    detail: str


class PartnerTransferIn(BaseModel):
    """One inbound transfer: the partner's units for a member, credited as points."""

    # Strict: units must be a JSON integer ("25", 25.0, true are refused, not coerced).
    model_config = ConfigDict(extra="forbid", strict=True)
    reference: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the partner's own transfer id; applied once, a replay returns the first "
        "result",
    )
    card_number: Annotated[str, AfterValidator(valid_card_number)] = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="the member's card"
    )
    units: int = Field(ge=1, le=10**9, description="the partner's units (miles, ...)")


class PartnerTransferOut(BaseModel):
    status: Literal["applied", "duplicate"]
    partner_id: str
    reference: str
    units: int
    points: int


SETTLEMENTS_PER_MINUTE = 10  # each reads the ledger's history: a report, not a feed
STAFF_PIN_TRIES_PER_MINUTE = 20  # a till's staff PIN tries: guessing stays slow


class SettlementMerchantOut(BaseModel):
    """A merchant's points and money for the period (see `loyalty-server settlement`)."""

    merchant: str = Field(description="its id in the programme; 'operator' for the operator")
    name: str
    funding_rate: str = Field(description="money a point it issued costs it")
    outstanding_at_start: int
    issued: int
    spent: int = Field(description="its points spent anywhere (redeemed, partners, charities)")
    expired: int
    outstanding_at_end: int = Field(description="start + issued - spent - expired")
    redeemed_here: int = Field(description="points redeemed at its tills, whoever issued them")
    owes: str
    owed: str
    net: str = Field(description="owed - owes: positive, it receives")
    liability_at_end: str = Field(description="outstanding at the end x its funding rate")


class SettlementPaymentOut(BaseModel):
    payer: str
    payee: str
    payer_points_at_payee: int
    payee_points_at_payer: int
    amount: str = Field(description="what the payer owes the payee, both ways netted")


class SettlementOut(BaseModel):
    start: str
    end: str = Field(description="the last store day, inclusive")
    currency: str
    merchants: list[SettlementMerchantOut]
    payments: list[SettlementPaymentOut]


# Operations a terminal may send; inbound partner transfers come from partners only.
TERMINAL_KINDS = frozenset({OP_SALE, OP_ENROLL, OP_ACTION, OP_GIVE})

STATUS_BY_CODE = {
    "bad_request": 400,
    "not_allowed": 403,
    "unknown_member": 404,
    "conflict": 409,
    "key_taken": 409,
    "rate_limited": 429,
    "storage": 503,
}


def item_key(body: Any) -> str:
    """The key a result is told by: the item's `key` when it is a string, else empty (an
    item that is no object, or whose key is missing or no string)."""
    key = body.get("key") if isinstance(body, dict) else None
    return clean_text(key, 64) if isinstance(key, str) else ""


def op_status(outcome: str, code: str | None) -> int:
    if outcome in ("applied", "duplicate"):
        return 200
    if outcome == "retry":
        return STATUS_BY_CODE.get(code or "", 503)
    return STATUS_BY_CODE.get(code or "", 409 if outcome == "conflict" else 422)


# ------------------------------------------------------------------ app


def warn_of_unknown_merchants(engine: Any, program: Any) -> None:
    """Terminals on record as a merchant's the programme no longer names earn at the base
    rates and settle under that merchant's id at the operator's funding rate: say so."""
    named = {m.id for m in program.coalition.merchants} if program.coalition else set()
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(terminals_table.c.merchant, func.count())
                .where(terminals_table.c.merchant != "", terminals_table.c.revoked_at.is_(None))
                .group_by(terminals_table.c.merchant)
            ).all()
    except (OperationalError, DBAPIError):  # not migrated yet: nothing on record
        return
    for merchant, count in found:
        if merchant not in named:
            log.warning(
                "%d terminal(s) on record as merchant %r, which programme %s does not name:"
                " they earn at its base rates; revoke and add them again under a merchant",
                count,
                merchant,
                program.id,
            )


class ActiveExpiry(ExpirySchedule):
    """The daily expiry run, under the programme in force at each run (one uploaded later
    may start, stop or change expiry)."""

    def __init__(self, programs: ActiveProgram, at: time) -> None:
        super().__init__(programs.base.ledger, at)
        self.programs = programs

    def _run(self) -> None:
        snapshot = self.programs.snapshot()
        if snapshot.program.expiry.enabled:
            self.ledger = snapshot.ledger
            super()._run()


def create_app(settings: ServerSettings) -> FastAPI:
    from pos_client.privacy import PhoneHasher, load_or_create_key

    # The programme as a document: its version is told to terminals (/v1/program) and in
    # every sale's result, so a preview under other rules is seen, never silent.
    document = load_program_document(settings.program, settings.config_dir)
    program = document.parse(str(resolve_program_path(settings.program, settings.config_dir)))
    engine = make_engine(settings.database_url)
    reads = one_statement_reads(engine)  # authentication: one statement a request
    limits = Limits(
        max_sale_amount=Decimal(settings.max_sale_amount),
        max_lines_per_sale=settings.max_lines_per_sale,
        max_points_per_operation=settings.max_points_per_operation,
        max_points_per_member_per_day=settings.max_points_per_member_per_day,
        clock_skew=timedelta(seconds=settings.clock_skew_s),
        offline_window=timedelta(days=settings.offline_window_days),
    )
    zone = ZoneInfo(settings.timezone)

    def ledger_for(document: ProgramDocument, program: Program) -> Ledger:
        """A ledger applying `program` (one per programme version, on the one engine)."""
        return Ledger(
            engine,
            program,
            limits,
            check=strict.checker(program.currency),
            program_version=document.version,
            zone=zone,
        )

    # The ledger under the startup programme: for what no programme rule decides (PINs,
    # cards, whether a member exists, the store's day).
    base_ledger = ledger_for(document, program)
    # The programme in force: the file above until an uploaded version's activation time
    # (program_versions), read from the database by every worker. Each request that
    # applies or shows the rules takes one snapshot at its start and uses it throughout.
    programs = ActiveProgram(engine, make_snapshot(document, program, base_ledger), ledger_for)
    # Loaded at start, so a bad key file stops the server with its reason, not a tap.
    sun_keys = load_sun_keys(settings.sun_keys_file) if settings.sun_keys_file else None
    phone_key = load_or_create_key(settings.phone_key_file).hex()
    phone_hasher = PhoneHasher(bytes.fromhex(phone_key))
    # Rate limits and the pairing lockout live in the database: N workers count as one.
    shared = SharedLimits(engine)
    # A bound on the batches applied at once in this process (each holds a database
    # connection, of the pool's 15, and up to max_batch operations in memory); the rest
    # wait here, holding nothing.
    applying = threading.BoundedSemaphore(settings.batches_at_once)
    pairing_guard = PairingGuard(
        shared, settings.pairing_failures_per_minute, settings.pairing_lockout_s
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warn_of_unknown_merchants(engine, programs.snapshot().program)
        schedule = None
        if settings.expiry_time:
            # Each run expires under the programme in force then (one may start expiring).
            schedule = ActiveExpiry(programs, parse_time_of_day(settings.expiry_time))
            schedule.start()
        try:
            yield
        finally:
            if schedule is not None:
                schedule.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="pos-client loyalty server",
        version=API_VERSION,
        description="Members, earnings and redemptions for loyalty terminals. Every call but "
        "pairing needs `Authorization: Bearer <terminal token>`.",
    )
    app.router.route_class = HostileJSONRoute  # every route below reads JSON this way
    app.state.max_body_values = max_values(settings.max_batch, settings.max_lines_per_sale)
    # The startup programme's ledger (programme-independent reads); the rules in force
    # are `app.state.programs.snapshot()` (.program, .ledger, .document), and
    # `app.state.programs.refresh()` reads them again at once (after an upload).
    app.state.ledger = base_ledger
    app.state.programs = programs
    app.state.settings = settings
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={
            "/v1/terminals/pair": 1024,
            "/v1/partner/transfers": 4096,
            "/v1/terminals/heartbeat": HEARTBEAT_MAX_BODY,
        },
    )
    # Outermost: a locked-out address is refused before anything else is done for it.
    app.add_middleware(LockoutGate, guard=pairing_guard, path="/v1/terminals/pair", max_body=1024)
    BatchIn = batch_model(settings.max_batch)

    unauthorized: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "missing, wrong or revoked token"}
    }
    unparsable: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "the body is not JSON, or not a valid operation"},
        413: {
            "model": Problem,
            "description": "the body is over the size limit, or holds more JSON values than "
            "the largest batch needs",
        },
    }

    def bearer_auth(
        scheme: HTTPBearer, authenticate: Callable[[Any, str], Found | None], whose: str
    ) -> Callable[..., Found]:
        """A dependency: who the request's bearer token belongs to, or a 401."""

        def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
        ) -> Found:
            found = None
            if credentials is not None and 0 < len(credentials.credentials) <= 256:
                found = authenticate(reads, credentials.credentials)
            if found is None:
                raise HTTPException(
                    401,
                    f"missing, wrong or revoked {whose} token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return found

        return dependency

    bearer = HTTPBearer(auto_error=False, description="the terminal's token from pairing")
    terminal = bearer_auth(bearer, terminals.authenticate, "terminal")
    Auth = Annotated[terminals.Terminal, Depends(terminal)]
    partner_bearer = HTTPBearer(
        auto_error=False,
        scheme_name="PartnerToken",
        description="a partner's token from `loyalty-server partner add`",
    )
    PartnerAuth = Annotated[
        str, Depends(bearer_auth(partner_bearer, partner_store.authenticate, "partner"))
    ]
    merchant_bearer = HTTPBearer(
        auto_error=False,
        scheme_name="MerchantToken",
        description="a coalition merchant's token from `loyalty-server merchant token`",
    )
    MerchantAuth = Annotated[
        str, Depends(bearer_auth(merchant_bearer, merchant_store.authenticate, "merchant"))
    ]
    Day = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # A short reason and the field path only: never the input back (it may be huge,
        # or not even encodable).
        errors = [
            {
                "loc": [item if isinstance(item, int) else clean_text(item) for item in e["loc"]],
                "msg": clean_text(e.get("msg", "invalid"), 120),
                "type": clean_text(e.get("type", "invalid")),
            }
            for e in exc.errors()[:5]
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, _exc: OperationalError) -> JSONResponse:
        return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503)

    @app.get("/v1/health", response_model=Health, responses=unauthorized)
    def health(_terminal: Auth) -> Health:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return Health(status="ok", time=utcnow(), program=programs.snapshot().program.id)

    @app.post(
        "/v1/terminals/pair",
        response_model=PairOut,
        responses={
            **unparsable,
            403: {"model": Problem, "description": "bad pairing code"},
            429: {"model": Problem, "description": "this address is locked out for a while"},
        },
    )
    def pair(body: PairIn, request: Request) -> PairOut:
        address = request.client.host if request.client else "unknown"
        locked = pairing_guard.locked_for(address)
        if locked:
            raise HTTPException(
                429,
                "too many failed pairing attempts from this address; wait and try again",
                headers={"Retry-After": str(int(locked) + 1)},
            )
        try:
            terminal_id, token = terminals.pair(engine, body.code)
        except terminals.PairingError as exc:
            count, now_locked = pairing_guard.failed(address)
            if now_locked:
                log.warning(
                    "pairing: %d failed attempts from %s in a minute; locked out for %d s",
                    count,
                    address,
                    settings.pairing_lockout_s,
                )
            else:
                log.info("pairing refused from %s (%d failed in the last minute)", address, count)
            raise HTTPException(403, str(exc)) from None
        log.info("terminal %s paired", terminal_id)
        # Asked for by older terminals; given only where the store allows it (settings).
        given_key = phone_key if body.share_phone_key and settings.share_phone_key else None
        return PairOut(terminal_id=terminal_id, token=token, phone_key=given_key)

    @app.post(
        "/v1/terminals/heartbeat",
        response_model=HeartbeatOut,
        responses={
            **unauthorized,
            **unparsable,
            422: {"description": "a field out of its bounds, unknown, or not printable text"},
            429: {"model": Problem, "description": "too many heartbeats from this terminal"},
        },
    )
    def heartbeat(body: HeartbeatIn, who: Auth) -> HeartbeatOut:
        """The terminal's state, sent while it syncs (every 30 s at most): its outbox
        (pending and dead entries, the oldest pending sale's age, the newest dead entries
        with their reasons), its readers, its version and mode. Kept as the terminal's last
        heartbeat, received at the server's time, for the managers' fleet page."""
        if not shared.allow("heartbeat:" + who.id, HEARTBEATS_PER_MINUTE):
            raise HTTPException(
                429,
                "too many heartbeats from this terminal; wait a minute",
                headers=RETRY_IN_A_MINUTE,
            )
        try:
            record_heartbeat(engine, who.id, body, utcnow())
        except (OperationalError, DBAPIError) as exc:
            log.warning("heartbeat not recorded now: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable, retry later") from None
        return HeartbeatOut(status="ok")

    @app.post(
        "/v1/members/lookup",
        response_model=MemberOut,
        responses={**unauthorized, **unparsable, 404: {"model": Problem}, 429: {"model": Problem}},
    )
    def lookup(body: LookupIn, who: Auth) -> dict[str, Any]:
        if body.kind in ("phone", "phone_number"):
            if not shared.allow("phone:" + who.id, settings.phone_lookups_per_minute):
                raise HTTPException(429, PHONE_LOOKUPS_SPENT, headers=RETRY_IN_A_MINUTE)
        elif not shared.allow("lookup:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429, "too many lookups from this terminal; wait a minute", headers=RETRY_IN_A_MINUTE
            )
        kind, value = body.kind, body.value
        if kind == "phone_number":
            e164 = e164_or_none(value)
            if e164 is None:
                raise HTTPException(400, "phone_number must be a valid E.164 number")
            kind, value = "phone", phone_hasher.phone_key(e164)
        ledger = programs.snapshot().ledger
        member_id = ledger.find_member_id(kind, value)
        view = ledger.member_view(member_id) if member_id else None
        if view is None:
            raise HTTPException(404, "no member with this identifier")
        return masked(view)

    def security_event(kind: str, terminal_id: str, card: bytes | None) -> None:
        """Recorded for the store to review; the log line names the terminal, never the card."""
        log.warning("security event at terminal %s: %s", terminal_id, kind)
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            conn.execute(
                security_events.insert().values(
                    at=utcnow(),
                    kind=kind,
                    terminal_id=terminal_id,
                    card=card_key(card) if card else None,
                )
            )

    tap_refusals = {
        "malformed": (400, "not a secure card's message"),
        "unreadable": (403, "this card's message does not decrypt under the store's card keys"),
        "forged": (403, "this card's message does not verify: a copied or altered card"),
        "replayed": (409, "this card's message was already used: a copy or a replay"),
        "blocked": (410, "this card was reported lost or stolen and is blocked"),
    }

    def secure_card(who: terminals.Terminal, check: Callable[[SunKeys], T]) -> T:
        """A secure card's message put to `check` with the store's card keys, within the
        terminal's lookup rate; a refusal is a security event and a clear 4xx."""
        if sun_keys is None:
            # A 4xx, not 501: no server error, this server does not take secure cards.
            raise HTTPException(403, "secure cards are not set up on this store server")
        if not shared.allow("lookup:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429, "too many lookups from this terminal; wait a minute", headers=RETRY_IN_A_MINUTE
            )
        try:
            return check(sun_keys)
        except SunRefused as refused:
            security_event(refused.reason, who.id, refused.uid)
            status, detail = tap_refusals.get(refused.reason, (403, "card refused"))
            raise HTTPException(status, detail) from None

    @app.post(
        "/v1/cards/tap",
        response_model=MemberOut,
        responses={
            **unauthorized,
            **unparsable,
            403: {
                "model": Problem,
                "description": "forged or unreadable (a security event), or this server has no "
                "card keys",
            },
            404: {"model": Problem, "description": "a genuine card linked to no member"},
            409: {"model": Problem, "description": "a replayed message: a security event"},
            410: {"model": Problem, "description": "a card reported lost: a security event"},
            429: {"model": Problem},
        },
    )
    def tap(body: TapIn, who: Auth) -> dict[str, Any]:
        """A secure card (NTAG 424 DNA) identified by the message it answered a tap with:
        verified with the store's card keys, accepted once (its read counter must rise),
        then the member it belongs to. A forged, unreadable or replayed message is refused
        and recorded as a security event."""
        seen = bytes.fromhex(body.uid) if body.uid is not None else None
        ledger = programs.snapshot().ledger
        member_id = secure_card(
            who, lambda keys: ledger.member_by_secure_card(keys, body.url, seen)
        )
        view = ledger.member_view(member_id) if member_id else None
        if view is None:
            raise HTTPException(404, "a genuine card, linked to no member")
        return masked(view)

    @app.post(
        "/v1/cards/known",
        response_model=CardKnownOut,
        responses={**unauthorized, **unparsable, 429: {"model": Problem}},
    )
    def card_known(body: CardUidIn, who: Auth) -> CardKnownOut:
        """Whether a card with this UID is known here (linked, tapped, blocked): asked by
        `pos-client card issue` before a blank card gets its keys."""
        if not shared.allow("lookup:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429, "too many lookups from this terminal; wait a minute", headers=RETRY_IN_A_MINUTE
            )
        return CardKnownOut(known=base_ledger.card_known(bytes.fromhex(body.uid)))

    @app.post(
        "/v1/cards/link",
        response_model=CardLinkOut,
        responses={
            **unauthorized,
            **unparsable,
            403: {"model": Problem, "description": "forged or unreadable (a security event)"},
            404: {"model": Problem, "description": "no such member"},
            409: {"model": Problem, "description": "replayed, or the card is another member's"},
            410: {"model": Problem, "description": "a card reported lost: a security event"},
            429: {"model": Problem},
        },
    )
    def link_card(body: CardLinkIn, who: Auth) -> CardLinkOut:
        """Link a secure card to a member (`pos-client card issue --member`): the card's
        message is verified and accepted like a tap's; a card already another member's is
        refused (a security event), never moved."""
        try:
            linked = secure_card(
                who, lambda keys: base_ledger.link_secure_card(keys, body.url, body.member_id)
            )
        except CardLinkRefused as refused:
            if refused.code == "card_linked":
                uid = refused.params.get("uid")
                security_event("link_refused", who.id, bytes.fromhex(uid) if uid else None)
                raise HTTPException(409, "this card belongs to another member") from None
            raise HTTPException(404, "no such member") from None
        return CardLinkOut(member_id=body.member_id, linked=linked)

    def pin_request(member_id: str, who: terminals.Terminal) -> None:
        """A PIN request within the terminal's rate, for a member who exists."""
        if not shared.allow("pin:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429,
                "too many PIN requests from this terminal; wait a minute",
                headers=RETRY_IN_A_MINUTE,
            )
        if base_ledger.member(member_id) is None:
            raise HTTPException(404, "no such member")

    @app.post(
        "/v1/members/{member_id}/pin",
        status_code=204,
        responses={
            **unauthorized,
            **unparsable,
            403: {"model": Problem, "description": "the current PIN is wrong or locked"},
            404: {"model": Problem},
            409: {"model": Problem, "description": "a PIN is set: current_pin is needed"},
            429: {"model": Problem},
        },
    )
    def set_pin(member_id: MemberId, body: PinSetIn, who: Auth) -> Response:
        """Set the member's PIN (the member at the desk chooses it). One already set is
        changed only with `current_pin` (a wrong one counts as a failed check); a member who
        forgot it has it reset at the store server (`loyalty-server member pin-reset`).
        422 for a PIN that cannot be one (4 to 8 digits, not one tried first)."""
        pin_request(member_id, who)
        try:
            replaced = base_ledger.set_member_pin(member_id, body.pin, body.current_pin)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except PinRefused as refused:
            if refused.code == "pin_wrong":
                log.warning("wrong current member PIN at terminal %s", who.id)
            if refused.locked_now:
                security_event("pin_locked", who.id, None)
            status = 403 if refused.code == "pin_wrong" else 409
            raise HTTPException(status, str(refused)) from None
        log.warning("member PIN %s at terminal %s", "changed" if replaced else "set", who.id)
        return Response(status_code=204)

    @app.post(
        "/v1/members/{member_id}/pin/check",
        response_model=PinCheckOut,
        responses={**unauthorized, **unparsable, 404: {"model": Problem}, 429: {"model": Problem}},
    )
    def check_pin(member_id: MemberId, body: PinIn, who: Auth) -> PinCheckOut:
        """A PIN given for the member (found by phone: then they may spend). The fifth
        wrong one in a row locks it for a while, whichever terminals they came from."""
        pin_request(member_id, who)
        check = base_ledger.check_member_pin(member_id, body.pin)
        if not check.ok and not check.no_pin:
            log.warning("wrong member PIN at terminal %s", who.id)  # never the member or PIN
        if check.locked_now:
            security_event("pin_locked", who.id, None)
        return PinCheckOut(
            ok=check.ok,
            remaining=check.remaining,
            locked_until=check.locked_until,
            no_pin=check.no_pin,
        )

    @app.get(
        "/v1/members/{member_id}",
        response_model=MemberOut,
        responses={**unauthorized, 404: {"model": Problem}, 429: {"model": Problem}},
    )
    def member(member_id: MemberId, who: Auth) -> dict[str, Any]:
        if not shared.allow("lookup:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429,
                "too many member reads from this terminal; wait a minute",
                headers=RETRY_IN_A_MINUTE,
            )
        view = programs.snapshot().ledger.member_view(member_id)
        if view is None:
            raise HTTPException(404, "no such member")
        return masked(view)

    def masked(view: MemberView) -> dict[str, Any]:
        """A member as terminals see it: masked name and phone, the card's last digits."""
        data = member_view_to_json(view)
        data["card_number"] = mask_card(view.card_number)
        return data

    @app.get(
        "/v1/members/{member_id}/history",
        response_model=list[HistoryItem],
        responses={**unauthorized, 404: {"model": Problem}, 429: {"model": Problem}},
    )
    def history(
        member_id: MemberId,
        who: Auth,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> list[HistoryItem]:
        if not shared.allow("lookup:" + who.id, settings.lookups_per_minute):
            raise HTTPException(
                429,
                "too many member reads from this terminal; wait a minute",
                headers=RETRY_IN_A_MINUTE,
            )
        if base_ledger.member(member_id) is None:
            raise HTTPException(404, "no such member")
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    transactions.c.kind,
                    transactions.c.points,
                    transactions.c.amount_minor,
                    transactions.c.reward_id,
                    transactions.c.occurred_at,
                )
                .where(transactions.c.member_id == member_id)
                .order_by(transactions.c.id.desc())
                .limit(limit)
            ).all()
        return [
            HistoryItem(
                kind=r.kind,
                points=r.points,
                amount_minor=r.amount_minor,
                reward_id=r.reward_id,
                occurred_at=r.occurred_at,
            )
            for r in rows
        ]

    @app.post(
        "/v1/members",
        response_model=OpResultOut,
        responses={
            **unauthorized,
            **unparsable,
            409: {"model": Problem},
            422: {"description": "refused by the programme (code: too_young, ...)"},
            429: {
                "model": Problem,
                "description": "too many phone lookups, or operations (batches' and these "
                "together), from this terminal",
            },
        },
    )
    def enroll(body: Operation, who: Auth) -> Any:
        data = body.model_dump()
        if data.get("type") != OP_ENROLL:
            raise HTTPException(400, "an enrollment has type 'enroll'")
        refused = key_enrollment_phones([data], phone_hasher)  # as in a batch: keyed here
        if refused:
            raise HTTPException(400, refused[0])
        # One operation of the terminal's per-minute allowance, shared with its batches.
        try:
            room = shared.take("ops:" + who.id, 1, settings.operations_per_terminal_per_minute)
        except (OperationalError, DBAPIError) as exc:
            log.warning("enrollment not applied now: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable, retry later") from None
        if not room:
            raise HTTPException(
                429,
                f"over {settings.operations_per_terminal_per_minute} operations per minute "
                "from this terminal; retry later",
                headers={"Retry-After": "60"},
            )
        result = limit_taken(apply_one(data, who, programs.snapshot().ledger), who)
        if result.code == "rate_limited":
            raise HTTPException(429, PHONE_LOOKUPS_SPENT, headers=RETRY_IN_A_MINUTE)
        if result.outcome == "conflict":
            raise HTTPException(409, result.error or "conflict")
        if result.outcome == "rejected":  # 400 malformed, 422 refused by the rules, with why
            return JSONResponse(
                status_code=result.status,
                content={"detail": result.error or "rejected", "code": result.code},
            )
        return result

    @app.post(
        "/v1/operations/batch",
        response_model=BatchOut,
        responses={**unauthorized, **unparsable},
    )
    def batch(body: BatchIn, who: Auth) -> Response:  # type: ignore[valid-type]
        """Apply sales (earnings and redemptions), enrollments, actions and transfers one by
        one, each exactly once by its key; one bad operation never blocks the others."""
        bodies: list[Any] = list(body.operations)  # type: ignore[attr-defined]
        refused = key_enrollment_phones(bodies, phone_hasher)
        with applying:
            answer = apply_batch(bodies, who, programs.snapshot().ledger, refused)
        # Encoded once by its model: returned as a model, FastAPI would dump it, validate
        # the dump against BatchOut again and encode that (1.1 ms a batch of 100).
        return Response(answer.model_dump_json(), media_type="application/json")

    def apply_batch(
        bodies: list[Any],
        who: terminals.Terminal,
        ledger: Ledger,
        refused: dict[int, str] | None = None,
    ) -> BatchOut:
        """`ledger`: the programme in force's, taken once for the whole batch; `refused`:
        operations refused before the ledger (by index, with the reason)."""
        refused = refused or {}
        try:
            # The room is taken from the terminal's per-minute allowance in the database
            # (counted and granted under a lock): parallel batches, in any server process,
            # cannot all see the same free room.
            room = shared.take(
                "ops:" + who.id, len(bodies), settings.operations_per_terminal_per_minute
            )
            earnings_today: dict[str, int] = {}
            allowed = bodies[:room]
            applied = iter(
                ledger.apply_many(
                    [body for index, body in enumerate(allowed) if index not in refused],
                    allowed_kinds=TERMINAL_KINDS,
                    terminal_id=who.id,
                    earnings_today=earnings_today,
                    merchant=who.merchant,
                )
            )
            outcomes: list[dict[str, Any] | OpRejected] = [
                OpRejected("bad_request", refused[index]) if index in refused else next(applied)
                for index in range(len(allowed))
            ]
        except (OperationalError, DBAPIError) as exc:
            log.warning("batch not applied now: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable, retry later") from None
        results = [
            limit_taken(as_result(body, outcome), who)
            for body, outcome in zip(bodies, outcomes, strict=False)
        ]
        results += [
            OpResultOut(
                key=item_key(body),
                outcome="retry",
                status=429,
                code="rate_limited",
                error=f"over {settings.operations_per_terminal_per_minute} operations per "
                "minute from this terminal; retry later",
            )
            for body in bodies[room:]
        ]
        flag_if_frequent(
            {
                str(r.result.get("member_id"))
                for r in results
                if r.outcome == "applied" and r.result and r.result.get("points_earned")
            },
            earnings_today,
        )
        return BatchOut(results=results)

    @app.get(
        "/v1/program",
        responses={**unauthorized, 304: {"description": "the version in If-None-Match"}},
    )
    def rules(request: Request, _who: Auth) -> Any:
        """The programme: its rules as JSON, its `version` and its TOML `source`, which a
        terminal checks against the version, caches and previews with. With the ETag in
        If-None-Match, an unchanged programme answers 304 and no body."""
        snap = programs.snapshot()
        headers = {"ETag": snap.etag, "Cache-Control": "no-cache"}
        asked = request.headers.get("if-none-match", "")
        # Weak comparison (RFC 9110 13.1.2): W/"v" matches "v"; "*" matches any version.
        tags = {tag.strip().removeprefix("W/") for tag in asked[:200].split(",")}
        if snap.etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        return JSONResponse(snap.body, headers=headers)

    @app.post(
        "/v1/staff/awards",
        response_model=StaffAwardOut,
        responses={
            **unauthorized,
            **unparsable,
            404: {"model": Problem, "description": "no such member"},
            409: {"model": Problem, "description": "this key was used for another award"},
            422: {"description": "refused: a wrong or locked PIN, no approval, too large"},
            429: {"model": Problem, "description": "too many staff PIN tries from this till"},
        },
    )
    def staff_award(body: StaffAwardIn, who: Auth) -> Any:
        """A staff award, applied at once (never queued: the PINs are checked here)."""
        if (body.approver_id is None) != (body.approver_pin is None):
            raise HTTPException(400, "approver_id and approver_pin go together")
        if not shared.allow("staffpin:" + who.id, STAFF_PIN_TRIES_PER_MINUTE):
            raise HTTPException(
                429, "too many staff PIN tries from this till", headers={"Retry-After": "60"}
            )
        approver = (
            (body.approver_id, body.approver_pin)
            if body.approver_id is not None and body.approver_pin is not None
            else None
        )
        award = StaffAward(
            body.key,
            body.member_id,
            body.points,
            body.reason,
            body.staff_id,
            body.staff_pin,
            approver,
        )
        try:
            result = programs.snapshot().ledger.award(
                award, terminal_id=who.id, merchant=who.merchant
            )
        except OpRejected as exc:
            code = STATUS_BY_CODE.get(exc.code, 422)  # as an operation's refusal is answered
            if exc.code in ("staff_refused", "approver_refused"):
                log.warning("staff award refused at terminal %s: %s", who.id, exc.code)
            return JSONResponse(status_code=code, content={"detail": exc.message, "code": exc.code})
        except (OperationalError, DBAPIError) as exc:
            log.warning("staff award not applied now: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable, retry later") from None
        log.info("staff award %s at terminal %s", result["key"], who.id)
        return result

    @app.get(
        "/v1/settlement",
        response_model=SettlementOut,
        responses={
            401: {"model": Problem, "description": "missing, wrong or revoked merchant token"},
            404: {"model": Problem, "description": "the programme is no coalition"},
            422: {"description": "not a period: dates as YYYY-MM-DD, at most 400 days"},
            429: {"model": Problem, "description": "too many reports; wait a minute"},
        },
    )
    def settlement(
        who: MerchantAuth,
        start: Annotated[Day, Query(alias="from")],
        end: Annotated[Day, Query(alias="to")],
    ) -> dict[str, Any]:
        """The coalition's settlement for the store days `from`..`to` (inclusive): a
        merchant's token reads its own row and the payments it is a party to, the
        operator's every merchant's."""
        program = programs.snapshot().program
        if program.coalition is None:
            raise HTTPException(404, "the programme is no coalition: there is nothing to settle")
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
            period_bounds(first, last, zone)  # refused before it costs a report
        except ValueError as exc:
            raise HTTPException(422, f"not a period: {exc}") from None
        if not shared.allow("settlement:" + who, SETTLEMENTS_PER_MINUTE):
            raise HTTPException(
                429, "too many settlement reports; wait a minute", headers={"Retry-After": "60"}
            )
        report = settlement_for(engine, program.coalition, first, last, zone, program.currency)
        if who != merchant_store.OPERATOR_KEY:
            report = report.only(who)
        return settlement_json(report)

    @app.get("/v1/partners", responses=unauthorized)
    def partners(_who: Auth) -> list[dict[str, Any]]:
        """Partner programmes and charities with their conversion rates."""
        return list(programs.snapshot().body["give_targets"])

    @app.post(
        "/v1/partner/transfers",
        response_model=PartnerTransferOut,
        responses={
            **unparsable,
            401: {"model": Problem, "description": "missing, wrong or revoked partner token"},
            404: {"model": Problem, "description": "no member with this card number"},
            409: {"model": Problem, "description": "this reference was used with another body"},
            422: {"description": "malformed, or refused by the programme's rules"},
            429: {"model": Problem, "description": "over this partner's daily cap"},
        },
    )
    def partner_transfer(body: PartnerTransferIn, partner_id: PartnerAuth) -> PartnerTransferOut:
        """A partner's inbound transfer (its units in, credited as points), applied once per
        reference, within the partner's daily cap. Only partners may post these."""
        ledger = programs.snapshot().ledger
        try:
            result = ledger.apply_partner_transfer(
                partner_id,
                body.reference,
                body.card_number,
                body.units,
                settings.partner_cap(partner_id),
            )
        except OpConflict:
            raise HTTPException(
                409, "this reference was already used for another transfer"
            ) from None
        except OpRejected as exc:
            status = {"unknown_member": 404, "partner_daily_cap": 429}.get(exc.code, 422)
            raise HTTPException(status, exc.message) from None
        except (OperationalError, DBAPIError) as exc:
            log.warning("partner transfer not applied now: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable, retry later") from None
        log.info("partner %s transfer %s: %s", partner_id, body.reference, result["status"])
        if result["status"] == "applied" and result["points"]:
            # Earnings by partner count for review as a terminal's sales do.
            member_id = ledger.find_member_id("card_number", body.card_number)
            if member_id is not None:
                flag_if_frequent({member_id})
        return PartnerTransferOut(**{k: result[k] for k in PartnerTransferOut.model_fields})

    def as_result(body: Any, outcome: dict[str, Any] | OpRejected) -> OpResultOut:
        result = op_result(body if isinstance(body, dict) else {}, outcome)
        return OpResultOut(
            key=item_key(body),
            outcome=result.outcome.value,
            status=op_status(result.outcome.value, result.code),
            result=result.result,
            code=result.code,
            error=result.error,
        )

    def limit_taken(result: OpResultOut, who: terminals.Terminal) -> OpResultOut:
        """An enrollment refused as identifier_taken says the phone (or card) is a member's:
        it counts as a phone lookup, and past that limit is answered as lookups are (429,
        nothing was recorded either way), so batches of enrollments test no more phones."""
        if result.code != "identifier_taken" or shared.allow(
            "phone:" + who.id, settings.phone_lookups_per_minute
        ):
            return result
        return OpResultOut(
            key=result.key,
            outcome="retry",
            status=429,
            code="rate_limited",
            error=PHONE_LOOKUPS_SPENT,
        )

    def apply_one(data: dict[str, Any], who: terminals.Terminal, ledger: Ledger) -> OpResultOut:
        key = str(data.get("key", ""))
        try:
            outcome = ledger.apply_many(
                [data], allowed_kinds=TERMINAL_KINDS, terminal_id=who.id, merchant=who.merchant
            )[0]
        except (OperationalError, DBAPIError) as exc:
            log.warning("operation %s not applied now: %s", key, type(exc).__name__)
            return OpResultOut(
                key=key, outcome="retry", status=503, code="storage", error="retry later"
            )
        return as_result(data, outcome)

    def flag_if_frequent(member_ids: set[str], known: dict[str, int] | None = None) -> None:
        """Flag members with more earnings today than the store expects, for review: one
        read for the whole batch (of the members whose count the batch did not tell,
        `known`), and an upsert per member flagged (in id order, after the batch
        committed), so two concurrent batches never both insert the same flag."""
        if not member_ids:
            return
        today = base_ledger.today()  # the store's day
        earnings = {m: known[m] for m in member_ids if known and m in known}
        unread = sorted(member_ids - earnings.keys())
        if unread:
            with engine.connect() as conn:  # the members' recorded-day rows: earnings today
                recorded = totals.read_recorded(conn, unread, today)
            earnings.update((m, count) for m, (_points, count) in recorded.items())
        counts = [
            (member_id, count)
            for member_id, count in earnings.items()
            if count > settings.flag_earnings_per_day
        ]
        if not counts:
            return
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            for member_id, count in sorted(counts):
                flagged = conn.execute(
                    select(flags.c.earnings).where(
                        flags.c.member_id == member_id, flags.c.day == today
                    )
                ).first()
                conn.execute(
                    upsert(
                        conn.dialect.name,
                        flags,
                        {
                            "member_id": member_id,
                            "day": today,
                            "earnings": int(count),
                            "flagged_at": utcnow(),
                        },
                        {"earnings": int(count)},
                    )
                )
                if flagged is None:
                    log.warning(
                        "member %s: %d earnings today, flagged for review", member_id, count
                    )

    from loyalty_server.console.routes import ConsoleContext, install_console

    install_console(
        app,
        ConsoleContext(
            engine=engine,
            programs=programs,
            zone=zone,
            phone_hasher=phone_hasher,
            store_key=bytes.fromhex(phone_key),
            shared=shared,
            pairing_code_ttl_s=settings.pairing_code_ttl_s,
            searches_per_minute=settings.console_searches_per_minute,
            phone_searches_per_minute=settings.console_phone_searches_per_minute,
        ),
    )
    app.include_router(
        pass_router(
            settings.passes,
            lambda: programs.snapshot().ledger,
            program.name,  # the passes' issuer name, as signed at start
            terminal,
            lambda bucket: shared.allow(bucket, settings.lookups_per_minute),
            {**unauthorized, **unparsable},
        )
    )
    return app


def app_from_environment() -> FastAPI:
    """The app from LOYALTY_SERVER_* settings: the factory each uvicorn worker calls."""
    return create_app(from_environment())
