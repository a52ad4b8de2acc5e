"""Where a stack's applied state lives: the run store (SQLite or PostgreSQL), per (stack, env, phase).

With a store, ``plan`` digests against the state the store holds and ``apply`` records there what
each phase's plugins reported; ``stackflow.state.json`` in the plan directory stays as a copy for
reviewers (and is the state itself when no store is given: library use, MCP). Several appliers
(CI jobs, agents on other machines) then agree on one state, and a plan made before another
apply is refused as stale ("plan was made for a different stack or state; run plan again").

Each phase row also keeps the sha256 of the plan it applied (without its digest, which changes
with every apply): a plan made now whose content differs from that is **drift** — the stack moved
since the last apply — which agent mode reports.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from worldtree.errors import UsageError
from worldtree.stack import artifacts
from worldtree.stack.digest import canonical
from worldtree.stack.loader import LoadedStack
from worldtree.stack.model import Phase
from worldtree.store.api import RunStore
from worldtree.store.server_data import engine_of
from worldtree.store.stacks import StackRows

#: How long an apply's lease on a phase lasts (it is not renewed: plugin timeouts default to 600 s,
#: so one phase fits). An applier killed on this host is replaced at once (its pid is gone); one
#: on another host holds the phase until the lease ends.
APPLY_LEASE_SECONDS = 3600.0


def plan_sha256(plan: dict[str, Any]) -> str:
    """The plan's content without its digest: what the stack asks for, whatever the state."""
    return hashlib.sha256(canonical({k: v for k, v in plan.items() if k != "digest"})).hexdigest()


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class StackState:
    """The applied state of stacks in ``store``."""

    def __init__(self, store: RunStore) -> None:
        self.rows = StackRows(engine_of(store))

    def load(self, loaded: LoadedStack) -> dict[str, Any]:
        return self.rows.load_state(loaded.stack.name, loaded.env)

    def save(self, loaded: LoadedStack, phase: Phase, state: dict[str, Any], outputs: dict[str, Any],
             plan: dict[str, Any], run_id: str | None) -> None:
        """Record ``phase`` after an apply: its resources as ``state`` now holds them, the outputs it
        produced (added to those it produced before), the applied plan's digest and content hash."""
        before = self.rows.phase_part(loaded.stack.name, loaded.env, phase).get("outputs") or {}
        for target, values in outputs.items():
            before.setdefault(target, {}).update(values)
        self.rows.save_phase(loaded.stack.name, loaded.env, phase,
                             resources=(state.get("resources") or {}).get(phase) or {}, outputs=before,
                             digest=str(plan["digest"]), plan_sha256=plan_sha256(plan),
                             run_id=run_id)

    def drift(self, loaded: LoadedStack, plans: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Phase → why it drifted: never applied, or the plan now differs from the one applied last."""
        out: dict[str, str] = {}
        for phase, plan in plans.items():
            part = self.rows.phase_part(loaded.stack.name, loaded.env, phase)
            if not part:
                out[phase] = "never applied"
            elif part.get("plan_sha256") != plan_sha256(plan):
                out[phase] = "the stack changed since the last apply"
        return out

    @contextmanager
    def leases(self, loaded: LoadedStack, phases: tuple[Phase, ...],
               holder: str | None = None) -> Iterator[None]:
        """Hold ``apply/<stack>/<env>/<phase>`` for every phase, or refuse at once naming the holder.

        The holder is ``host:pid#nonce``, one per call: a lease taken again by the same holder is
        renewed, so with ``host:pid`` alone two applies in one process (MCP calls, threads) both got
        the phase, and the first to finish released the other's lease."""
        who = holder or f"{holder_name()}#{secrets.token_hex(4)}"
        taken: list[tuple[str, str]] = []
        try:
            for phase in phases:
                key = lease_key(loaded, phase)
                token = self.rows.acquire(key, who, APPLY_LEASE_SECONDS)
                if token is None and _dead_here(self.rows.holder(key)):  # kill -9'd on this host
                    token = self.rows.acquire(key, who, APPLY_LEASE_SECONDS, replacing=self.rows.holder(key))
                if token is None:
                    raise UsageError(f"another apply of stack {loaded.stack.name} env {loaded.env or '(none)'} "
                                     f"phase {phase} is running ({self.rows.holder(key) or 'just finished'}); "
                                     "wait for it to finish")
                taken.append((key, token))
            yield
        finally:
            for key, token in reversed(taken):
                self.rows.release(key, token)


def _dead_here(holder: str | None) -> bool:
    """Whether ``holder`` (``host:pid``, maybe ``#nonce``) is a process of this host that no longer exists."""
    host, _, pid = (holder or "").partition("#")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_key(loaded: LoadedStack, phase: str) -> str:
    return f"apply/{loaded.stack.name}/{loaded.env}/{phase}"


def read_state(loaded: LoadedStack, plan_dir: Path, store: RunStore | None) -> dict[str, Any]:
    """The state plans are digested against: the store's when there is one, else the plan directory's."""
    return StackState(store).load(loaded) if store is not None else artifacts.read_state(plan_dir)
