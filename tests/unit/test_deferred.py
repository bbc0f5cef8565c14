"""The background writer the offline member cache's slow phone keys run on."""

from __future__ import annotations

import logging
import threading

import pytest

from pos_client.deferred import Deferred


def test_jobs_run_in_order_off_the_callers_thread_and_flush_waits_for_them() -> None:
    writer = Deferred("test-writer")
    ran: list[tuple[int, str]] = []
    for index in range(5):
        writer.submit(lambda i=index: ran.append((i, threading.current_thread().name)))
    writer.flush()
    assert [index for index, _ in ran] == [0, 1, 2, 3, 4]
    assert {name for _, name in ran} == {"test-writer"}
    writer.close()


def test_a_failing_job_is_logged_by_type_only_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Deferred("test-writer")
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("+16502530001")

    with caplog.at_level(logging.ERROR):
        writer.submit(fail)
        writer.submit(lambda: ran.append("next"))
        writer.close()
    assert ran == ["next"]
    assert "ValueError" in caplog.text and "+16502530001" not in caplog.text


def test_past_its_limit_or_once_closed_a_job_is_refused_not_queued() -> None:
    writer = Deferred("test-writer", max_pending=2)
    gate = threading.Event()
    started = threading.Event()
    writer.submit(lambda: (started.set(), gate.wait(10)))
    assert started.wait(10)
    assert writer.submit(lambda: None) and writer.submit(lambda: None)
    assert not writer.submit(lambda: None)  # two already waiting
    gate.set()
    writer.close()
    assert not writer.submit(lambda: None)
