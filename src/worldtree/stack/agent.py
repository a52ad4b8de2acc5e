"""Agent mode: keep watching a stack; validate, plan and detect drift every tick; apply only as leader.

Every tick (``worldtree stack agent --config F --interval 10m --store URL``):

1. take or renew the leadership lease ``agent/<stack>/<env>`` in the store (several agents may
   run on one store, PostgreSQL in practice; the lease lasts two intervals, so a dead leader is
   replaced after at most that);
2. load and validate the stack, plan every phase against the applied state in the store (plans
   and summary written to the agent's directory), cite the skills from the store's cache;
3. compare each plan with the one last applied: a phase never applied, or whose plan changed, has
   **drifted**;
4. if it drifted, this agent holds the lease, was started with ``--dangerously-allow-apply`` and
   the approval variable ``WORLDTREE_APPLY_APPROVED=1`` is set: apply every phase (itself a run,
   with the per-phase leases of :mod:`worldtree.stack.state`);
5. remember the tick in the store (``stack_memory``: ``last_tick``, ``drift``, ``skills``,
   ``last_apply``), and record the tick as a run (nodes ``validate``, ``plan``, ``drift`` and,
   when it applied, ``apply``) so ``worldtree runs`` shows what every agent did.

The agent keeps nothing in memory between ticks: a restarted agent, or another one, carries on
from the store. A tick never raises for a bad stack or a failing plugin: it records the problem
and the next tick tries again; only a store that cannot be reached ends the agent.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worldtree.errors import StoreError, WorldtreeError
from worldtree.stack.apply import ApplyOptions, apply_plans
from worldtree.stack.loader import load_stack
from worldtree.stack.recording import ApplyRecorder, apply_graph
from worldtree.stack.service import write_plans
from worldtree.stack.state import StackState, holder_name
from worldtree.store.api import RunStore

APPROVAL_ENV = "WORLDTREE_APPLY_APPROVED"


@dataclass
class AgentOptions:
    config: Path
    env: str = ""
    interval: float = 600.0
    out: Path = Path(".worldtree/agent")
    allow_apply: bool = False
    plugins_dir: Path | None = None
    plugin_timeout: float = 600.0
    holder: str = field(default_factory=holder_name)
    #: the skills to cite, as plain data (loaded by the interface from ./skills and the store's cache)
    skills: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])
    on_log: Callable[[str], None] = field(default=lambda _line: None)


def parse_interval(text: str) -> float:
    """``90``, ``30s``, ``10m``, ``1h`` → seconds (at least 1)."""
    from worldtree.errors import UsageError

    units = {"s": 1, "m": 60, "h": 3600}
    raw = text.strip().lower()
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        raise UsageError(f"--interval {text!r}: write seconds or 30s, 10m, 1h") from None
    if not value >= 1:
        raise UsageError(f"--interval {text!r}: at least 1 second")
    return value


def run_agent(store: RunStore, options: AgentOptions, stop: threading.Event, once: bool = False) -> dict[str, Any]:
    """Tick until ``stop`` is set (or once); returns the last tick's result. Releases the lease at the end."""
    state = StackState(store)
    result: dict[str, Any] = {}
    key = ""
    try:
        while True:
            result = tick(store, state, options)
            key = result.get("lease_key") or key
            if once or stop.wait(options.interval):
                return result
    finally:
        if key and result.get("token"):
            state.rows.release(key, result["token"])


