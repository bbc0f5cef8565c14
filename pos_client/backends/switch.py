"""A network switch in front of any backend: field tests and the demo go offline with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from pos_client.domain import MemberView
from pos_client.heartbeat import Heartbeat
from pos_client.operations import StaffAward
from pos_client.pins import PinCheck
from pos_client.ports import Backend, BackendUnavailable, OpResult
from pos_client.program import ProgramDocument

MAX_LATENCY_S = 30.0


class NetworkSwitch:
    def __init__(self, inner: Backend, online: bool = True) -> None:
        self.inner = inner
        self.latency_s = 0.0  # field tests: every call waits this long, like a slow link
        self._online = threading.Event()
        if online:
            self._online.set()

    @property
    def online(self) -> bool:
        return self._online.is_set()

    def set_online(self, online: bool) -> None:
        if online:
            self._online.set()
        else:
            self._online.clear()

    def set_latency(self, seconds: float) -> None:
        if not 0 <= seconds <= MAX_LATENCY_S:
            raise ValueError(f"latency between 0 and {MAX_LATENCY_S:.0f} seconds")
        self.latency_s = seconds

    def _check(self) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        if not self._online.is_set():
            raise BackendUnavailable("backend unreachable (network switched off)")

    def lookup(self, kind: str, value: str) -> MemberView | None:
        self._check()
        return self.inner.lookup(kind, value)

    def member(self, member_id: str) -> MemberView | None:
        self._check()
        return self.inner.member(member_id)

    def tap(self, url: str, uid: bytes | None = None) -> MemberView | None:
        self._check()
        return self.inner.tap(url, uid)

    def card_known(self, uid: bytes) -> bool:
        self._check()
        return self.inner.card_known(uid)

    def set_pin(self, member_id: str, pin: str, current_pin: str | None = None) -> None:
        self._check()
        self.inner.set_pin(member_id, pin, current_pin)

    def check_pin(self, member_id: str, pin: str) -> PinCheck:
        self._check()
        return self.inner.check_pin(member_id, pin)

    def link_card(self, url: str, member_id: str) -> bool:
        self._check()
        return self.inner.link_card(url, member_id)

    def award(self, award: StaffAward) -> dict[str, Any]:
        self._check()
        return self.inner.award(award)

    def pass_link(self, member_id: str) -> str:
        self._check()
        return self.inner.pass_link(member_id)

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        self._check()
        return self.inner.submit(bodies)

    def fetch_program(self, known_version: str | None) -> ProgramDocument | None:
        self._check()
        return self.inner.fetch_program(known_version)

    def ping(self) -> None:
        self._check()
        self.inner.ping()

    def heartbeat(self, beat: Heartbeat) -> None:
        self._check()
        self.inner.heartbeat(beat)

    def close(self) -> None:
        self.inner.close()
