"""CLI tests run `worldtree` as a user does: a subprocess, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
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

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
        full_env.update({"WORLDTREE_STORE": self.store, **(env or {})})
        return subprocess.run([sys.executable, "-m", "worldtree.cli.main", *args], cwd=self.cwd, env=full_env,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """The CLI as a background process (stdout and stderr piped, text)."""
        full_env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
        full_env.update({"WORLDTREE_STORE": self.store, **(env or {})})
        return subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", *args], cwd=self.cwd, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json_lines(self, *args: str, **kw: object) -> tuple[int, list[dict[str, object]]]:
        proc = self(*args, "--json", **kw)  # type: ignore[arg-type]
        return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def write(self, name: str, text: str) -> str:
        (self.cwd / name).write_text(text)
        return name


@pytest.fixture(params=["sqlite", "postgres"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        yield Cli(tmp_path, url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, f"sqlite:///{tmp_path}/wt.db")
