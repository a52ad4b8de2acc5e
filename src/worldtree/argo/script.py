"""A task's steps as one POSIX shell script, built with the command builder every backend uses.

Each step is ``StepCommand(shell, command).shell_line()`` (``sh -e -c '…'`` for a plain shell),
exactly what the SSH backend sends a remote host, under a ``set -e`` script, so the first failing
step ends the task, as it ends the job locally. A step's own variables (those it does not share
with the rest of the job, which go to the container's ``env``) are passed with ``env``; its
``workdir`` becomes a ``cd`` in a subshell; its ``precheck`` an ``if`` that skips the step when
the check passes (the precheck runs once per try here, locally only on the first try).
"""

from __future__ import annotations

import shlex

from worldtree.backends.command import StepCommand
from worldtree.model.graph import Node

__all__ = ["common_env", "task_script"]


def common_env(nodes: list[Node]) -> dict[str, str]:
    """The variables every step of the task has with the same value (they go to the container)."""
    first = nodes[0].env
    return {k: v for k, v in first.items() if all(n.env.get(k) == v for n in nodes[1:])}


def _step_line(node: Node, shared: dict[str, str]) -> str:
    line = StepCommand(node.shell, node.command).shell_line()
    own = {k: v for k, v in node.env.items() if shared.get(k) != v}
    if own:
        line = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in own.items()) + " " + line
    if node.precheck:
        check = StepCommand(node.shell, node.precheck).shell_line()
        done = shlex.quote(f"worldtree: {node.name}: precheck passed, step skipped")
        line = f"if {check}; then echo {done}; else {line}; fi"
    if node.workdir:
        line = f"(cd {shlex.quote(node.workdir)} && {line})"
    return line


def task_script(nodes: list[Node]) -> str:
    shared = common_env(nodes)
    return "\n".join(["set -e", *(_step_line(n, shared) for n in nodes)]) + "\n"
