"""Attack tests drive ``worldtree`` as a user (or an adversary) does: a subprocess, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worldtree.testing.stores import pg_unavailable_reason, store_url


@dataclass
class Cli:
    cwd: Path
    store: str
    kind: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
        env["WORLDTREE_STORE"] = self.store
        return env

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "worldtree.cli.main", *args], cwd=self.cwd, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, out: Path) -> subprocess.Popen[bytes]:
        """``worldtree`` in the background, stdout and stderr to ``out`` (a pipe nobody reads would block it)."""
        with out.open("wb") as sink:
            return subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", *args], cwd=self.cwd,
                                    env=self.env(), stdout=sink, stderr=subprocess.STDOUT)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"NOT TESTED ON POSTGRESQL: {reason}")
    with store_url(request.param, tmp_path) as url:
        yield Cli(tmp_path, url, request.param)
