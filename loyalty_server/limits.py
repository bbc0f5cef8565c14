"""Request bounds enforced before a body is parsed: by Content-Length, and while streaming."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class BodyLimit:
    """ASGI middleware: a request body over its path's limit is answered 413 before any
    parsing, as soon as Content-Length says so or the streamed bytes pass the limit. The
    body is read whole (it is small by then) and handed on to the app."""

    def __init__(self, app: ASGIApp, default: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await too_large(send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            following: Message = await receive()
            return following

        await self.app(scope, replay, send)


async def too_large(send: Send, limit: int) -> None:
    payload = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def clean_text(value: object, limit: int = 40) -> str:
    """A short, printable, encodable rendering of something a client sent (for a field path)."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in text)


class PairingGuard:
    """Failed pairing attempts per client address: past `failures` in a minute, the address
    is locked out for `lockout_s` (every attempt refused before any database work, a right
    code too). Never sees or keeps a code."""

    MAX_ADDRESSES = 10_000  # a flood of addresses prunes the oldest, never grows unbounded

    def __init__(self, failures: int, lockout_s: float, clock: Callable[[], float]) -> None:
        self.failures = failures
        self.lockout_s = lockout_s
        self.clock = clock
        self._failed: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> float:
        """Seconds this address is still locked out (0: it may try)."""
        with self._lock:
            until = self._locked.get(address, 0.0)
            left = until - self.clock()
            if left <= 0 and until:
                del self._locked[address]
            return max(left, 0.0)

    def failed(self, address: str) -> tuple[int, bool]:
        """Count a failure; returns (failures in the last minute, whether it locked now)."""
        now = self.clock()
        with self._lock:
            if address not in self._failed and len(self._failed) >= self.MAX_ADDRESSES:
                self._prune(now)
            hits = self._failed.setdefault(address, deque())
            while hits and now - hits[0] > 60:
                hits.popleft()
            hits.append(now)
            count = len(hits)
            if count >= self.failures:
                self._locked[address] = now + self.lockout_s
                hits.clear()
                return count, True
            return count, False

    def _prune(self, now: float) -> None:
        for address in [a for a, hits in self._failed.items() if not hits or now - hits[-1] > 60]:
            del self._failed[address]
        while len(self._failed) >= self.MAX_ADDRESSES:
            del self._failed[next(iter(self._failed))]
        for address in [a for a, until in self._locked.items() if until <= now]:
            del self._locked[address]


def mask_card(number: str | None) -> str | None:
    """A card number as lookups answer it: its last four characters only ('**** 1234')."""
    if not number:
        return number
    return "**** " + number[-4:] if len(number) > 4 else "****"


class LockoutGate:
    """ASGI middleware: a pairing request from a locked-out address is answered 429 before
    routing, body parsing or any database work (the cheapest refusal there is)."""

    def __init__(self, app: ASGIApp, guard: PairingGuard, path: str, max_body: int) -> None:
        self.app = app
        self.guard = guard
        self.path = path
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        locked = 0.0
        if scope["type"] == "http" and scope.get("path") == self.path:
            locked = self.guard.locked_for(client[0] if client else "unknown")
        if not locked:
            await self.app(scope, receive, send)
            return
        # Read what was sent (small, or the connection is closed), so keep-alive stays sane.
        size, complete = 0, False
        while size <= self.max_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        payload = json.dumps(
            {"detail": "too many failed pairing attempts from this address; wait and try again"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"retry-after", str(int(locked) + 1).encode()),
        ]
        if not complete:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class KeyedLocks:
    """A lock per key (a terminal id), made on first use; the dictionary itself is guarded."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())
