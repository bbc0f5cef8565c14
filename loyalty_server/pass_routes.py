"""The wallet pass endpoints: a terminal asks for a member's short-lived link (POST
/v1/passes, with its token); the member's phone opens the link (no token: the link is the
authority, for ten minutes) and gets a page offering the Apple pass and the Google save
link. Off (404 `passes_off`) until the store configures its keys."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from loyalty_server.bodies import HostileJSONRoute
from loyalty_server.passes import (
    AppleSigner,
    GoogleSigner,
    PassesUnavailable,
    PassHolder,
    PassLinks,
    apple_pass,
    google_save_link,
)
from loyalty_server.settings import PassSettings
from pos_client.ledger import Ledger
from pos_client.privacy import load_or_create_key

log = logging.getLogger(__name__)

PKPASS = "application/vnd.apple.pkpass"


class PassRequest(BaseModel):
    member_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class PassLinkOut(BaseModel):
    url: str = Field(description="the page a phone opens (show it as a QR code)")
    expires_at: datetime
    apple: bool = Field(description="an Apple Wallet pass is offered")
    google: bool = Field(description="a Google Wallet save link is offered")


def signers(
    settings: PassSettings, program_name: str
) -> tuple[AppleSigner | None, GoogleSigner | None, PassLinks | None]:
    """The configured signers and the link key, checked (PassesUnavailable says what is
    wrong, in one line: `serve` refuses to start on it)."""
    apple = google = None
    apple_given = [
        settings.apple_pass_type_id,
        settings.apple_team_id,
        settings.apple_cert,
        settings.apple_key,
        settings.apple_wwdr,
    ]
    if any(apple_given) and not settings.apple:  # half set: never silently off
        raise PassesUnavailable(
            "Apple passes need LOYALTY_SERVER_APPLE_PASS_TYPE_ID and _APPLE_PASS_CERT both"
        )
    if bool(settings.google_key_file) != bool(settings.google_issuer_id):
        raise PassesUnavailable(
            "Google passes need LOYALTY_SERVER_GOOGLE_WALLET_KEY_FILE and _ISSUER_ID both"
        )
    if settings.google and not re.fullmatch(r"[0-9]{1,30}", settings.google_issuer_id):
        raise PassesUnavailable("LOYALTY_SERVER_GOOGLE_WALLET_ISSUER_ID: expected digits")
    if settings.google and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", settings.google_class):
        raise PassesUnavailable("LOYALTY_SERVER_GOOGLE_WALLET_CLASS: expected a class id")
    if settings.apple:
        assert settings.apple_cert and settings.apple_key and settings.apple_wwdr
        apple = AppleSigner.from_files(
            settings.apple_pass_type_id,
            settings.apple_team_id,
            program_name,
            settings.apple_cert,
            settings.apple_key,
            settings.apple_wwdr,
        )
    if settings.google:
        assert settings.google_key_file
        google = GoogleSigner.from_key_file(
            settings.google_key_file, settings.google_issuer_id, settings.google_class, program_name
        )
    links = None
    if apple or google:
        try:
            links = PassLinks(load_or_create_key(settings.link_key_file))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise PassesUnavailable(
                f"pass link key file {settings.link_key_file}: {reason}"
            ) from None
    return apple, google, links


# The phone's page and files: nothing loaded from elsewhere, not framed, no referrer (the
# token is in the address), never sniffed as another type.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
TOKEN = re.compile(r"[A-Za-z0-9_=-]{1,120}\.[0-9]{1,12}\.[A-Za-z0-9_=-]{1,40}")
GONE = "this link has expired: ask the kiosk for a new one"


def pass_router(
    settings: PassSettings,
    ledger: Ledger | Callable[[], Ledger],
    program_name: str,
    auth: Any,
    allow: Callable[[str], bool],
    documented: dict[int | str, dict[str, Any]],
) -> APIRouter:
    """`auth`: the terminal dependency; `allow(bucket)`: a per-minute budget ("lookup:"
    and the terminal's id for a new link, "pass:" and the member's for a link's files);
    `documented`: the app's 401, 400 and 413 answers; `ledger`: one, or where to get the
    one of the programme in force for each request."""
    router = APIRouter(route_class=HostileJSONRoute)
    apple, google, links = signers(settings, program_name)
    ledger_now: Callable[[], Ledger] = ledger if callable(ledger) else lambda: ledger

    def holder_of(token: str) -> PassHolder:
        member_id = links.member_of(token) if links and TOKEN.fullmatch(token) else None
        view = ledger_now().member_view(member_id) if member_id else None
        if view is None or not view.card_number:
            raise HTTPException(404, GONE, headers=PAGE_HEADERS)
        if not allow("pass:" + view.member_id):
            raise HTTPException(
                429,
                "too many requests for this card; wait a minute",
                headers={**PAGE_HEADERS, "Retry-After": "60"},
            )
        return PassHolder(
            view.member_id, view.display_name, view.card_number, view.balance, view.tier_name
        )

    @router.post(
        "/v1/passes",
        response_model=PassLinkOut,
        responses={
            **documented,
            404: {"description": "no such member, or passes are off"},
            429: {"description": "too many member reads from this terminal"},
        },
    )
    def new_link(body: PassRequest, request: Request, who: Any = Depends(auth)) -> Any:  # noqa: B008
        """A short-lived link to the member's wallet passes, for a kiosk's QR code."""
        if links is None:
            raise HTTPException(404, "passes_off: this server has no wallet pass keys")
        if not allow("lookup:" + who.id):
            raise HTTPException(
                429,
                "too many member reads from this terminal; wait a minute",
                headers={"Retry-After": "60"},
            )
        if ledger_now().member_view(body.member_id) is None:
            raise HTTPException(404, "no such member")
        token, expires = links.issue(body.member_id)
        base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return PassLinkOut(
            url=f"{base}/v1/passes/{token}",
            expires_at=datetime.fromtimestamp(expires, UTC),
            apple=apple is not None,
            google=google is not None,
        )

    gone: dict[int | str, dict[str, Any]] = {
        404: {"description": "an expired or unknown link, or no such pass here"},
        429: {"description": "too many requests for this card"},
    }

    def refused_page(refused: HTTPException) -> HTMLResponse:
        """A phone shows a page, never a JSON error."""
        text = GONE if refused.status_code == 404 else str(refused.detail)
        return HTMLResponse(
            _page(program_name, f"<p>{html.escape(text)}</p>"),
            status_code=refused.status_code,
            headers=dict(refused.headers or PAGE_HEADERS),
        )

    @router.get("/v1/passes/{token}", response_class=HTMLResponse, responses=gone)
    def page(token: str) -> HTMLResponse:
        """The phone's page: the card for Apple Wallet and for Google Wallet."""
        try:
            holder = holder_of(token)
        except HTTPException as refused:
            return refused_page(refused)
        offers = [f"<p>{html.escape(holder.display_name)}</p>"]
        if apple is not None:
            offers.append(f'<a class="b" href="{token}/apple.pkpass">Add to Apple Wallet</a>')
        if google is not None:
            offers.append(f'<a class="b" href="{token}/google">Add to Google Wallet</a>')
        return HTMLResponse(_page(program_name, "".join(offers)), headers=PAGE_HEADERS)

    @router.get(
        "/v1/passes/{token}/apple.pkpass",
        response_class=Response,
        responses={**gone, 200: {"content": {PKPASS: {}}, "description": "the pass"}},
    )
    def apple_file(token: str) -> Response:
        try:
            holder = holder_of(token)
            if apple is None:
                raise HTTPException(404, GONE, headers=PAGE_HEADERS)
        except HTTPException as refused:
            return refused_page(refused)
        try:
            data = apple_pass(apple, holder, program_name)
        except PassesUnavailable as exc:
            log.warning("Apple pass not made: %s", exc)
            raise HTTPException(503, "the pass cannot be made now") from None
        return Response(
            data,
            media_type=PKPASS,
            headers={**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="card.pkpass"'},
        )

    @router.get(
        "/v1/passes/{token}/google",
        response_class=RedirectResponse,
        status_code=303,
        responses={**gone, 303: {"description": "to Google Wallet's save page"}},
    )
    def google_link(token: str) -> Response:
        try:
            holder = holder_of(token)
            if google is None:
                raise HTTPException(404, GONE, headers=PAGE_HEADERS)
        except HTTPException as refused:
            return refused_page(refused)
        return RedirectResponse(
            google_save_link(google, holder), status_code=303, headers=PAGE_HEADERS
        )

    return router


def _page(program_name: str, body: str) -> str:
    name = html.escape(program_name)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{name}</title><style>body{{font-family:sans-serif;margin:2em}}"
        ".b{display:block;padding:1em;margin:1em 0;background:#204060;color:#fff;"
        "text-align:center;border-radius:8px;text-decoration:none}</style></head><body>"
        f"<h1>{name}</h1>{body}</body></html>"
    )
