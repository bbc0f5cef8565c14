"""The console's pages: `install_console` builds them over the store's database and ledger.

Every page needs a signed-in session; every form carries the session's CSRF token and is
refused without it; an auditor reads every page and changes nothing; each change is written
with its audit entry in one transaction. Pages are server-rendered (Jinja2, autoescaped),
with a strict CSP: no inline script, no third-party anything."""

import base64
import csv
import hashlib
import io
import logging
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from loyalty_server import heartbeats, program_versions
from loyalty_server import terminals as terminal_store
from loyalty_server.console import accounts, audit, charts, data, i18n, sessions
from loyalty_server.limits import SharedLimits
from loyalty_server.phones import e164_or_none
from loyalty_server.program_versions import ActiveProgram
from loyalty_server.schema import flag_reviews, flags, terminals
from pos_client.domain import mask_tail, utcnow, uuid7
from pos_client.ledger import totals
from pos_client.ledger.ledger import Ledger
from pos_client.ledger.schema import members, transactions
from pos_client.operations import OpRejected
from pos_client.privacy import PhoneHasher
from pos_client.program import MAX_PROGRAM_BYTES
from pos_client.rules import Program

log = logging.getLogger("loyalty_server.console")

HERE = Path(__file__).parent
PREFIX = "/console"
LOGINS_PER_MINUTE = 20  # per client address, whatever the names tried
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_REASON = 200


@dataclass(frozen=True)
class ConsoleContext:
    """What the console reads and changes, given by the composition root (create_app)."""

    engine: Engine
    programs: ActiveProgram  # the programme in force (and its ledger), uploads activate
    zone: ZoneInfo
    phone_hasher: PhoneHasher
    store_key: bytes
    shared: SharedLimits
    pairing_code_ttl_s: int
    searches_per_minute: int = 60  # member searches per account
    phone_searches_per_minute: int = 10  # of them by whole phone number

    def current(self) -> tuple[Ledger, Program]:
        """The programme in force and its ledger, from one snapshot."""
        snapshot = self.programs.snapshot()
        return snapshot.ledger, snapshot.program


class NotSignedIn(Exception):
    pass


class Pages:
    """How the console answers with a page: its templates (Jinja2, autoescaped), the
    language a request reads, the session its cookie names. Built once by install_console
    for the pages and for the error pages alike."""

    def __init__(self, context: ConsoleContext) -> None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.environment = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.signer = sessions.Signer(sessions.cookie_key(context.store_key))
        self.engine = context.engine
        self.zone = context.zone

    @staticmethod
    def language_of(request: Request) -> str:
        return i18n.pick(
            request.cookies.get("console_lang"), request.headers.get("accept-language")
        )

    def session_of(self, request: Request) -> sessions.Session | None:
        """The live session the request's cookie names, or None."""
        session_id = self.signer.unsign(request.cookies.get(sessions.COOKIE, ""))
        return sessions.find(self.engine, session_id) if session_id else None

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        session: sessions.Session | None = None,
        **values: Any,
    ) -> HTMLResponse:
        language = self.language_of(request)
        page = self.environment.get_template(template).render(
            _=i18n.translator(language),
            lang=language,
            languages=i18n.LANGUAGES,
            session=session,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            path=request.url.path,
            local=lambda moment: moment.astimezone(self.zone),
            number=charts.grouped,
            **values,
        )
        return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def _safe_next(target: str) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _reason_problem(reason: str) -> str | None:
    from pos_client.domain import text_problem

    reason = reason.strip()
    if not 3 <= len(reason) <= MAX_REASON:
        return "A reason of 3 to 200 characters is required."
    # No control, bidi-override or invisible characters: the audit log reads as it was.
    if text_problem(unicodedata.normalize("NFC", reason)) is not None:
        return "A reason has no control characters."
    return None


