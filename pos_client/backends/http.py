"""The Backend port over HTTP (loyalty_server), with requests.

Every call has a connect and a read timeout; TLS is verified. A timeout, a refused
connection, a 5xx or a refused token raise BackendUnavailable: the outbox keeps the sale and
the sync worker re-sends the same keys later, which the server applies once.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pos_client.domain import IdentityKind, MemberView, member_view_from_json
from pos_client.heartbeat import Heartbeat
from pos_client.operations import OpRejected, StaffAward
from pos_client.pins import PinCheck, PinRefused
from pos_client.ports import (
    BackendServerError,
    BackendUnavailable,
    CardRefused,
    OpResult,
    Outcome,
)
from pos_client.program import MAX_PROGRAM_BYTES, ProgramDocument

log = logging.getLogger(__name__)


# Answers to a whole batch that will never succeed as sent (never retried as offline).
REFUSED_BATCH = {413: "too_large", 422: "bad_request"}
# The programme's JSON rules beside its TOML text, escaped: a generous bound.
MAX_PROGRAM_ANSWER = 4 * MAX_PROGRAM_BYTES
# A pairing answer kept on disk: a token of printable ASCII, a phone key of 64 hex digits.
TOKEN_PATTERN = re.compile(r"[!-~]{16,512}")
PHONE_KEY_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
TERMINAL_ID_PATTERN = re.compile(r"[!-~]{1,128}")
MAX_ERROR_TEXT = 300
# A heartbeat waits less for its answer than a batch: it must never hold up the sync.
HEARTBEAT_READ_TIMEOUT_S = 5.0


# The server's pass page (under a path prefix when it sits behind one), nothing else.
PASS_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/v1/passes/[A-Za-z0-9_.=-]+"
)


class MalformedAnswer(BackendUnavailable):
    """The server (or a proxy before it) answered with something not of the expected
    shape: treated as the backend being unavailable, so nothing sent is lost."""


def _json(response: Any, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, nesting
        raise MalformedAnswer(
            f"{what}: the answer is not JSON (HTTP {response.status_code})"
        ) from None


def _detail(response: Any) -> Any:
    """A refusal's `detail`, or None when the body is not a JSON object holding one."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    return body.get("detail") if isinstance(body, dict) else None


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)[:MAX_ERROR_TEXT]
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_ERROR_TEXT])


def parse_results(answer: Any, keys: Sequence[str]) -> list[OpResult]:
    """The batch answer's results, checked: a list of objects with a known outcome, one
    for each key sent and for no other. Anything else raises MalformedAnswer."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise MalformedAnswer("batch: the answer has no list of results")
    parsed: list[OpResult] = []
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise MalformedAnswer("batch: a result is not an object with a key")
        try:
            outcome = Outcome(str(item.get("outcome")))
        except ValueError:
            raise MalformedAnswer("batch: a result has an unknown outcome") from None
        result = item.get("result")
        if result is not None and not isinstance(result, dict):
            raise MalformedAnswer("batch: a result's detail is not an object")
        code = item.get("code")
        if code is not None and not isinstance(code, str):
            raise MalformedAnswer("batch: a result's code is not text")
        parsed.append(
            OpResult(item["key"], outcome, result, _short(code), _short(item.get("error")))
        )
    answered = [result.key for result in parsed]
    # One result at most per key sent, none for another key; a key left without a result
    # is the sync worker's to retry a bounded number of times, then to dead-letter.
    if len(set(answered)) < len(answered) or set(answered) - set(keys):
        raise MalformedAnswer("batch: the results do not match the operations sent")
    return parsed


# A refused card check's status, as the screens' error code (others: card_refused).
TAP_REFUSALS = {409: "card_replayed", 410: "card_blocked"}


class Throttled(BackendUnavailable):
    """429: the server is up and asks this terminal to slow down."""


class TokenRefused(BackendUnavailable):
    """401: the server is up and refuses this terminal's token."""


