"""Fixtures for the container backend: a real Docker Engine API (podman's, via the project's
script) and locally built images. No registry is needed or reached.

When no engine can start, the tests that need one are skipped and the reason is printed in
the terminal summary, so a green run never hides that containers were not tested.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker_support import BUSYBOX, Captured

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "container-engine.sh"
#: stand-ins for language images: busybox plus a `<lang>` shim that announces itself, then runs
#: the script with sh (only the choice of image and the script hand-over are under test)
STANDINS = {"docker.io/library/node:16": "node", "docker.io/library/python:3.12": "python"}
STANDIN_LABEL = "worldtree.test.standin"

_skip_reason: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skip_reason:
        terminalreporter.write_sep("!", "CONTAINER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_skip_reason[0], red=True)


@pytest.fixture(scope="session")
def docker_host() -> str:
    """Start (or reuse) the engine with scripts/container-engine.sh; DOCKER_HOST is exported."""
    if _skip_reason:
        pytest.skip(_skip_reason[0])
    try:
        proc = subprocess.run(["bash", str(SCRIPT), "--image", BUSYBOX], capture_output=True, text=True,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = subprocess.CompletedProcess([], 1, "", str(exc))
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not line.startswith("export DOCKER_HOST="):
        _skip_reason.append(f"no container engine could start (scripts/container-engine.sh exit "
                            f"{proc.returncode}): {proc.stderr.strip()[-500:]}")
        pytest.skip(_skip_reason[0])
    host = line.split("=", 1)[1]
    os.environ["DOCKER_HOST"] = host
    asyncio.run(_build_standins())
    return host


async def _build_standins() -> None:
    import aiodocker

    docker = aiodocker.Docker()
    try:
        for image, lang in STANDINS.items():
            try:
                info = await docker.images.inspect(image)
                if ((info.get("Config") or {}).get("Labels") or {}).get(STANDIN_LABEL) == "1":
                    continue
            except aiodocker.DockerError:
                pass
            shim = f'printf \'#!/bin/sh\\necho "stand-in {lang} {image.rsplit(":", 1)[1]}"\\nexec sh "$@"\\n\' ' \
                   f'> /usr/local/bin/{lang} && chmod +x /usr/local/bin/{lang}'
            c = await docker.containers.create({"Image": BUSYBOX,
                                                "Cmd": ["sh", "-c", f"mkdir -p /usr/local/bin && {shim}"]})
            try:
                await c.start()
                await c.wait()
                repo, tag = image.rsplit(":", 1)
                await c.commit(repository=repo, tag=tag,
                               config={"Labels": {STANDIN_LABEL: "1"}, "Cmd": ["/bin/sh"]})
            finally:  # even when the engine fails half way: no container left behind
                await c.delete(force=True)
    finally:
        await docker.close()


@pytest.fixture
def captured() -> Callable[[], Captured]:
    return Captured