def console_router(context: ConsoleContext, pages: Pages) -> APIRouter:
    signer = pages.signer
    render = pages.render
    language_of = pages.language_of
    engine = context.engine
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    dashboard_cache = data.Cached(
        lambda: data.dashboard(engine, context.current()[1], context.zone, utcnow()), ttl=30
    )
    expiring_cache = data.Background(lambda: _expiring(context.current()[0], context.zone), ttl=600)

    def signed_in(request: Request) -> sessions.Session:
        session = pages.session_of(request)
        if session is None:
            raise NotSignedIn()
        return session

    Signed = Annotated[sessions.Session, Depends(signed_in)]

    def checked(session: sessions.Session, csrf: str, change: bool = True) -> None:
        """A form's CSRF token is its session's; a change needs a manager."""
        if not sessions.same_token(csrf, session.csrf):
            raise HTTPException(403, "This form is out of date or was not sent by the console.")
        if change and not session.user.can_change:
            raise HTTPException(403, "An auditor reads the console and changes nothing.")

    Csrf = Annotated[str, Form(max_length=128)]
    Reason = Annotated[str, Form(max_length=400)]

    def with_reason(session: sessions.Session, csrf: str, reason: str) -> str:
        """A manager's change with its CSRF token and a reason: the reason, trimmed."""
        checked(session, csrf)
        problem = _reason_problem(reason)
        if problem:
            raise HTTPException(422, problem)
        return reason.strip()

    def note(
        session: sessions.Session, action: str, target: str, detail: str = "", reason: str = ""
    ) -> None:
        """The change's entry in the audit log."""
        with engine.begin() as conn:
            audit.record(conn, session.user.name, action, target, detail, reason)

    # ---------------------------------------------------------------- sign in and out

    @router.get("/login")
    def login_page(request: Request) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        page = render(request, "login.html", login_csrf=token, error="")
        _set_cookie(page, request, sessions.LOGIN_COOKIE, signer.sign(token), 600)
        return page

    @router.post("/login")
    def log_in(
        request: Request,
        name: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD)] = "",
        login_csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        expected = signer.unsign(
            request.cookies.get(sessions.LOGIN_COOKIE, ""), timedelta(minutes=10)
        )
        if expected is None or not sessions.same_token(login_csrf, expected):
            return _login_again(request, "The sign-in form expired. Please try again.", 403)
        address = request.client.host if request.client else "unknown"
        if not context.shared.allow("console-login:" + address, LOGINS_PER_MINUTE):
            return _login_again(request, "Too many sign-in attempts. Wait a minute.", 429)
        result = accounts.log_in(engine, name.strip(), password)
        if result.user is None and not result.known:
            # A name that is no account locks as an account would: the answers never
            # tell which names exist.
            key = "console-name:" + name.strip().lower()[:64]
            held = context.shared.locked_for(key)
            if held <= 0:
                context.shared.fail(
                    key, accounts.FAILURES_BEFORE_LOCK, accounts.LOCK.total_seconds()
                )
                held = context.shared.locked_for(key)
            if held > 0:
                result = accounts.LoginResult(None, utcnow() + timedelta(seconds=held))
        if result.user is None:
            if result.locked_now:  # an account's, once, when it locks
                with engine.begin() as conn:
                    audit.record(conn, name.strip()[:32], "locked", "account", "wrong passwords")
                log.warning("console account locked after wrong passwords")
            if result.locked_until is not None:
                ends = result.locked_until.astimezone(context.zone)
                until = f"{ends:%Y-%m-%d %H:%M} ({context.zone})"
                return _login_again(request, "locked", 403, until=until)
            return _login_again(request, "Wrong name or password.", 403)
        session_id, _csrf = sessions.start(engine, result.user)
        with engine.begin() as conn:
            audit.record(conn, result.user.name, "sign-in", "console")
        answer = RedirectResponse(PREFIX + "/", status_code=303)
        _set_cookie(answer, request, sessions.COOKIE, signer.sign(session_id), None)
        answer.delete_cookie(sessions.LOGIN_COOKIE, path=PREFIX)
        return answer

    def _login_again(request: Request, error: str, status: int, until: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        page = render(request, "login.html", status, login_csrf=token, error=error, until=until)
        _set_cookie(page, request, sessions.LOGIN_COOKIE, signer.sign(token), 600)
        return page

    @router.post("/logout")
    def log_out(session: Signed, csrf: Csrf = "") -> Response:
        checked(session, csrf, change=False)
        sessions.end(engine, session)
        answer = RedirectResponse(PREFIX + "/login", status_code=303)
        answer.delete_cookie(sessions.COOKIE, path=PREFIX)
        return answer

    def page_to_read(target: str) -> str:
        """`target` if it is a console page one can GET (a form's answer, e.g. a search's
        or an error's, is not), else the dashboard."""
        target = _safe_next(target)
        path = target.split("?", 1)[0]
        for route in router.routes:
            if (
                isinstance(route, APIRoute)
                and "GET" in (route.methods or ())
                and route.path_regex.match(path)
            ):
                return target
        return PREFIX + "/"

    @router.get("/language")
    def language(request: Request, to: str = "en", next: str = PREFIX + "/") -> Response:
        answer = RedirectResponse(page_to_read(next), status_code=303)
        if to in i18n.LANGUAGES:
            answer.set_cookie(
                "console_lang",
                to,
                max_age=365 * 86400,
                path=PREFIX,
                samesite="strict",
                httponly=True,
            )
        return answer

    # ---------------------------------------------------------------- dashboard

    @router.get("/")
    def dashboard(request: Request, session: Signed) -> HTMLResponse:
        figures = dashboard_cache.get()
        labels = [d.day.strftime("%d.%m") for d in figures.days]
        translate = i18n.translator(language_of(request))
        return render(
            request,
            "dashboard.html",
            session=session,
            figures=figures,
            zone=str(context.zone),
            currency=context.current()[1].currency,
            expiring=expiring_cache.peek(),
            liability_chart=charts.line(
                translate("Points liability"), labels, [v for _d, v in figures.liability]
            ),
            points_chart=charts.bars(
                translate("Points earned and spent"),
                labels,
                [d.earned for d in figures.days],
                [d.spent for d in figures.days],
            ),
        )

    # ---------------------------------------------------------------- members

    @router.get("/members")
    def members_page(request: Request, session: Signed) -> HTMLResponse:
        return render(request, "members.html", session=session, results=None, error="")

    @router.post("/members")
    def search(
        request: Request,
        session: Signed,
        csrf: Csrf = "",
        by: Annotated[str, Form(max_length=16)] = "card",
        value: Annotated[str, Form(max_length=64)] = "",
        first_name: Annotated[str, Form(max_length=80)] = "",
    ) -> HTMLResponse:
        # A POST, so a phone or a card number never sits in a URL or an access log.
        checked(session, csrf, change=False)
        # Bounded per account, phones the most: trying the numbers that end in a
        # member's shown digits must take days, not minutes; each phone search is logged.
        if not context.shared.allow(
            "console-search:" + session.user.name, context.searches_per_minute
        ):
            raise HTTPException(429, "Too many searches. Wait a minute.", {"Retry-After": "60"})
        if by == "phone":
            if not context.shared.allow(
                "console-phone:" + session.user.name, context.phone_searches_per_minute
            ):
                raise HTTPException(429, "Too many searches. Wait a minute.", {"Retry-After": "60"})
            note(session, "search", "members by phone")
        ledger, _program = context.current()
        value = value.strip()
        error = ""
        ids: list[str] = []
        if by == "phone":
            e164 = e164_or_none(value.replace(" ", "").replace("-", ""))
            if e164 is None:
                error = "Not a phone number: give it whole, with its country code (+…)."
            else:
                found = ledger.find_member_id("phone", context.phone_hasher.phone_key(e164))
                ids = [found] if found else []
        elif by == "name":
            rows = data.by_name_and_digits(engine, first_name, value)
            return render(request, "members.html", session=session, results=rows, error="")
        else:
            value = value.replace(" ", "")  # as printed under a barcode: 2900 0000 0001 8
            for kind, wanted in (
                ("card_number", value),
                ("card_uid", value.upper()),
                ("member_number", value),
            ):
                found = ledger.find_member_id(kind, wanted) if wanted else None
                if found:
                    ids = [found]
                    break
            if not ids and value and ledger.member(value[:64]) is not None:
                ids = [value]
        return render(
            request, "members.html", session=session, results=data.by_ids(engine, ids), error=error
        )

    def member_or_404(member_id: str) -> data.MemberRow:
        rows = data.by_ids(engine, [member_id[:64]])
        if not rows:
            raise HTTPException(404, "No such member.")
        return rows[0]

    @router.get("/members/{member_id}")
    def member_page(
        request: Request, session: Signed, member_id: str, notice: str = ""
    ) -> HTMLResponse:
        member = member_or_404(member_id)
        ledger, _program = context.current()
        view = ledger.member_view(member.id)
        today = ledger.today()
        with engine.connect() as conn:
            schedule = [
                (days, ledger.points_expiring(conn, member.id, today + timedelta(days=days)))
                for days in (30, 90, 180, 365)
            ]
        return render(
            request,
            "member.html",
            session=session,
            member=member,
            view=view,
            schedule=schedule,
            cards=data.member_cards(engine, member.id),
            history=data.member_history(engine, member.id),
            form_key=uuid7(),
            notice=i18n.NOTICES.get(notice, ""),
            mask=mask_tail,
        )

    def back_to_member(member_id: str, notice: str) -> RedirectResponse:
        return RedirectResponse(
            f"{PREFIX}/members/{quote(member_id, safe='')}?notice={notice}", status_code=303
        )

    @router.post("/members/{member_id}/adjust")
    def adjust(
        request: Request,
        session: Signed,
        member_id: str,
        csrf: Csrf = "",
        points: Annotated[int, Form(ge=-10_000_000, le=10_000_000)] = 0,
        reason: Reason = "",
        key: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        why = with_reason(session, csrf, reason)
        member = member_or_404(member_id)
        if points == 0 or not key:
            raise HTTPException(
                422,
                "An adjustment moves at least one point." if key else "This form is out of date.",
            )
        ledger, _program = context.current()
        try:
            applied, balance = ledger.adjust("console:" + key[:56], member.id, points)
        except OpRejected as exc:
            raise HTTPException(409 if exc.code == "key_reused" else 422, exc.message) from None
        if applied:
            note(
                session,
                "adjust",
                f"member {member.id}",
                f"{points:+d} points, balance {balance}",
                why,
            )
        return back_to_member(member.id, "adjusted" if applied else "already")

    @router.post("/members/{member_id}/block")
    def block(
        session: Signed,
        member_id: str,
        csrf: Csrf = "",
        reason: Reason = "",
    ) -> Response:
        why = with_reason(session, csrf, reason)
        member = member_or_404(member_id)
        ledger, _program = context.current()
        blocked = ledger.block_cards(member.id) + ledger.block_card_numbers(member.id)
        note(
            session,
            "block-cards",
            f"member {member.id}",
            ", ".join(mask_tail(uid, 4) for uid in blocked) or "no card linked",
            why,
        )
        return back_to_member(member.id, "blocked" if blocked else "no-card")

    @router.post("/members/{member_id}/link")
    def link(
        session: Signed,
        member_id: str,
        csrf: Csrf = "",
        kind: Annotated[str, Form(max_length=16)] = "card_uid",
        value: Annotated[str, Form(max_length=64)] = "",
        reason: Reason = "",
    ) -> Response:
        why = with_reason(session, csrf, reason)
        member = member_or_404(member_id)
        value = value.strip().replace(" ", "")
        value = value.upper() if kind == "card_uid" else value
        problem = data.card_problem(kind, value)
        if problem:
            raise HTTPException(422, problem)
        ledger, _program = context.current()
        from pos_client.ledger.ledger import BLOCKED_CARD_NUMBER, BLOCKED_CARD_UID

        blocked_kind = BLOCKED_CARD_UID if kind == "card_uid" else BLOCKED_CARD_NUMBER
        if ledger.find_member_id(kind, value) or ledger.find_member_id(blocked_kind, value):
            raise HTTPException(409, "This card is linked to a member already, or blocked.")
        ledger.link_identifier(member.id, kind, value)
        note(
            session,
            "link-card",
            f"member {member.id}",
            f"{kind} {mask_tail(value, 4)}",
            why,
        )
        return back_to_member(member.id, "linked")

    # ---------------------------------------------------------------- terminals

    def fleet_page(
        request: Request, session: sessions.Session, template: str, rows: Any
    ) -> HTMLResponse:
        translate = i18n.translator(language_of(request))
        return render(
            request,
            template,
            session=session,
            rows=rows,
            ago=lambda seconds: _ago(seconds, translate),
        )

    @router.get("/terminals")
    def terminals_page(request: Request, session: Signed) -> HTMLResponse:
        return fleet_page(request, session, "terminals.html", heartbeats.fleet(engine, utcnow()))

    @router.get("/dead-letters")
    def dead_letters_page(request: Request, session: Signed) -> HTMLResponse:
        rows = heartbeats.dead_letters(engine, utcnow())
        return fleet_page(request, session, "dead_letters.html", rows)

    @router.post("/terminals")
    def add_terminal(
        request: Request,
        session: Signed,
        csrf: Csrf = "",
        name: Annotated[str, Form(max_length=120)] = "",
    ) -> HTMLResponse:
        checked(session, csrf)
        name = unicodedata.normalize("NFC", name.strip())
        name_taken(name)  # also what a form sent twice (a reload) meets: no second till
        try:
            terminal_id, code = terminal_store.add_terminal(
                engine, name, context.pairing_code_ttl_s
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        note(session, "add-terminal", f"terminal {terminal_id}", name)
        server = str(request.base_url).rstrip("/")
        command = f"pos-client pair {server} {code}"
        return render(
            request,
            "pairing.html",
            session=session,
            name=name,
            code=code,
            command=command,
            qr=_qr_svg(command),
            minutes=context.pairing_code_ttl_s // 60,
        )

    def name_taken(name: str) -> None:
        """A terminal in service has this name already: refused (the fleet and the dead
        letters tell terminals apart by name)."""
        with engine.connect() as conn:
            taken = conn.execute(
                select(terminals.c.id).where(
                    terminals.c.name == name, terminals.c.revoked_at.is_(None)
                )
            ).first()
        if taken is not None:
            raise HTTPException(409, "A terminal in service has this name already.")

    def terminal_or_404(terminal_id: str) -> Any:
        with engine.connect() as conn:
            row = conn.execute(
                select(terminals.c.id, terminals.c.name, terminals.c.revoked_at).where(
                    terminals.c.id == terminal_id[:64]
                )
            ).first()
        if row is None:
            raise HTTPException(404, "No such terminal.")
        return row

    @router.post("/terminals/{terminal_id}/rename")
    def rename(
        session: Signed,
        terminal_id: str,
        csrf: Csrf = "",
        name: Annotated[str, Form(max_length=120)] = "",
    ) -> Response:
        checked(session, csrf)

        row = terminal_or_404(terminal_id)
        name = unicodedata.normalize("NFC", name.strip())
        problem = terminal_store.name_problem(name)
        if problem:
            raise HTTPException(422, f"terminal name: {problem}")
        if name != row.name:
            name_taken(name)
        with engine.begin() as conn:
            conn.execute(terminals.update().where(terminals.c.id == row.id).values(name=name))
            audit.record(
                conn,
                session.user.name,
                "rename-terminal",
                f"terminal {row.id}",
                f"{row.name} → {name}",
            )
        return RedirectResponse(PREFIX + "/terminals", status_code=303)

    @router.post("/terminals/{terminal_id}/revoke")
    def revoke(
        session: Signed,
        terminal_id: str,
        csrf: Csrf = "",
        reason: Reason = "",
    ) -> Response:
        why = with_reason(session, csrf, reason)
        row = terminal_or_404(terminal_id)
        if terminal_store.revoke(engine, row.id):
            note(
                session,
                "revoke-terminal",
                f"terminal {row.id}",
                row.name,
                why,
            )
        return RedirectResponse(PREFIX + "/terminals", status_code=303)

    # ---------------------------------------------------------------- flags

    @router.get("/flags")
    def flags_page(request: Request, session: Signed) -> HTMLResponse:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    flags.c.member_id,
                    flags.c.day,
                    flags.c.earnings,
                    flags.c.flagged_at,
                    flag_reviews.c.decision,
                    flag_reviews.c.user_name,
                    members.c.first_name,
                    members.c.last_name,
                )
                .select_from(
                    flags.outerjoin(
                        flag_reviews,
                        (flag_reviews.c.member_id == flags.c.member_id)
                        & (flag_reviews.c.day == flags.c.day),
                    ).outerjoin(members, members.c.id == flags.c.member_id)
                )
                .order_by(flag_reviews.c.decision.is_not(None), flags.c.flagged_at.desc())
                .limit(500)
            ).all()
        return render(request, "flags.html", session=session, rows=rows)

    @router.post("/flags/{member_id}/{day}/{decision}")
    def decide(
        session: Signed,
        member_id: str,
        day: str,
        decision: str,
        csrf: Csrf = "",
        reason: Reason = "",
    ) -> Response:
        why = with_reason(session, csrf, reason)
        if decision not in ("approve", "reverse"):
            raise HTTPException(404, "No such decision.")
        try:
            store_day = date.fromisoformat(day[:10])
        except ValueError:
            raise HTTPException(404, "No such flag.") from None
        with engine.connect() as conn:
            flagged = conn.execute(
                select(flags.c.earnings).where(
                    flags.c.member_id == member_id[:64], flags.c.day == store_day
                )
            ).first()
        if flagged is None:
            raise HTTPException(404, "No such flag.")
        review = {
            "member_id": member_id[:64],
            "day": store_day,
            "decision": "approved" if decision == "approve" else "reversed",
            "user_name": session.user.name,
            "at": utcnow(),
        }
        try:  # the row's key decides: of two managers deciding at once, one does
            with engine.begin() as conn:
                conn.execute(flag_reviews.insert().values(**review))
        except IntegrityError:
            raise HTTPException(409, "This flag was decided already.") from None
        detail = "earnings approved"
        if decision == "reverse":
            ledger, _program = context.current()
            earned = _earned_on(engine, member_id, store_day, context.zone)
            key = "reverse:" + hashlib.sha256(f"{member_id}|{store_day}".encode()).hexdigest()[:48]
            try:
                if earned <= 0:
                    raise OpRejected("bad_request", "Nothing was earned that day to reverse.")
                _applied, balance = ledger.adjust(key, member_id, -earned)
            except OpRejected as exc:
                with engine.begin() as conn:  # not decided after all
                    conn.execute(
                        flag_reviews.delete().where(
                            flag_reviews.c.member_id == review["member_id"],
                            flag_reviews.c.day == store_day,
                        )
                    )
                raise HTTPException(422, exc.message) from None
            detail = f"-{earned} points reversed, balance {balance}"
        note(
            session,
            f"flag-{decision}",
            f"member {member_id[:64]} {store_day}",
            detail,
            why,
        )
        return RedirectResponse(PREFIX + "/flags", status_code=303)

    # ---------------------------------------------------------------- programme

    def program_page(
        request: Request,
        session: sessions.Session,
        status: int = 200,
        error: str = "",
        preview: dict[str, Any] | None = None,
        notice: str = "",
    ) -> HTMLResponse:
        from pos_client.program_words import describe_program

        snapshot = context.programs.snapshot()
        return render(
            request,
            "program.html",
            status,
            session=session,
            active=snapshot.document.version,
            words=describe_program(snapshot.program),
            versions=program_versions.list_versions(
                engine, utcnow(), context.programs.base.document
            ),
            error=error,
            notice=notice,
            preview=preview,
            zone=str(context.zone),
            soon=f"{utcnow().astimezone(context.zone) + timedelta(hours=1):%Y-%m-%dT%H:00:00}",
        )

    @router.get("/program")
    def program_get(request: Request, session: Signed, notice: str = "") -> HTMLResponse:
        return program_page(request, session, notice=i18n.NOTICES.get(notice, ""))

    def activation_time(text: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text.strip()[:32])
        except ValueError:
            raise HTTPException(422, "The activation time is a date and a time.") from None
        if moment.tzinfo is None:  # as the form gives it: the store's time
            moment = moment.replace(tzinfo=context.zone)
        return moment.astimezone(UTC)

    @router.post("/program/preview")
    async def program_preview(
        request: Request,
        session: Signed,
        csrf: Csrf = "",
        activate_at: Annotated[str, Form(max_length=32)] = "",
        file: Annotated[UploadFile | None, File()] = None,
    ) -> HTMLResponse:
        checked(session, csrf)
        when = activation_time(activate_at)
        now = utcnow()
        if when < now - program_versions.PAST_TOLERANCE:
            return program_page(request, session, 422, "The activation time is in the past.")
        if when > now + program_versions.FURTHEST_AHEAD:
            return program_page(
                request, session, 422, "The activation time is more than a year ahead."
            )
        if file is None:
            return program_page(request, session, 422, "Choose a programme file (TOML).")
        raw = await file.read(MAX_PROGRAM_BYTES + 1)
        label = (file.filename or "uploaded programme")[:80]
        try:
            document, program = program_versions.check_program_source(raw, label)
        except program_versions.ProgramSourceError as exc:
            return program_page(request, session, 422, str(exc))
        from pos_client.program_words import describe_program

        return program_page(
            request,
            session,
            preview={
                "version": document.version,
                "changes": program_versions.describe_changes(
                    context.programs.snapshot().program, program
                ),
                "words": describe_program(program),
                # The file's very bytes (a textarea would turn its newlines into CRLF, and
                # the version, the text's hash, with them).
                "source": base64.b64encode(raw).decode(),
                "activate_at": when,
                "activate_text": activate_at.strip()[:32],  # as given, with any offset
            },
        )

    @router.post("/program/activate")
    def program_activate(
        request: Request,
        session: Signed,
        csrf: Csrf = "",
        source: Annotated[str, Form(max_length=MAX_PROGRAM_BYTES * 4 // 3 + 4)] = "",
        activate_at: Annotated[str, Form(max_length=32)] = "",
        reason: Reason = "",
    ) -> Response:
        checked(session, csrf)
        problem = _reason_problem(reason)
        if problem:
            return program_page(request, session, 422, problem)
        why = reason.strip()
        when = activation_time(activate_at)
        try:
            raw = base64.b64decode(source, validate=True)
        except ValueError:
            raise HTTPException(422, "This form is out of date.") from None
        try:
            stored = program_versions.add_version(engine, raw, session.user.name, when)
        except (program_versions.ProgramSourceError, program_versions.VersionRefused) as exc:
            return program_page(request, session, 422, str(exc))
        context.programs.refresh()
        note(
            session,
            "program-upload",
            f"programme {stored.version}",
            f"active from {stored.activate_at.astimezone(context.zone):%Y-%m-%d %H:%M}",
            why,
        )
        return RedirectResponse(PREFIX + "/program?notice=scheduled", status_code=303)

    @router.post("/program/{version}/cancel")
    def program_cancel(
        request: Request,
        session: Signed,
        version: str,
        csrf: Csrf = "",
        reason: Reason = "",
    ) -> Response:
        checked(session, csrf)
        problem = _reason_problem(reason)
        if problem:
            return program_page(request, session, 422, problem)
        why = reason.strip()
        try:
            program_versions.cancel_version(engine, version[:64])
        except program_versions.VersionRefused as exc:
            return program_page(request, session, 409, str(exc))
        context.programs.refresh()
        note(
            session,
            "program-cancel",
            f"programme {version[:64]}",
            "",
            why,
        )
        return RedirectResponse(PREFIX + "/program?notice=cancelled", status_code=303)

    # ---------------------------------------------------------------- audit, exports

    @router.get("/audit")
    def audit_page(request: Request, session: Signed, page: int = 0) -> HTMLResponse:
        page = max(0, min(page, 10_000))
        return render(
            request,
            "audit.html",
            session=session,
            entries=audit.recent(engine, 100, page * 100),
            page=page,
        )

    @router.get("/exports")
    def exports_page(request: Request, session: Signed) -> HTMLResponse:
        today = totals.local_day(utcnow(), context.zone)
        return render(
            request,
            "exports.html",
            session=session,
            first=(today.replace(day=1)).isoformat(),
            last=today.isoformat(),
        )

    def csv_answer(name: str, rows: Iterator[list[Any]]) -> StreamingResponse:
        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in rows:
                writer.writerow([_cell(value) for value in row])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()

        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                **SECURITY_HEADERS,
            },
        )

    @router.get("/exports/members.csv")
    def export_members(session: Signed) -> StreamingResponse:
        def rows() -> Iterator[list[Any]]:
            yield ["member_id", "first_name", "last_name", "card_number", "balance", "enrolled_at"]
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=2000).execute(
                    select(
                        members.c.id,
                        members.c.first_name,
                        members.c.last_name,
                        members.c.card_number,
                        members.c.balance,
                        members.c.enrolled_at,
                    ).order_by(members.c.id)
                )
                for row in result:
                    yield [*row[:5], row[5].isoformat()]

        _audit_export(session, "members")
        return csv_answer("members.csv", rows())

    @router.get("/exports/transactions.csv")
    def export_transactions(session: Signed, start: str = "", end: str = "") -> StreamingResponse:
        try:
            first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
        except ValueError:
            raise HTTPException(422, "Dates as YYYY-MM-DD.") from None
        if not timedelta(0) <= last - first <= timedelta(days=400):
            raise HTTPException(422, "A period of at most 400 days, its end after its start.")
        since = totals.day_start(first, context.zone)
        until = totals.day_start(last + timedelta(days=1), context.zone)

        def rows() -> Iterator[list[Any]]:
            yield [
                "occurred_at",
                "store_day",
                "member_id",
                "kind",
                "points",
                "amount_minor",
                "reward_id",
                "merchant",
                "op_key",
            ]
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=5000).execute(
                    select(
                        transactions.c.occurred_at,
                        transactions.c.member_id,
                        transactions.c.kind,
                        transactions.c.points,
                        transactions.c.amount_minor,
                        transactions.c.reward_id,
                        transactions.c.merchant,
                        transactions.c.op_key,
                    )
                    .where(transactions.c.occurred_at >= since, transactions.c.occurred_at < until)
                    .order_by(transactions.c.occurred_at, transactions.c.id)
                )
                for row in result:
                    yield [
                        row[0].isoformat(),
                        totals.local_day(row[0], context.zone).isoformat(),
                        *row[1:],
                    ]

        _audit_export(session, f"transactions {first}..{last}")
        return csv_answer(f"transactions-{first}-{last}.csv", rows())

    @router.get("/exports/liability.csv")
    def export_liability(session: Signed) -> StreamingResponse:
        figures = dashboard_cache.get()

        def rows() -> Iterator[list[Any]]:
            yield ["store_day", "outstanding_points", "money_value"]
            for day, points in figures.liability:
                money = figures.money(points)
                yield [day.isoformat(), points, "" if money is None else str(money)]

        _audit_export(session, "liability")
        return csv_answer("liability.csv", rows())

    def _audit_export(session: sessions.Session, what: str) -> None:
        note(session, "export", what)

    return router