class HttpBackend:
    def __init__(
        self,
        base_url: str,
        token: str,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        import requests

        self.requests = requests
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "pos-client"
        # The environment is read once, here (requests would consult it on every request,
        # a sixth of a draining terminal's CPU): its proxies (HTTPS_PROXY, NO_PROXY), a store
        # network may need one; and its CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) when
        # no CA is configured, as for pairing, so a store with a private CA stays reachable.
        # Never ~/.netrc: an entry for the server's host replaced the terminal's token.
        if verify is True:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        self.session.verify = verify
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.trust_env = False

    def __repr__(self) -> str:
        return f"HttpBackend({self.base_url!r}, token=<hidden>)"

    def _call(
        self, method: str, path: str, timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> Any:
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=timeout or self.timeout, **kwargs
            )
        except self.requests.Timeout:
            raise BackendUnavailable(f"{path}: timed out") from None
        except self.requests.RequestException as exc:
            raise BackendUnavailable(f"{path}: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise TokenRefused("the server refused this terminal's token (revoked?)")
        if response.status_code == 429:
            raise Throttled("the server asks to slow down")
        if response.status_code >= 500:
            raise BackendServerError(f"{path}: server error {response.status_code}")
        return response

    def ping(self) -> None:
        response = self._call("GET", "/v1/health")
        if response.status_code != 200:
            raise BackendUnavailable(f"health: HTTP {response.status_code}")

    def tap(self, url: str, uid: bytes | None = None) -> MemberView | None:
        """A secure card's message verified by the server: the member, None for a genuine
        card linked to no one; CardRefused for a copy, a forgery or a message that is none."""
        body = {"url": url} if uid is None else {"url": url, "uid": uid.hex().upper()}
        try:
            response = self._call("POST", "/v1/cards/tap", json=body)
        except (Throttled, TokenRefused) as exc:  # answered, and refused: not offline
            raise CardRefused(f"the store server refused this card check: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code in (400, 403, 409, 410, 422):
            detail = _short(_detail(response)) or f"HTTP {response.status_code}"
            code = TAP_REFUSALS.get(response.status_code, "card_refused")
            raise CardRefused(f"the store server refused this card: {detail}", code)
        if response.status_code != 200:
            raise BackendUnavailable(f"card tap: HTTP {response.status_code}")
        return _member(_json(response, "card tap"))

    def card_known(self, uid: bytes) -> bool:
        response = self._call("POST", "/v1/cards/known", json={"uid": uid.hex().upper()})
        if response.status_code != 200:
            raise BackendUnavailable(f"card known: HTTP {response.status_code}")
        answer = _json(response, "card known")
        if not isinstance(answer, dict) or not isinstance(answer.get("known"), bool):
            raise MalformedAnswer("card known: not a yes or no")
        return bool(answer["known"])

    def set_pin(self, member_id: str, pin: str, current_pin: str | None = None) -> None:
        path = f"/v1/members/{quote(member_id, safe='')}/pin"
        body = {"pin": pin} if current_pin is None else {"pin": pin, "current_pin": current_pin}
        response = self._call("POST", path, json=body)
        if response.status_code in (403, 409):
            code = "pin_set" if response.status_code == 409 else "pin_wrong"
            raise PinRefused(_short(_detail(response)) or "PIN refused", code)
        if response.status_code in (404, 422):
            raise ValueError(_short(_detail(response)) or f"HTTP {response.status_code}")
        if response.status_code != 204:
            raise BackendUnavailable(f"set PIN: HTTP {response.status_code}")

    def check_pin(self, member_id: str, pin: str) -> PinCheck:
        path = f"/v1/members/{quote(member_id, safe='')}/pin/check"
        response = self._call("POST", path, json={"pin": pin})
        if response.status_code == 404:
            return PinCheck(False, no_pin=True)
        if response.status_code != 200:
            raise BackendUnavailable(f"PIN check: HTTP {response.status_code}")
        answer = _json(response, "PIN check")
        if not isinstance(answer, dict) or not all(
            isinstance(answer.get(name), kind)
            for name, kind in (("ok", bool), ("remaining", int), ("no_pin", bool))
        ):
            raise MalformedAnswer("PIN check: not a PIN check's answer")
        until = answer.get("locked_until")
        try:
            locked = datetime.fromisoformat(until) if isinstance(until, str) else None
        except ValueError:
            raise MalformedAnswer("PIN check: locked_until is not a time") from None
        return PinCheck(
            answer["ok"] is True,
            remaining=max(0, min(int(answer["remaining"]), 99)),
            locked_until=locked,
            no_pin=answer["no_pin"] is True,
        )

    def award(self, award: StaffAward) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key": award.key,
            "member_id": award.member_id,
            "points": award.points,
            "reason": award.reason,
            "staff_id": award.staff_id,
            "staff_pin": award.staff_pin,
        }
        if award.approver is not None:
            body["approver_id"], body["approver_pin"] = award.approver
        response = self._call("POST", "/v1/staff/awards", json=body)
        if response.status_code == 429:
            raise OpRejected("rate_limited", "too many staff PIN tries from this till: wait")
        if response.status_code in (400, 404, 409, 422):
            try:
                refused = response.json()
            except (ValueError, RecursionError):
                refused = None
            code = refused.get("code") if isinstance(refused, dict) else None
            raise OpRejected(
                code if isinstance(code, str) and code.isidentifier() else "award_refused",
                _short(_detail(response)) or f"HTTP {response.status_code}",
            )
        if response.status_code != 200:
            raise BackendUnavailable(f"staff award: HTTP {response.status_code}")
        answer = _json(response, "staff award")
        if not isinstance(answer, dict) or answer.get("status") not in ("applied", "duplicate"):
            raise MalformedAnswer("staff award: not an award's answer")
        return answer

    def link_card(self, url: str, member_id: str) -> bool:
        response = self._call("POST", "/v1/cards/link", json={"url": url, "member_id": member_id})
        if response.status_code in (400, 403, 404, 409, 410, 422):
            detail = _short(_detail(response)) or f"HTTP {response.status_code}"
            raise CardRefused(f"the store server refused to link this card: {detail}")
        if response.status_code != 200:
            raise BackendUnavailable(f"card link: HTTP {response.status_code}")
        answer = _json(response, "card link")
        if (
            not isinstance(answer, dict)
            or answer.get("member_id") != member_id
            or not isinstance(answer.get("linked"), bool)
        ):
            raise MalformedAnswer("card link: the answer is not this member's link")
        return bool(answer["linked"])

    def pass_link(self, member_id: str) -> str:
        response = self._call("POST", "/v1/passes", json={"member_id": member_id})
        if response.status_code == 404:
            code = "passes_off" if "passes_off" in _detail(response) else "unknown_member"
            raise OpRejected(code, _short(_detail(response)) or "HTTP 404")
        if response.status_code != 200:
            raise BackendUnavailable(f"pass link: HTTP {response.status_code}")
        answer = _json(response, "pass link")
        url = answer.get("url") if isinstance(answer, dict) else None
        # Shown to a customer as a QR code: a web address of sane length, nothing else.
        if not isinstance(url, str) or len(url) > 512 or not PASS_URL.fullmatch(url):
            raise MalformedAnswer("pass link: the answer is not a web address")
        return url

    def lookup(self, kind: str, value: str) -> MemberView | None:
        if kind == IdentityKind.SECURE_CARD.value:
            return self.tap(value)
        response = self._call("POST", "/v1/members/lookup", json={"kind": kind, "value": value})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BackendUnavailable(f"lookup: HTTP {response.status_code}")
        return _member(_json(response, "lookup"))

    def member(self, member_id: str) -> MemberView | None:
        # One path segment, quoted: an id holding "?" or "/" must not ask for another member.
        response = self._call("GET", f"/v1/members/{quote(member_id, safe='')}")
        if response.status_code in (404, 422):  # no such member; an id no member can have
            return None
        if response.status_code != 200:
            raise BackendUnavailable(f"member: HTTP {response.status_code}")
        view = _member(_json(response, "member"))
        if view.member_id != member_id:
            raise MalformedAnswer("member: the answer is another member")
        return view

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        response = self._call("POST", "/v1/operations/batch", json={"operations": list(bodies)})
        if response.status_code in REFUSED_BATCH:
            # The whole batch was malformed or too large: judge each operation alone, so
            # one bad entry goes to dead letter and the rest still go through.
            if len(bodies) > 1:
                return [result for body in bodies for result in self.submit([body])]
            key = str(bodies[0].get("key", "")) if bodies else ""
            return [
                OpResult(
                    key,
                    Outcome.REJECTED,
                    code=REFUSED_BATCH[response.status_code],
                    error=f"server refused the operation: {response.text[:200]}",
                )
            ]
        if response.status_code != 200:
            raise BackendUnavailable(f"batch: HTTP {response.status_code}")
        return parse_results(
            _json(response, "batch"), [str(body.get("key", "")) for body in bodies]
        )

    def fetch_program(self, known_version: str | None) -> ProgramDocument | None:
        """The server's programme, or None when it is still `known_version` (304). An
        answer too large or not of the programme's shape raises ValueError."""
        headers = {"If-None-Match": f'"{known_version}"'} if known_version else {}
        response = self._call("GET", "/v1/program", headers=headers, stream=True)
        try:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                raise BackendUnavailable(f"program: HTTP {response.status_code}")
            raw = response.raw.read(MAX_PROGRAM_ANSWER + 1, decode_content=True)
        finally:
            response.close()
        if len(raw) > MAX_PROGRAM_ANSWER:
            raise ValueError(f"the programme answer is larger than {MAX_PROGRAM_ANSWER} bytes")
        try:
            answer = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ValueError("the programme answer is not JSON") from None
        version = answer.get("version") if isinstance(answer, dict) else None
        source = answer.get("source") if isinstance(answer, dict) else None
        if not isinstance(version, str) or not isinstance(source, str):
            raise ValueError("the programme answer has no version and source")
        return ProgramDocument(version, source)

    def heartbeat(self, beat: Heartbeat) -> None:
        """POST /v1/terminals/heartbeat; anything but 200 or 204 raises BackendUnavailable
        naming the status (never the body sent)."""
        connect, read = self.timeout
        response = self._call(
            "POST",
            "/v1/terminals/heartbeat",
            timeout=(connect, min(read, HEARTBEAT_READ_TIMEOUT_S)),
            json=beat.to_json(),
        )
        if response.status_code not in (200, 204):
            raise BackendUnavailable(f"heartbeat: HTTP {response.status_code}")

    def close(self) -> None:
        self.session.close()


def _member(answer: Any) -> MemberView:
    try:
        return member_view_from_json(answer)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError):
        raise MalformedAnswer("member: the answer is not a member") from None


def pair_terminal(
    base_url: str, code: str, timeout_s: float = 10.0, share_phone_key: bool = False
) -> dict[str, str]:
    """Trade a pairing code for this terminal's token. The store-wide phone key stays on
    the server unless asked for (`share_phone_key`, for servers that need it)."""
    import requests

    try:
        response = requests.post(
            base_url.rstrip("/") + "/v1/terminals/pair",
            json={"code": code, "share_phone_key": share_phone_key},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise BackendUnavailable(f"cannot reach {base_url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        try:
            answer = response.json()
        except (ValueError, RecursionError):
            answer = None
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if not isinstance(detail, str):
            detail = f"HTTP {response.status_code}"
        raise BackendUnavailable(f"pairing refused: {_short(detail)}")
    return pair_answer(_json(response, "pairing"))


def pair_answer(answer: Any) -> dict[str, str]:
    """A pairing answer checked before anything of it is stored: a token of printable
    ASCII within bounds, a terminal id, and a phone key (if any) of 64 hex digits."""
    if not isinstance(answer, dict):
        raise MalformedAnswer("pairing: the answer is not an object")
    token, terminal_id = answer.get("token"), answer.get("terminal_id")
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise MalformedAnswer("pairing: the answer has no valid token (16 to 512 printable ASCII)")
    if not isinstance(terminal_id, str) or not TERMINAL_ID_PATTERN.fullmatch(terminal_id):
        raise MalformedAnswer("pairing: the answer has no valid terminal id")
    data = {"token": token, "terminal_id": terminal_id}
    phone_key = answer.get("phone_key")
    if phone_key not in (None, ""):
        if not isinstance(phone_key, str) or not PHONE_KEY_PATTERN.fullmatch(phone_key):
            raise MalformedAnswer("pairing: the answer's phone key is not 64 hex digits")
        data["phone_key"] = phone_key
    return data
