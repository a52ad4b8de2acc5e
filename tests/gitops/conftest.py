"""GitOps fixtures: real servers on SQLite and PostgreSQL (tests/server's), a loopback status API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gitops_fakes import StatusHost
from tests.server.conftest import servers  # noqa: F401  (the fixture, on both stores)


@pytest.fixture
def status_host() -> Iterator[StatusHost]:
    host = StatusHost().start()
    try:
        yield host
    finally:
        host.stop()