def install_console(app: Any, context: ConsoleContext) -> None:
    """The console's pages, its static files, and its answers as pages: a request without
    a session goes to the sign-in page; a refusal under /console is an HTML page."""
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    pages = Pages(context)
    app.include_router(console_router(context, pages))
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    validation_default = app.exception_handlers.get(RequestValidationError)

    def page(request: Request, status: int, message: str, fields: str = "") -> HTMLResponse:
        # Signed in, the page keeps its menu (and sign-out) around the message.
        session = pages.session_of(request)
        return pages.render(request, "error.html", status, session, message=message, fields=fields)

    async def not_signed_in(request: Request, _exc: Exception) -> Response:
        return RedirectResponse(PREFIX + "/login", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX + "/") and isinstance(exc, StarletteHTTPException):
            detail = exc.detail if isinstance(exc.detail, str) else "Refused."
            return page(request, exc.status_code, detail)
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]

    async def invalid(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX + "/"):
            errors = exc.errors() if isinstance(exc, RequestValidationError) else []
            fields = ", ".join(sorted({str(e["loc"][-1])[:32] for e in errors[:5] if e.get("loc")}))
            return page(request, 422, "Some of the form's values are not valid.", fields)
        assert validation_default is not None
        answer: Response = await validation_default(request, exc)
        return answer

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(StarletteHTTPException, refused)
    app.add_exception_handler(RequestValidationError, invalid)


