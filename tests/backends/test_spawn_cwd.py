"""posix_spawn gives each child its own cwd without ever changing the parent's (issue 7 §6)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from worldtree.backends import spawn

pytestmark = pytest.mark.skipif(not spawn.available(), reason="posix_spawn + pidfd not available")


async def _pwd_many(cwd: str, times: int) -> list[str]:
    seen: list[str] = []
    for _ in range(times):
        child = spawn.SpawnedProcess(["/bin/pwd"], {}, cwd, seen.append, seen.append)
        await child.exited
        child.close_pipes()
    return seen


def test_threads_spawn_in_their_own_cwds_and_the_parent_cwd_never_moves(tmp_path: Path) -> None:
    here = os.getcwd()
    dirs = [str(tmp_path / name) for name in ("a", "b")]
    for d in dirs:
        os.mkdir(d)
    results: dict[str, list[str]] = {}
    moved: list[str] = []
    done = threading.Event()

    def watch() -> None:  # the parent's cwd, sampled as fast as Python can
        while not done.is_set():
            if (now := os.getcwd()) != here:
                moved.append(now)

    def spawner(cwd: str) -> None:
        results[cwd] = asyncio.run(_pwd_many(cwd, 150))

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=spawner, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    watcher.join()
    assert not moved, f"the parent's cwd changed {len(moved)} times, e.g. to {moved[0]}"
    for d in dirs:
        assert results[d] == [d] * 150, {x for x in results[d] if x != d}


async def test_children_get_default_sigpipe(tmp_path: Path) -> None:
    """Python ignores SIGPIPE; ignored signals survive exec, so `yes | head` would complain."""
    out: list[str] = []
    child = spawn.SpawnedProcess(["/bin/sh", "-c", "yes | head -n 1"], {"PATH": os.environ["PATH"]},
                                 str(tmp_path), out.append, out.append)
    assert await asyncio.wait_for(child.exited, 10) == 0
    child.close_pipes()
    assert out == ["y"]


async def test_a_missing_cwd_or_program_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        spawn.SpawnedProcess(["/bin/true"], {}, str(tmp_path / "nope"), print, print)
    with pytest.raises(FileNotFoundError):
        spawn.SpawnedProcess(["no-such-program-xyz"], {}, str(tmp_path), print, print)
