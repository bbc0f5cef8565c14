"""Small jobs run in order on one background thread, so the caller need not wait for them
(the offline member cache's slow phone key is computed here, not on the lookup's path)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_PENDING = 64  # past this, a job is dropped: only for conveniences (a cache write)


class Deferred:
    def __init__(self, name: str, max_pending: int = MAX_PENDING) -> None:
        self.name = name
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue a job; False if it was dropped (closed, or too many waiting)."""
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                log.warning("%s: %d jobs waiting, one dropped", self.name, self._jobs.qsize())
                return False
        return True

    def flush(self) -> None:
        """Wait until every job queued so far has run (never call it from a job)."""
        if threading.current_thread() is self._thread:
            return
        self._jobs.join()

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except Exception as exc:  # one failed job must not stop the rest
                # No traceback: its frames could hold an identifier in clear.
                log.error("%s: a job failed (%s)", self.name, type(exc).__name__)
            finally:
                self._jobs.task_done()
