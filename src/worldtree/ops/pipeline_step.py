"""The process an ``op:`` pipeline step runs: ``python -m worldtree.ops.pipeline_step run|rollback SPEC``.

``run`` prechecks the operation on this machine (or on the step's ``ssh://`` engine, over SFTP),
prints the plan line (it lands in the step's log), stops there when the plan says ``no change``
(exit 0, nothing touched), else runs it and keeps the rollback record under
``$XDG_STATE_HOME/worldtree/op-records/RUN_ID/`` (mode 0700; the record may hold a file's
previous bytes; records of runs untouched for 7 days are pruned). ``rollback`` (the node's
rollback command, which the engine runs when the pipeline says ``on_failure: rollback``)
restores from that record; a step that changed nothing has no record and nothing to undo.

Importing this module also installs the load-time checker of ``op:`` steps
(:func:`worldtree.compile.op_steps.set_op_checker`): unknown operations and bad ``with:``
arguments are located errors when the pipeline loads.

Exit codes: 0 done (or nothing to do), 1 the operation failed, 2 bad input (unknown operation,
bad arguments, unset ``${NAME}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pickle
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worldtree.compile.op_steps import OP_ENGINE_ENV, Problem, set_op_checker
from worldtree.errors import WorldtreeError
from worldtree.ops.connection import Connection, LocalConnection
from worldtree.ops.entrypoints import load_user_ops
from worldtree.ops.operation import OpContext, Operation, OpError, RollbackUnavailable
from worldtree.ops.registry import OPERATIONS
from worldtree.ops.secrets import Secrets, mask
from worldtree.ops.templates import TemplateError, Templates

__all__ = ["build_operation", "check", "main"]


#: the words of an exception no operation meant to raise (a bug in it, or in a library it uses)
OPERATION_BROKE = "the operation broke unexpectedly"


class BadInput(Exception):
    """Exit 2: the step's spec cannot be an operation."""


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(OPERATIONS), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(OPERATIONS))}"


def _validation_problems(op: str, exc: ValidationError) -> list[Problem]:
    cls = OPERATIONS[op]
    out: list[Problem] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown argument {loc[-1]!r} of {op}; it takes {', '.join(cls.args_model.model_fields)}"
        elif err["type"] == "missing":
            msg = f"{op} needs `{'.'.join(map(str, loc))}` in `with`"
            loc = []
        out.append((("with", *loc[:1]), msg, err["type"] == "extra_forbidden"))
    return out


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def check(op: str, args: dict[str, Any]) -> list[Problem]:
    """Load-time problems of ``op`` with ``args`` (values holding ``${NAME}`` are checked when the
    step runs, once the secret is known; their keys are checked now)."""
    try:
        load_user_ops(None)
    except OpError as exc:
        return [(("op",), str(exc), False)]
    if op not in OPERATIONS:
        return [(("op",), f"unknown operation {op!r}{_suggest(op)} (an operation from a local `ops/` "
                          "folder is checked when the step runs)", False)]
    model = OPERATIONS[op].args_model
    if _has_placeholder(args):
        unknown = [k for k in args if k not in model.model_fields]
        return [(("with", k), f"unknown argument {k!r} of {op}; it takes {', '.join(model.model_fields)}", True)
                for k in unknown]
    try:
        model.model_validate(args)
    except ValidationError as exc:
        return _validation_problems(op, exc)
    return []


def _local_check(op: str, args: dict[str, Any]) -> list[Problem]:
    """The loader cannot know a pipeline's local ``ops/`` folder: unknown names pass to run time."""
    problems = check(op, args)
    if problems and problems[0][1].startswith(f"unknown operation {op!r}") and re.fullmatch(r"[\w.-]+", op):
        return [] if _maybe_local(op) else problems
    return problems


def _maybe_local(op: str) -> bool:
    """A dotted name outside worldtree's own families may come from a local ``ops/`` folder."""
    family = op.split(".", 1)[0]
    return "." in op and family not in {name.split(".", 1)[0] for name in OPERATIONS}


set_op_checker(_local_check)


def build_operation(spec: dict[str, Any], env: dict[str, str], secrets: Secrets) -> Operation:
    """The operation a step's spec describes, arguments expanded (``${NAME}`` from ``env``; the values
    used are recorded in ``secrets`` for masking) and checked."""
    base = Path(spec.get("base_dir") or os.getcwd())
    try:
        load_user_ops(base)
    except OpError as exc:
        raise BadInput(str(exc)) from None
    op = str(spec.get("op"))
    if op not in OPERATIONS:
        raise BadInput(f"unknown operation {op!r}{_suggest(op)}")
    args, missing = secrets.expand(spec.get("with") or {})
    for name in [n for n in secrets.used if n.startswith(("WORLDTREE_", "PIPELINE_"))]:
        del secrets.used[name]  # worldtree's own variables (the host's name, ...) are not secrets
    if missing:
        raise BadInput(f"${{{missing}}} is not set: add it to the step's `environment` or the job's `secrets`")
    cls = OPERATIONS[op]
    try:
        parsed = cls.args_model.model_validate(args)
    except ValidationError as exc:
        raise BadInput("; ".join(f"{'.'.join(map(str, where))}: {msg}"
                                 for where, msg, _ in _validation_problems(op, exc))) from None
    extra: dict[str, Any] = {"rollback": None, "secrets": secrets.values()}
    if op == "file.template":
        try:
            extra["rendered"] = Templates(base).render_file(str(args["src"]), {"env": dict(env)})
        except TemplateError as exc:
            raise BadInput(str(exc.diagnostic)) from None
    return cls(parsed, OpContext(base, extra))


