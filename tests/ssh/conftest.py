"""Fixtures for the SSH tests: a farm of real sshd on loopback (see sshd_farm.py).

If sshd cannot start here, every test of this directory is skipped with the reason, and a
warning is printed so the skip is not missed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sshd_farm import Farm, farm_or_skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the farm need sshd: mark them ``ssh`` (pure tests here need nothing)."""
    for item in items:
        if "farm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ssh)


@pytest.fixture(scope="session")
def farm() -> Iterator[Farm]:
    """Four sshd: h1..h3 take the client key, h4 also the test user's password."""
    yield from farm_or_skip(4, password_servers=1)