def _ago(seconds: float | None, translate: Callable[[str], str] = str) -> str:
    """A duration as a person reads it: 45 s, 12 min, 3 h, 2 d (the unit translated)."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {translate(unit)}"
    return f"{int(seconds)} {translate('s')}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting =, +, -, @ gets a quote."""
    if isinstance(value, str) and unicodedata.normalize("NFKC", value[:1]) in FORMULA_STARTS:
        return "'" + value
    return "" if value is None else value


def _earned_on(engine: Engine, member_id: str, day: date, zone: ZoneInfo) -> int:
    """Points the member earned (earning kinds) recorded on the store day `day`."""
    from sqlalchemy import func

    start = totals.day_start(day, zone)
    end = totals.day_start(day + timedelta(days=1), zone)
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(transactions.c.points), 0)).where(
                    transactions.c.member_id == member_id,
                    transactions.c.kind.in_(totals.EARNING_KINDS),
                    transactions.c.recorded_at >= start,
                    transactions.c.recorded_at < end,
                )
            ).scalar_one()
        )


def _expiring(ledger: Ledger, zone: ZoneInfo) -> tuple[int, int, datetime]:
    today = totals.local_day(utcnow(), zone)
    return (
        ledger.points_expiring_total(today + timedelta(days=30)),
        ledger.points_expiring_total(today + timedelta(days=90)),
        utcnow(),
    )


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age if max_age is not None else int(sessions.LIFETIME.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _qr_svg(text: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg: bytes = image.to_string()
    return svg.decode()
