"""Fixtures shared by the integration tests that need real services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.vpcd import ForeignPcscd, PcscDaemon


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscDaemon]:
    """A private pcscd with the virtual reader, for one test module (stopped by its PID)."""
    daemon = PcscDaemon(tmp_path_factory.mktemp("pcscd"))
    try:
        daemon.start()
    except ForeignPcscd as exc:
        pytest.skip(str(exc))
    yield daemon
    daemon.stop()
