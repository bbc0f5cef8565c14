"""The wallet pass endpoints: a terminal asks for a member's short-lived link (POST
/v1/passes, with its token); the member's phone opens the link (no token: the link is the
authority, for ten minutes) and gets a page offering the Apple pass and the Google save
link. Off (404 `passes_off`) until the store configures its keys."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
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
Token = Annotated[str, PathParam(max_length=200, pattern=r"^[A-Za-z0-9_.=-]+$")]


class PassRequest(BaseModel):
    member_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class PassLinkOut(BaseModel):
    url: str = Field(description="the page a phone opens (show it as a QR code)")
    expires_at: datetime
    apple: bool = Field(description="an Apple Wallet pass is offered")
    google: bool = Field(description="a Google Wallet save link is offered")


def pass_router(
    settings: PassSettings,
    ledger: Ledger,
    program_name: str,
    auth: Any,
    allow: Callable[[str], bool],
) -> APIRouter:
    """`auth`: the terminal dependency; `allow(terminal_id)`: the terminal's lookup budget."""
    router = APIRouter(route_class=HostileJSONRoute)
    apple = google = None
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
    links = PassLinks(load_or_create_key(settings.link_key_file)) if apple or google else None

    def holder_of(token: str) -> PassHolder:
        member_id = links.member_of(token) if links else None
        view = ledger.member_view(member_id) if member_id else None
        if view is None or not view.card_number:
            raise HTTPException(404, "this link has expired: ask the kiosk for a new one")
        return PassHolder(
            view.member_id, view.display_name, view.card_number, view.balance, view.tier_name
        )

    @router.post(
        "/v1/passes",
        response_model=PassLinkOut,
        responses={
            401: {"description": "missing, wrong or revoked terminal token"},
            404: {"description": "no such member, or passes are off"},
            429: {"description": "too many member reads from this terminal"},
        },
    )
    def new_link(body: PassRequest, request: Request, who: Any = Depends(auth)) -> Any:  # noqa: B008
        """A short-lived link to the member's wallet passes, for a kiosk's QR code."""
        if links is None:
            raise HTTPException(404, "passes_off: this server has no wallet pass keys")
        if not allow(who.id):
            raise HTTPException(429, "too many member reads from this terminal; wait a minute")
        if ledger.member_view(body.member_id) is None:
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
        404: {"description": "an expired or unknown link, or no such pass here"}
    }

    @router.get("/v1/passes/{token}", response_class=HTMLResponse, responses=gone)
    def page(token: Token) -> HTMLResponse:
        """The phone's page: the card for Apple Wallet and for Google Wallet."""
        holder = holder_of(token)
        offers = []
        if apple is not None:
            offers.append(f'<a class="b" href="{token}/apple.pkpass">Add to Apple Wallet</a>')
        if google is not None:
            offers.append(f'<a class="b" href="{token}/google">Add to Google Wallet</a>')
        name = html.escape(program_name)
        body = (
            '<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{name}</title><style>body{{font-family:sans-serif;margin:2em}}"
            ".b{display:block;padding:1em;margin:1em 0;background:#204060;color:#fff;"
            "text-align:center;border-radius:8px;text-decoration:none}</style></head><body>"
            f"<h1>{name}</h1><p>{html.escape(holder.display_name)}</p>{''.join(offers)}"
            "</body></html>"
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @router.get(
        "/v1/passes/{token}/apple.pkpass",
        response_class=Response,
        responses={**gone, 200: {"content": {PKPASS: {}}, "description": "the pass"}},
    )
    def apple_file(token: Token) -> Response:
        holder = holder_of(token)
        if apple is None:
            raise HTTPException(404, "no Apple Wallet passes here")
        try:
            data = apple_pass(apple, holder, program_name)
        except PassesUnavailable as exc:
            log.warning("Apple pass not made: %s", exc)
            raise HTTPException(503, "the pass cannot be made now") from None
        return Response(
            data,
            media_type=PKPASS,
            headers={
                "Content-Disposition": 'attachment; filename="card.pkpass"',
                "Cache-Control": "no-store",
            },
        )

    @router.get(
        "/v1/passes/{token}/google",
        response_class=RedirectResponse,
        status_code=303,
        responses={**gone, 303: {"description": "to Google Wallet's save page"}},
    )
    def google_link(token: Token) -> RedirectResponse:
        holder = holder_of(token)
        if google is None:
            raise HTTPException(404, "no Google Wallet passes here")
        return RedirectResponse(google_save_link(google, holder), status_code=303)

    return router
