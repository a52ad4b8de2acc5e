"""MCP tools over worldtree's stack library: validate and plan freely, apply only when allowed.

Tools (names and arguments as the StackFlow reference names them):

* ``stackflow.validate {config_yaml, env?}`` → ``{ok, stack, domain, dns_provider, cloud, targets, env}``
* ``stackflow.plan.dns|iac|deploy|observe {config_yaml, env?}`` → the phase plan (same JSON as
  ``worldtree stack plan``, digest made against the applied state in the local store; empty when
  the runs live on a server)
* ``pipeline.validate``, ``runs.submit|list|get|logs|cancel|retry``, ``jobs.explain``: worldtree's
  own runs, locally or on a server (see :mod:`worldtree.mcp.pipelines`)
* ``stackflow.apply.dns|iac|deploy|observe|all {config_yaml, plan_dir, env?, allow_dangerous?}`` →
  refused unless the server was started with ``--dangerously-allow-apply``; every call, refused
  or not, is written as one audit line on stderr; an apply is recorded as a run in the local
  store. Credentials stay in the server's environment and reach only plugins (the assistant never
  holds them).

A bad document is a tool error carrying the located messages (``config.yaml:12:5: …``); bad
arguments are rejected by the SDK against each tool's input schema; nothing crashes the server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from worldtree import __version__
from worldtree.errors import WorldtreeError
from worldtree.mcp.pipelines import LazyRuns
from worldtree.mcp.pipelines import register as register_pipeline_tools
from worldtree.mcp.resources import register as register_resources
from worldtree.stack.apply import ApplyOptions, apply_plans
from worldtree.stack.loader import LoadedStack, parse_stack
from worldtree.stack.model import PHASES
from worldtree.stack.service import make_plans, validation_result
from worldtree.stack.state import StackState
from worldtree.store.api import RunStore

CONFIG_NAME = "config.yaml"


def _load(config_yaml: str, env: str | None) -> LoadedStack:
    try:
        return parse_stack(config_yaml, CONFIG_NAME, env or "")
    except WorldtreeError as exc:
        raise ToolError(str(exc)) from None


def build_server(allow_apply: bool = False, runs: LazyRuns | None = None, artifacts_dir: str = ".") -> MCPServer:
    """The server with every tool registered; ``allow_apply`` unlocks the apply tools; ``runs``
    (when given) adds the pipeline tools of :mod:`worldtree.mcp.pipelines` over it, and its local
    store (if any) holds the stacks' applied state and records applies as runs. Resources: the
    skills, and the ``stackflow.*`` artifacts in ``artifacts_dir``."""
    server: MCPServer = MCPServer("worldtree", version=__version__,
                                  instructions="Validate and plan StackFlow stacks (apply is gated by the operator); "
                                               "validate, submit, follow, retry and explain worldtree pipeline runs.")
    if runs is not None:
        register_pipeline_tools(server, runs)
    store_of: Callable[[], RunStore | None] = runs.store if runs is not None else lambda: None
    register_resources(server, store_of, Path(artifacts_dir))

    @server.tool(name="stackflow.validate", description="Check a StackFlow v1alpha1 stack (YAML text).")
    def validate(config_yaml: str, env: str | None = None) -> dict[str, Any]:
        return validation_result(_load(config_yaml, env))

    for phase in PHASES:
        _add_plan_tool(server, phase, store_of)
    for name in (*PHASES, "all"):
        _add_apply_tool(server, name, allow_apply, store_of)
    return server


def _state(loaded: LoadedStack, store: RunStore | None) -> dict[str, Any]:
    try:
        return StackState(store).load(loaded) if store is not None else {}
    except WorldtreeError as exc:
        raise ToolError(str(exc)) from None


def _add_plan_tool(server: MCPServer, phase: str, store_of: Callable[[], RunStore | None]) -> None:
    def plan(config_yaml: str, env: str | None = None) -> dict[str, Any]:
        loaded = _load(config_yaml, env)
        return make_plans(loaded, phase, _state(loaded, store_of()))[phase]

    server.add_tool(plan, name=f"stackflow.plan.{phase}",
                    description=f"The {phase} plan of a StackFlow stack (read-only, no credentials).")


def _add_apply_tool(server: MCPServer, phase: str, allowed: bool, store_of: Callable[[], RunStore | None]) -> None:
    def apply(config_yaml: str, plan_dir: str, env: str | None = None,
              allow_dangerous: bool = False) -> dict[str, Any]:
        loaded = _load(config_yaml, env)
        _audit(phase, loaded, plan_dir, allowed)
        if not allowed:
            raise ToolError("apply is disabled on this MCP server; an operator starts it with "
                            "--dangerously-allow-apply to enable it")
        options = ApplyOptions(approved=True, allow_dangerous=allow_dangerous, store=store_of(),
                               on_log=lambda line: print(f"[plugin] {line}", file=sys.stderr, flush=True))
        try:
            return apply_plans(loaded, phase, Path(plan_dir), options)
        except WorldtreeError as exc:
            raise ToolError(str(exc)) from None

    server.add_tool(apply, name=f"stackflow.apply.{phase}",
                    description=f"Apply reviewed {phase} plan(s) from plan_dir through plugins (gated, audited).")


def _audit(phase: str, loaded: LoadedStack, plan_dir: str, allowed: bool) -> None:
    line = {"audit": f"stackflow.apply.{phase}", "stack": loaded.stack.name, "env": loaded.env,
            "plan_dir": plan_dir, "allowed": allowed}
    print(json.dumps(line), file=sys.stderr, flush=True)
