"""`pos-client doctor`: checks a technician runs on a terminal. Each check is a plain
function returning Check rows; hardware checks live with the drivers (drivers.probes)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pos_client.files import private_dir
from pos_client.outbox import Outbox, OutboxError
from pos_client.ports import Backend, BackendUnavailable
from pos_client.staff import DEFAULT_PIN, kiosk_pin_problem

MIN_FREE_BYTES = 200 * 1024 * 1024
OLDEST_PENDING_WARN_S = 3600.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


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


def check_outbox(path: Path) -> list[Check]:
    try:
        with Outbox(path) as outbox:
            integrity = outbox.integrity_check()
            stats = outbox.stats()
    except OutboxError as exc:
        return [Check("outbox", False, str(exc))]
    rows = [Check("outbox integrity", integrity == "ok", f"{path}: {integrity}")]
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
            stats.dead == 0 and not stale,
            pending
            + ("; dead entries need staff: `pos-client queue status`" if stats.dead else "")
            + ("; sales wait for over an hour: check the backend" if stale else ""),
        )
    )
    return rows


def check_staff_pin(mode: str, pin: str) -> list[Check]:
    problem = kiosk_pin_problem(mode, pin)
    if problem is not None:
        return [Check("staff PIN", False, problem)]
    note = "; it is the default: change it" if pin == DEFAULT_PIN else ""
    return [Check("staff PIN", True, f"{mode} terminal, {len(pin)}-digit PIN{note}")]


def check_backend(backend: Backend, label: str) -> list[Check]:
    try:
        backend.ping()
    except BackendUnavailable as exc:
        return [Check("backend", False, f"{label}: unreachable: {exc}")]
    return [Check("backend", True, f"{label}: reachable")]
