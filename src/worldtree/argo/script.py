"""A task's steps as one POSIX shell script, built with the command builder every backend uses.

Each step is ``StepCommand(shell, command).shell_line()`` (``sh -e -c '…'`` for a plain shell),
exactly what the SSH backend sends a remote host, under a ``set -e`` script, so the first failing
step ends the task, as it ends the job locally. A step's own variables (those it does not share
with the rest of the job, which go to the container's ``env``) are passed with ``env``; its
``workdir`` becomes a ``cd`` in a subshell; its ``precheck`` an ``if`` that skips the step when
the check passes (the precheck runs once per try here, locally only on the first try). A
``language:`` step writes its code to the configured script file and runs the language's
command on it, as the docker backend does.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from worldtree.backends.command import StepCommand
from worldtree.model.graph import Node

__all__ = ["LANGUAGE_DIR", "common_env", "task_script"]

#: Where a ``language:`` step's code is written. The docker backend copies it to ``/.worldtree``
#: before the container starts; here the script writes it, so it must be writable by any user.
LANGUAGE_DIR = "/tmp/worldtree-script"


def common_env(nodes: list[Node]) -> dict[str, str]:
    """The variables every step of the task has with the same value (they go to the container)."""
    first = nodes[0].env
    return {k: v for k, v in first.items() if all(n.env.get(k) == v for n in nodes[1:])}


def _language_line(node: Node, languages: Mapping[str, Any]) -> str:
    """A ``language:`` step as the docker backend runs it: the code in the configured script file, then
    the language's command on it (the file is written by the script itself: there is no copy step)."""
    from worldtree.backends.docker.convert import language_entry

    _, entry = language_entry(node.target.language or {}, {"languages": languages})
    script = f"{LANGUAGE_DIR}/{PurePosixPath(str(entry.get('file') or 'script')).name}"
    argv = [str(a).replace("{script}", script) for a in entry.get("command") or ["{script}"]]
    return (f"mkdir -p {shlex.quote(LANGUAGE_DIR)} && printf '%s' {shlex.quote(node.command)} > {shlex.quote(script)}"
            f" && {' '.join(shlex.quote(a) for a in argv)}")


def _step_line(node: Node, shared: dict[str, str], languages: Mapping[str, Any]) -> str:
    if node.target.language:
        line = _language_line(node, languages)
    else:
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


def task_script(nodes: list[Node], languages: Mapping[str, Any] | None = None) -> str:
    shared = common_env(nodes)
    return "\n".join(["set -e", *(_step_line(n, shared, languages or {}) for n in nodes)]) + "\n"