def tick(store: RunStore, state: StackState, options: AgentOptions) -> dict[str, Any]:
    """One tick (see the module docstring); the result is also remembered as ``last_tick``."""
    at = datetime.now(UTC).isoformat()
    log: list[tuple[str, str]] = []

    def say(node: str, line: str) -> None:
        log.append((node, line))
        options.on_log(line)

    try:
        loaded = load_stack(str(options.config), options.env)
    except WorldtreeError as exc:  # a broken stack is a result to record, not a reason to stop
        name = options.config.stem
        say("validate/stack", str(exc))
        broken: dict[str, Any] = {"at": at, "ok": False, "stack": name, "env": options.env, "error": str(exc)}
        _record(store, name, options.env, broken, log, ["validate/stack"])
        state.rows.remember(name, options.env, "last_tick", broken)
        return broken
    name, env = loaded.stack.name, loaded.env
    key = f"agent/{name}/{env}"
    token = state.rows.acquire(key, options.holder, max(2 * options.interval, 30.0))
    leader = state.rows.holder(key)
    say("validate/stack", f"stack {name} is valid; leader: {leader}{' (this agent)' if token else ''}")
    skills = options.skills()
    out = options.out / _dir_name(name, env)
    plans = write_plans(loaded, "all", out, store=store, skills=skills)
    digest = next(iter(plans.values()))["digest"]
    say("plan/all", f"planned {', '.join(plans)} in {out} (digest {digest})")
    drift = state.drift(loaded, plans)
    say("drift/check", "no drift" if not drift else "drift: " + "; ".join(f"{p}: {w}" for p, w in drift.items()))
    result: dict[str, Any] = {"at": at, "ok": True, "stack": name, "env": env, "digest": digest, "drift": drift,
                              "leader": leader, "holder": options.holder, "lease_key": key, "token": token,
                              "applied": False}
    nodes = ["validate/stack", "plan/all", "drift/check"]
    if drift:
        why_not = _why_not_apply(options, token, leader)
        if why_not:
            say("drift/check", f"not applying: {why_not}")
            result["not_applied"] = why_not
        else:
            nodes.append("apply/all")
            result.update(_apply(store, loaded, out, options, say))
    _record(store, name, env, result, log, nodes)
    memory = {k: v for k, v in result.items() if k != "token"}
    state.rows.remember(name, env, "last_tick", memory)
    state.rows.remember(name, env, "drift", drift)
    state.rows.remember(name, env, "skills", [{k: s[k] for k in ("name", "version", "sha256")} for s in skills])
    if "apply" in result:
        state.rows.remember(name, env, "last_apply", {"at": at, "holder": options.holder, **result["apply"]})
    return result


def _dir_name(name: str, env: str) -> str:
    """``<stack>[.<env>]`` as one safe path segment (the names are the user's text: no ``..``, no ``/``)."""
    raw = f"{name}.{env}" if env else name
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", raw).lstrip(".") or "stack"
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return safe


def _why_not_apply(options: AgentOptions, token: str | None, leader: str | None) -> str:
    if not options.allow_apply:
        return "this agent was not started with --dangerously-allow-apply"
    if os.environ.get(APPROVAL_ENV, "") != "1":
        return f"{APPROVAL_ENV}=1 is not set (the approval gate)"
    if token is None:
        return f"{leader} holds the lease; only the leader applies"
    return ""


def _apply(store: RunStore, loaded: Any, out: Path, options: AgentOptions,
           say: Callable[[str, str], None]) -> dict[str, Any]:
    apply_options = ApplyOptions(approved=True, plugins_dir=options.plugins_dir, timeout=options.plugin_timeout,
                                 store=store, on_log=lambda line: say("apply/all", f"[plugin] {line}"))
    try:
        results = apply_plans(loaded, "all", out, apply_options)
    except StoreError:
        raise
    except WorldtreeError as exc:
        say("apply/all", f"apply failed: {exc}")
        return {"applied": False, "apply": {"ok": False, "error": str(exc)}}
    changes = sum(len(r["changes"]) for r in results.values())
    say("apply/all", f"applied: {changes} change(s)")
    return {"applied": True, "apply": {"ok": all(r["ok"] for r in results.values()), "changes": changes}}


def _record(store: RunStore, name: str, env: str, result: dict[str, Any], log: list[tuple[str, str]],
            nodes: list[str]) -> None:
    """The tick as a run: one node per step, its lines as the node's log."""
    title = f"stack {name}" + (f" ({env})" if env else "") + " agent tick"
    graph = apply_graph(title, None, [(n.split("/")[0], n, n) for n in nodes])
    recorder = ApplyRecorder(store, graph, str(Path.cwd()))
    failed = not result.get("ok") or (result.get("apply") or {}).get("ok") is False
    for node in nodes:
        write = recorder.started_node(node)
        for where, line in log:
            if where == node:
                write(line)
        ok = not (failed and node == nodes[-1])
        recorder.finished_node(node, ok, None if ok else str(result.get("error") or "apply failed"))
    recorder.finish(ok=not failed)
    result["run_id"] = recorder.run_id