def _record_path(env: dict[str, str], spec_text: str) -> Path | None:
    run_id = env.get("WORLDTREE_RUN_ID")
    node = env.get("WORLDTREE_NODE")
    if not run_id or not node:
        return None
    state = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    safe = re.sub(r"[^\w.-]", "_", f"{node}")
    digest = hashlib.sha256(spec_text.encode()).hexdigest()[:12]
    return state / "worldtree" / "op-records" / re.sub(r"[^\w.-]", "_", run_id) / f"{safe}-{digest}.pickle"


#: records of runs untouched for this long are removed when a new one is written: a run that
#: succeeded never reads its records again, and they may hold whole files
KEEP_SECONDS = 7 * 86400


def _prune(records: Path) -> None:
    now = time.time()
    try:
        runs = list(records.iterdir())
    except OSError:
        return
    for run in runs:
        try:
            if now - run.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(run, ignore_errors=True)
        except OSError:
            pass


def _save(path: Path, record: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    _prune(path.parent.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(record, fh)
    os.replace(tmp, path)


@contextlib.asynccontextmanager
async def _connection(spec: dict[str, Any], env: dict[str, str], secrets: Secrets) -> AsyncIterator[Connection]:
    """This machine, or the step's ``ssh://`` engine (its ``${NAME}`` parts from the environment,
    masked like every other secret)."""
    engine = spec.get("engine") or env.get(OP_ENGINE_ENV)  # a fanned-out host's URL comes in the env
    if not engine:
        yield LocalConnection()
        return
    from worldtree.connectors.ssh.pool import SshPool
    from worldtree.connectors.ssh.target import parse_engine_url
    from worldtree.ops.ssh_connection import SshConnection

    target = parse_engine_url(str(engine), env)
    for value in target.secrets():
        secrets.used[f"engine:{len(secrets.used)}"] = value
    pool = SshPool(None)
    conn = SshConnection(pool, target)
    try:
        yield conn
    finally:
        await conn.close()
        await pool.close()


async def _run(spec_text: str, env: dict[str, str], secrets: Secrets) -> int:
    spec = json.loads(spec_text)
    op = build_operation(spec, env, secrets)
    async with _connection(spec, env, secrets) as conn:
        state = await op.precheck(conn)
        planned = op.plan(state)
        print(f"{op.name}: {mask(planned.render(), secrets.values())}", flush=True)
        if planned.kind == "none":
            return 0
        record = await op.run(conn, state)
    path = _record_path(env, spec_text)
    if path is not None:
        _save(path, record)
    print(f"{op.name}: changed", flush=True)
    return 0


async def _rollback(spec_text: str, env: dict[str, str], secrets: Secrets) -> int:
    spec = json.loads(spec_text)
    op = build_operation(spec, env, secrets)
    path = _record_path(env, spec_text)
    if path is None or not path.exists():
        print(f"{op.name}: nothing to roll back (this run's step changed nothing)", flush=True)
        return 0
    with path.open("rb") as fh:
        record = pickle.load(fh)  # written by _save above, in a 0700 directory of this user
    async with _connection(spec, env, secrets) as conn:
        await op.rollback(conn, record)
    path.unlink()
    print(f"{op.name}: rolled back", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("run", "rollback"):
        print("usage: python -m worldtree.ops.pipeline_step run|rollback SPEC_JSON", file=sys.stderr)
        return 2
    env = dict(os.environ)
    secrets = Secrets(env)
    try:
        return asyncio.run((_run if args[0] == "run" else _rollback)(args[1], env, secrets))
    except (BadInput, json.JSONDecodeError) as exc:
        print(f"error: {mask(str(exc), secrets.values())}", file=sys.stderr)
        return 2
    except RollbackUnavailable as exc:
        print(f"rollback unavailable: {mask(str(exc), secrets.values())}", file=sys.stderr)
        return 1
    except (OpError, WorldtreeError, OSError) as exc:
        print(f"error: {mask(str(exc), secrets.values())}", file=sys.stderr)
        return 1
    except Exception as exc:  # an operation's bug: one masked line, not a traceback quoting its arguments
        print(f"error: {OPERATION_BROKE}: {type(exc).__name__}: {mask(str(exc), secrets.values())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
