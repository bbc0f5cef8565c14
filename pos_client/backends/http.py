"""The Backend port over HTTP (loyalty_server), with requests.

Every call has a connect and a read timeout; TLS is verified. A timeout, a refused
connection, a 5xx or a refused token raise BackendUnavailable: the outbox keeps the sale and
the sync worker re-sends the same keys later, which the server applies once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from pos_client.domain import MemberView, member_view_from_json
from pos_client.ports import BackendServerError, BackendUnavailable, OpResult, Outcome
from pos_client.program import MAX_PROGRAM_BYTES, ProgramDocument

log = logging.getLogger(__name__)


# Answers to a whole batch that will never succeed as sent (never retried as offline).
REFUSED_BATCH = {413: "too_large", 422: "bad_request"}
# The programme's JSON rules beside its TOML text, escaped: a generous bound.
MAX_PROGRAM_ANSWER = 4 * MAX_PROGRAM_BYTES


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
        self.session.verify = verify

    def __repr__(self) -> str:
        return f"HttpBackend({self.base_url!r}, token=<hidden>)"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except self.requests.Timeout:
            raise BackendUnavailable(f"{path}: timed out") from None
        except self.requests.RequestException as exc:
            raise BackendUnavailable(f"{path}: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise BackendUnavailable("the server refused this terminal's token (revoked?)")
        if response.status_code == 429:
            raise BackendUnavailable("the server asks to slow down")
        if response.status_code >= 500:
            raise BackendServerError(f"{path}: server error {response.status_code}")
        return response

    def ping(self) -> None:
        response = self._call("GET", "/v1/health")
        if response.status_code != 200:
            raise BackendUnavailable(f"health: HTTP {response.status_code}")

    def lookup(self, kind: str, value: str) -> MemberView | None:
        response = self._call("POST", "/v1/members/lookup", json={"kind": kind, "value": value})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BackendUnavailable(f"lookup: HTTP {response.status_code}")
        return member_view_from_json(response.json())

    def member(self, member_id: str) -> MemberView | None:
        response = self._call("GET", f"/v1/members/{member_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BackendUnavailable(f"member: HTTP {response.status_code}")
        return member_view_from_json(response.json())

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
        return [
            OpResult(
                key=item["key"],
                outcome=Outcome(item["outcome"]),
                result=item.get("result"),
                code=item.get("code"),
                error=item.get("error"),
            )
            for item in response.json()["results"]
        ]

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

    def close(self) -> None:
        self.session.close()


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
        raise BackendUnavailable(f"pairing refused: {response.json().get('detail', response.text)}")
    data: dict[str, str] = response.json()
    return data
