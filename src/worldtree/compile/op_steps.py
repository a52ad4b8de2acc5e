"""``op:`` steps: a pipeline step that runs an operation of ``worldtree.ops`` (precheck, plan, run,
rollback) instead of a shell line.

The compiler turns such a step into an ordinary host node whose command runs
``python -m worldtree.ops.pipeline_step run SPEC`` with the Python that compiled it, and whose
``rollback`` runs the same module with ``rollback``: the engine, its logs, retries and
``on_failure: rollback`` then treat it like any other step, with no new node kind.

The operations live two layers above this one (``ops`` ranks above ``compile``), so the names and
arguments are checked by a checker that layer registers with :func:`set_op_checker` when it is
imported (``worldtree.ops.pipeline_step``); without one, a bad ``op:`` is reported when the step
runs instead of when the file loads.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the step runner imports this module too and needs no spec models (start-up time)
    from worldtree.model.spec import StepSpec

__all__ = ["OP_ENGINE_ENV", "OP_STEP_ENV", "OpChecker", "Problem", "check_op", "op_commands", "set_op_checker"]

#: set in an ``op:`` node's env: fan-out keeps such a node on the host target and hands it the
#: host's ``ssh://`` URL in :data:`OP_ENGINE_ENV` instead (the operation connects itself)
OP_STEP_ENV = "WORLDTREE_OP_STEP"
OP_ENGINE_ENV = "WORLDTREE_OP_ENGINE"

#: ``(op name, with: arguments) -> [(path under the step, message, at the key)]``; the path is relative
#: to the step (``("op",)``, ``("with", "mode")``) so the loader can point at the line; the flag says
#: whether to point at the key (an unknown argument) rather than its value.
Problem = tuple[tuple[Any, ...], str, bool]
OpChecker = Callable[[str, dict[str, Any]], list[Problem]]

_checker: OpChecker | None = None

#: engines an ``op:`` step may name: the operation runs through this machine's Python, on this
#: machine or over SSH (``ssh://`` URLs: it connects itself, files over SFTP)
HOST_ENGINES = (None, "host")


def set_op_checker(checker: OpChecker) -> None:
    """Installed by ``worldtree.ops.pipeline_step`` (the layer that knows the operations)."""
    global _checker
    _checker = checker


def installed_checker() -> OpChecker | None:
    """The checker installed now (``worldtree.app.op_checks`` swaps a lazy one for the real one)."""
    return _checker


def check_op(step: StepSpec, engine: str | None) -> list[Problem]:
    """Problems of one ``op:`` step, each with its path under the step."""
    assert step.op is not None
    out: list[Problem] = []
    if engine not in (*HOST_ENGINES, "hosts: (fan-out)") and not (engine or "").startswith("ssh://"):
        out.append((("op",), f"an `op:` step runs on this machine or over ssh://; it cannot run on engine "
                              f"{engine!r} (remove `engine`/`image`, or use `worldtree apply` with an inventory)",
                    False))
    if _literal_password(engine):
        out.append((("op",), "the ssh:// engine of an `op:` step has its password written in the file; the step "
                              "carries the URL on its command line, where `ps`, plans and stored runs would show it: "
                              "write ${NAME} for the password and list NAME in the job's `secrets:`", False))
    if _checker is not None:
        out.extend(_checker(step.op, dict(step.with_ or {})))
    return out


def _literal_password(engine: str | None) -> bool:
    """Whether an ``ssh://user:password@host`` URL has a password that is not ``${NAME}``. (Other steps'
    literal passwords are masked through the node's engine; an ``op:`` node's engine is in its command.)"""
    if not engine or not engine.startswith("ssh://"):
        return False
    userinfo, at, _ = engine.removeprefix("ssh://").rpartition("@")
    _user, colon, password = userinfo.partition(":")
    return bool(at and colon and password and "${" not in password)


def op_commands(step: StepSpec, source: str | None, engine: str | None = None) -> tuple[str, str]:
    """The node's command and rollback lines for an ``op:`` step.

    The spec travels as one JSON argument (quoted for the shell): the operation, its arguments,
    the folder relative ``src:`` paths start from (the pipeline file's) and the ``ssh://`` engine
    to connect to (``${NAME}`` parts stay references, expanded from the step's environment).
    """
    assert step.op is not None
    # no file (a document submitted to the server): relative paths start from the step's workspace
    base = os.path.dirname(os.path.abspath(source)) if source else None
    remote = engine if engine and engine.startswith("ssh://") else None
    spec = json.dumps({"op": step.op, "with": step.with_ or {}, "base_dir": base, "engine": remote},
                      sort_keys=True, separators=(",", ":"))
    head = f"{shlex.quote(sys.executable)} -m worldtree.ops.pipeline_step"
    return f"{head} run {shlex.quote(spec)}", f"{head} rollback {shlex.quote(spec)}"
