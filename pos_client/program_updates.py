"""The store server's programme on a terminal: fetched, checked, cached and adopted.

The server's programme is the source of truth: a terminal previews with the rules the
server will apply. It asks for the programme after each sync pass (at most once per sync
interval; unchanged answers cost a 304), checks the text against its version and parses it
as strictly as a local file, keeps it in its data folder for offline starts, and adopts it.
Anything wrong with an answer is logged and changes nothing: the terminal keeps the rules
it has.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pos_client.configfile import ConfigError
from pos_client.files import write_private_atomically
from pos_client.program import ProgramDocument
from pos_client.rules import Program

log = logging.getLogger(__name__)

PROGRAM_CACHE_FILE = "program-cache.json"


@dataclass(frozen=True)
class ProgramChanged:
    """The terminal now previews under this programme version."""

    program_id: str
    version: str


class ProgramCache:
    """The last programme the server handed out, for a start without the network. A
    missing file means none; a damaged one is logged and ignored (the local preset is
    used until the server answers again), never a reason not to start."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[ProgramDocument, Program] | None:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
            version, source = state.get("version"), state.get("source")
            if not isinstance(version, str) or not isinstance(source, str):
                raise ValueError("version and source must be text")
            document = ProgramDocument(version, source)
            return document, document.parse(str(self.path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ConfigError) as exc:
            log.warning("the cached store programme (%s) is unusable: %s", self.path.name, exc)
            return None

    def save(self, document: ProgramDocument) -> None:
        state = {"version": document.version, "source": document.source}
        try:
            write_private_atomically(self.path, json.dumps(state))
        except OSError as exc:  # a full disk must not stop the new rules being used
            log.warning("could not cache the store programme: %s", exc)


Fetch = Callable[[str | None], ProgramDocument | None]
Adopt = Callable[[Program, str], None]


class ProgramUpdater:
    """Asks the server for its programme (`fetch(known_version)`: a document, or None when
    unchanged) and adopts a new one. Never raises: a bad answer keeps the current rules."""

    def __init__(
        self,
        fetch: Fetch,
        cache: ProgramCache,
        adopt: Adopt,
        version: str | None,
        currency: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.cache = cache
        self.adopt = adopt
        self.version = version
        self.currency = currency
        self.interval_s = interval_s
        self.clock = clock
        self.last_error: str | None = None
        self._last_check: float | None = None

    def due(self) -> bool:
        return self._last_check is None or self.clock() - self._last_check >= self.interval_s

    def check(self, force: bool = False) -> bool:
        """One check (when due, or `force`); True when a new programme was adopted."""
        from pos_client.ports import BackendUnavailable

        if not force and not self.due():
            return False
        self._last_check = self.clock()
        try:
            document = self.fetch(self.version)
        except BackendUnavailable as exc:
            self.last_error = str(exc)
            return False
        except (ConfigError, ValueError) as exc:
            self._refuse(str(exc))
            return False
        if document is None or document.version == self.version:
            self.last_error = None
            return False
        try:
            program = document.parse("the store server's programme")
        except ConfigError as exc:
            self._refuse(str(exc))
            return False
        if program.currency != self.currency:
            # The server counts every amount in its currency: the terminal follows it.
            log.warning(
                "the store programme's currency is %s (this terminal had %s)",
                program.currency,
                self.currency,
            )
            self.currency = program.currency
        self.cache.save(document)
        previous, self.version = self.version, document.version
        self.last_error = None
        log.info(
            "store programme %s version %s adopted (was %s)",
            program.id,
            document.version,
            previous or "the local preset",
        )
        self.adopt(program, document.version)
        return True

    def _refuse(self, problem: str) -> None:
        self.last_error = f"the store server's programme was refused: {problem}"
        log.warning("%s; keeping version %s", self.last_error, self.version or "local")
