"""The variables worldtree injects into every step (seed 003 §10.1), plus its own."""

from __future__ import annotations

import getpass
import os
import platform

from worldtree import __version__
from worldtree.model.graph import ExecutionGraph, Node

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
         "i686": "386", "armv7l": "arm"}

#: Set in every step; ``worldtree run`` refuses to start inside a step (seed 003 §15.1).
RUN_ID_VAR = "WORLDTREE_RUN_ID"


def runner_env(graph: ExecutionGraph, workdir: str) -> dict[str, str]:
    """Variables that are the same for every node of a run."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    machine = platform.machine().lower()
    return {
        "PIPELINE_RUNNER": "pipeline",  # the seed's fixed value: scripts written for it test this
        "PIPELINE_RUNNER_OS": platform.system().lower(),
        "PIPELINE_RUNNER_ARCH": _ARCH.get(machine, machine),
        "PIPELINE_RUNNER_VERSION": __version__,
        "PIPELINE_RUNNER_USER": user,
        "PIPELINE_RUNNER_WORKDIR": os.getcwd(),
        "PIPELINE_NAME": graph.name,
        "PIPELINE_WORKDIR": workdir,
    }


def node_env(node: Node, base: dict[str, str], run_id: str, attempt: int,
             secrets: dict[str, str]) -> dict[str, str]:
    """Injected variables, then the node's declared environment, then its secrets; run ids last."""
    env = {**base, **node.env}
    env.update({name: secrets[name] for name in node.secrets if name in secrets})
    env["PIPELINE_STAGE"] = node.stage or ""
    env["PIPELINE_JOB"] = node.job
    env["PIPELINE_STEP"] = node.name
    env[RUN_ID_VAR] = run_id
    env["WORLDTREE_ATTEMPT"] = str(attempt)
    env["WORLDTREE_NODE"] = node.id
    return env
