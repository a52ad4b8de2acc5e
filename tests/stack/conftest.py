"""Stack tests run `worldtree stack …` as a user does: a subprocess, with a clean CI environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: Variables a CI job may set that would change what the command does.
_DROPPED = ("GITHUB_STEP_SUMMARY", "WORLDTREE_APPLY_APPROVED")


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "stack", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli("plan", "all", FILE, env={...})`` in the test's tmp_path."""

    def call(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout)

    return call
