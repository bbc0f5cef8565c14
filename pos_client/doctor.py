"""`pos-client doctor`: checks a technician runs on a terminal. Each check is a plain
function returning Check rows; hardware checks live with the drivers (drivers.probes).

Three levels: OK, WARN (works, but should be looked at: the doctor still exits 0) and BAD
(something is broken: the doctor exits non-zero)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pos_client.files import private_dir
from pos_client.outbox import (
    CORRUPT_ENTRY,
    SCHEMA_VERSION,
    EntryState,
    Outbox,
    OutboxEntry,
    OutboxError,
    claim_problem,
)
from pos_client.ports import Backend, BackendUnavailable
from pos_client.staff import DEFAULT_PIN, guessable, kiosk_pin_problem

MIN_FREE_BYTES = 200 * 1024 * 1024
OLDEST_PENDING_WARN_S = 3600.0


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    BAD = "bad"


@dataclass(frozen=True)
class Check:
    """One doctor row: `ok` False is BAD; `ok` True with `warn` set is WARN."""

    name: str
    ok: bool
    detail: str
    warn: bool = False

    @classmethod
    def warning(cls, name: str, detail: str) -> Check:
        return cls(name, True, detail, warn=True)

    @property
    def level(self) -> Level:
        if not self.ok:
            return Level.BAD
        return Level.WARN if self.warn else Level.OK


def check_clock(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[Check]:
    moment = now()
    local = moment.astimezone()
    plausible = moment.year >= 2025
    detail = f"UTC {moment:%Y-%m-%d %H:%M:%S}, local {local:%H:%M %Z}"
    if not plausible:
        detail += ": the clock is wrong (sales would carry wrong times); set it or enable NTP"
    return [Check("clock", plausible, detail)]


def check_disk(path: Path) -> list[Check]:
    private_dir(path)
    usage = shutil.disk_usage(path)
    ok = usage.free >= MIN_FREE_BYTES
    detail = f"{usage.free / 1e9:.1f} GB free in {path}"
    if not ok:
        detail += f": below {MIN_FREE_BYTES // 2**20} MB, new sales may be refused"
    return [Check("disk", ok, detail)]


MAX_ENTRIES_CHECKED = 10000  # unsent entries whose bodies doctor reads, per state
CORRUPT_KEYS_SHOWN = 5
_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _corrupt_dead(entries: Sequence[OutboxEntry]) -> str:
    """How many dead entries were kept aside as corrupt, and their keys: a key is a uuid,
    shown only when it reads as one (a damaged key could hold anything); never a body."""
    if not entries:
        return ""
    named = [
        entry.key if _KEY.fullmatch(entry.key) else f"seq {entry.seq} (key unreadable)"
        for entry in entries[:CORRUPT_KEYS_SHOWN]
    ]
    more = len(entries) - len(named)
    return (
        f"; {len(entries)} of them corrupt ({CORRUPT_ENTRY}): "
        f"key{'s' if len(entries) > 1 else ''} {', '.join(named)}"
        + (f" and {more} more" if more else "")
    )


def check_outbox(path: Path) -> list[Check]:
    unsent: list[OutboxEntry] = []
    corrupt: list[OutboxEntry] = []
    try:
        with Outbox(path) as outbox:
            integrity = outbox.integrity_check()  # the full check, whatever the last stop
            stats = outbox.stats() if integrity == "ok" else None
            if stats is not None:
                unsent = [
                    entry
                    for state in (EntryState.PENDING, EntryState.SENDING)
                    for entry in outbox.entries(state, limit=MAX_ENTRIES_CHECKED)
                ]
                if stats.dead:
                    corrupt = [
                        entry
                        for entry in outbox.entries(EntryState.DEAD, limit=MAX_ENTRIES_CHECKED)
                        if entry.error_code == CORRUPT_ENTRY
                    ]
    except OutboxError as exc:
        return [Check("outbox", False, str(exc))]
    except sqlite3.DatabaseError as exc:
        integrity, stats = str(exc), None
    if stats is None:
        return [
            Check(
                "outbox integrity",
                False,
                f"{path} is damaged ({integrity}); run `pos-client queue quarantine` to keep "
                "it aside for recovery and start a new one",
            )
        ]
    rows = [
        Check(
            "outbox integrity",
            integrity == "ok",
            f"{path}: {integrity} (full check; schema version {SCHEMA_VERSION})",
        )
    ]
    damaged = [entry.seq for entry in unsent if entry.damage or claim_problem(entry)]
    if damaged:  # never sent: the next sync sends them to dead letter as corrupt_entry
        rows.append(
            Check(
                "outbox entries",
                False,
                f"{len(damaged)} unsent entr{'y' if len(damaged) == 1 else 'ies'} damaged"
                f" (seq {', '.join(map(str, damaged[:5]))}): the next sync keeps"
                " them aside as dead (corrupt_entry); see `pos-client queue status`",
            )
        )
    incidents = path.with_name(path.name + ".incidents")
    if incidents.exists():
        lines = incidents.read_text(errors="replace").splitlines()
        last = lines[-1] if lines else ""
        rows.append(
            Check(
                "outbox incidents",
                False,
                f"{len(lines)} recorded in {incidents}, the last: {last}; check the queue, "
                "then remove the file",
            )
        )
    age = stats.oldest_pending_age(datetime.now(UTC))
    pending = f"{stats.unsent} pending, {stats.dead} dead, {stats.acked} acked"
    if age is not None:
        pending += f"; oldest unsent {age:.0f} s"
    stale = age is not None and age > OLDEST_PENDING_WARN_S
    rows.append(
        Check(
            "outbox queue",
            stats.dead == 0,
            pending
            + _corrupt_dead(corrupt)
            + ("; dead entries need staff: `pos-client queue status`" if stats.dead else "")
            + ("; sales wait for over an hour: check the backend" if stale else ""),
            warn=stale,  # still recorded and retried: a warning, unless entries are dead
        )
    )
    return rows


def check_staff_pin(mode: str, pin: str) -> list[Check]:
    problem = kiosk_pin_problem(mode, pin)
    if problem is not None:
        return [Check("staff PIN", False, problem)]
    detail = f"{mode} terminal, {len(pin)}-digit PIN"
    if pin == DEFAULT_PIN:
        return [
            Check.warning(
                "staff PIN", detail + "; it is the default: change it (config key 'admin.pin')"
            )
        ]
    if guessable(pin):
        return [
            Check.warning(
                "staff PIN",
                detail + "; anyone would try it first: change it (config key 'admin.pin')",
            )
        ]
    return [Check("staff PIN", True, detail)]


def check_backend(backend: Backend, label: str) -> list[Check]:
    try:
        backend.ping()
    except BackendUnavailable as exc:
        return [Check("backend", False, f"{label}: unreachable: {exc}")]
    return [Check("backend", True, f"{label}: reachable")]


def check_simulated_readers(
    reader_kinds: Sequence[str], backend_kind: str, backend_url: str
) -> list[Check]:
    """A simulated reader takes taps from any local process: fine on a field-test or demo
    terminal, not on one paired to a real store server."""
    if backend_kind != "http":
        return []
    return [
        Check.warning(
            "simulated reader",
            f"readers[{index}] is a simulated reader on a terminal paired to the store server "
            f"{backend_url}: any local process can tap cards on it. A production terminal "
            f"should not take simulated taps: remove it or set config key "
            f"'readers[{index}].kind' to its real reader (pcsc, serial, wedge-evdev)",
        )
        for index, kind in enumerate(reader_kinds)
        if kind == "simulated"
    ]
