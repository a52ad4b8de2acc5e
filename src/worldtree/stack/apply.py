"""Apply reviewed plans through exec plugins: refused unless approved and still current.

Order of checks, all before any plugin runs: approval (the caller decides how: ``--approve``, a
prompt, ``WORLDTREE_APPLY_APPROVED=1``), one applier per stack and env (an exclusive lock file
in the plan directory, and with a store a lease per stack/env/phase in it, which appliers on
other machines see too), then for every phase asked for: the plan file's digest equals the digest
of the stack, env and recorded state now ("plan was made for a different stack or state; run
plan again"), and its content is what the stack gives (an edited plan file is refused too).

Then phases run in order dns → iac → deploy → observe, one plugin call per provider/engine/type
in a phase (up to ``concurrency`` at once), each plugin that has a ``plan`` subcommand asked first whether any change is
``dangerous`` (refused without ``allow_dangerous``); a plugin without one receives
``allowDangerous`` in its apply request and must not make such changes when it is false.
After each phase the store (when given; see :mod:`worldtree.stack.state`) and the state file
record what the plugins reported (``after`` per resource, ``outputs`` per target) and
``stackflow.<phase>-apply.json`` holds ``{ok, changes[], links[], artifacts[]}``; a phase that
fails stops the later ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldtree.errors import UsageError
from worldtree.plugins import Plugin, PluginError, find_plugin, request
from worldtree.plugins.protocol import PluginResponse
from worldtree.stack import artifacts
from worldtree.stack.digest import plan_digest
from worldtree.stack.loader import LoadedStack
from worldtree.stack.model import Phase, Stack
from worldtree.stack.plans import build_plan
from worldtree.stack.recording import ApplyRecorder, apply_graph
from worldtree.stack.service import phases_of
from worldtree.stack.state import StackState, read_state
from worldtree.stack.summary import apply_summary

STALE = "plan was made for a different stack or state; run plan again"


@dataclass
class ApplyOptions:
    approved: bool = False
    allow_dangerous: bool = False
    plugins_dir: Path | None = None
    timeout: float = 600.0
    #: Plugins of one phase applied at once (deploy: one per target type).
    concurrency: int = 4
    #: A RunStore: the apply is recorded as a run (see :mod:`worldtree.stack.recording`).
    store: Any = None
    environ: Mapping[str, str] | None = None
    on_log: Callable[[str], None] = field(default=lambda _line: None)


def apply_plans(loaded: LoadedStack, phase: str, plan_dir: Path, options: ApplyOptions) -> dict[str, dict[str, Any]]:
    """Apply ``phase`` (or all) from the plans in ``plan_dir``; returns each phase's result.

    Every plugin the phases need is found before the first one runs, so a missing deploy
    plugin does not leave DNS half-applied. A plugin that breaks (PluginError) still lets the
    others of its phase finish and be recorded; then the error is raised.
    """
    if not options.approved:
        raise UsageError("apply needs approval: pass --approve, answer yes at the prompt, or run in a gated CI "
                         "environment that sets WORLDTREE_APPLY_APPROVED=1")
    phases = phases_of(phase)
    results: dict[str, dict[str, Any]] = {}
    error: PluginError | None = None
    stored = StackState(options.store) if options.store is not None else None
    with _applier_lock(plan_dir, loaded), stored.leases(loaded, phases) if stored else nullcontext():
        state = read_state(loaded, plan_dir, options.store)
        plans = _current_plans(loaded, phases, plan_dir, state)
        calls = {name: plugins_for(loaded, name, plans[name], options) for name in phases}
        recorder = _recorder(loaded, phase, calls, plan_dir, options)
        finished = False
        try:
            for name in phases:
                result, error = _apply_phase(loaded, name, calls[name], state, options, recorder)
                results[name] = result
                _record(state, name, result)
                if stored is not None:
                    stored.save(loaded, name, state, result.get("outputs") or {}, plans[name],
                                recorder.run_id if recorder is not None else None)
                artifacts.write_json(artifacts.apply_path(plan_dir, name), _public(result))
                artifacts.write_json(plan_dir / artifacts.STATE_FILE, state)
                if not result["ok"]:
                    break
            finished = True
        finally:
            if recorder is not None:
                recorder.finish(ok=finished and all(r["ok"] for r in results.values()))
    summary = apply_summary(loaded.stack.name, loaded.env, {k: _public(v) for k, v in results.items()})
    artifacts.write_text(plan_dir / "stackflow.apply-summary.md", summary)
    artifacts.append_step_summary(summary)
    if error is not None:
        raise error
    return {k: _public(v) for k, v in results.items()}


@contextmanager
def _applier_lock(plan_dir: Path, loaded: LoadedStack) -> Iterator[None]:
    """One applier per stack/env: a second one is refused at once, not queued."""
    plan_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(plan_dir, loaded)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another apply of stack {loaded.stack.name} env {loaded.env or '(none)'} is running "
                             f"(lock {path}); wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def lock_path(plan_dir: Path, loaded: LoadedStack) -> Path:
    """The lock file of (stack, env): hashed, since a stack's name is the user's text."""
    key = hashlib.sha256(f"{loaded.stack.name}\0{loaded.env}".encode()).hexdigest()[:16]
    return plan_dir / f".stackflow.{key}.lock"


def _current_plans(loaded: LoadedStack, phases: tuple[Phase, ...], plan_dir: Path,
                   state: dict[str, Any]) -> dict[Phase, dict[str, Any]]:
    digest = plan_digest(loaded.stack, loaded.env, state)
    plans: dict[Phase, dict[str, Any]] = {}
    for name in phases:
        path = artifacts.plan_path(plan_dir, name)
        plan = artifacts.read_json(path, f"{name} plan")
        if not isinstance(plan, dict) or plan.get("digest") != digest:
            raise UsageError(f"{path}: {STALE}")
        if plan != build_plan(loaded.stack, loaded.env, name, digest):
            raise UsageError(f"{path}: the plan file was edited after it was made; run plan again and review it")
        plans[name] = plan
    return plans


def _providers(stack: Stack, phase: Phase, plan: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(plugin name, the part of the plan it applies) for each plugin a phase needs."""
    if phase == "dns":
        return [(stack.global_.dns_provider, plan)] if plan["records"] else []
    if phase == "iac":
        engines = sorted({m["engine"] for m in plan["modules"]})
        return [(e, {**plan, "modules": [m for m in plan["modules"] if m["engine"] == e]}) for e in engines]
    if phase == "deploy":  # the target's deploy.plugin, else its type
        chosen = {t.id: str((t.deploy or {}).get("plugin") or t.type) for t in stack.targets}
        names = sorted({chosen[a["target"]] for a in plan["actions"]})
        return [(n, {**plan, "actions": [a for a in plan["actions"] if chosen[a["target"]] == n]}) for n in names]
    extra = stack.global_.model_extra or {}
    empty = not (plan["blackboxTargets"] or plan["scrapeJobs"] or plan["alertRules"])
    return [] if empty else [(str(extra.get("observe") or "prometheus"), plan)]


def plugins_for(loaded: LoadedStack, phase: Phase, plan: dict[str, Any],
                 options: ApplyOptions) -> list[tuple[Plugin, dict[str, Any]]]:
    return [(Plugin(find_plugin(phase, name, options.plugins_dir, _path(options)), options.environ,
                    options.timeout, options.on_log), part) for name, part in _providers(loaded.stack, phase, plan)]


def _recorder(loaded: LoadedStack, phase: str, calls: dict[Phase, list[tuple[Plugin, dict[str, Any]]]],
              plan_dir: Path, options: ApplyOptions) -> ApplyRecorder | None:
    if options.store is None:
        return None
    name = f"stack {loaded.stack.name}" + (f" ({loaded.env})" if loaded.env else "") + f" apply {phase}"
    graph = apply_graph(name, loaded.file, [(p, _node_id(p, plugin), f"{plugin.path} apply")
                                            for p, pairs in calls.items() for plugin, _part in pairs])
    return ApplyRecorder(options.store, graph, str(plan_dir.resolve()))


def _node_id(phase: str, plugin: Plugin) -> str:
    return f"{phase}/{plugin.name}"


def _call_recorded(plugin: Plugin, phase: str, req: dict[str, Any], recorder: ApplyRecorder | None) -> PluginResponse:
    """``apply`` on one plugin; with a recorder, its node's states and log lines go to the run."""
    if recorder is None:
        return plugin.call("apply", req)
    node = _node_id(phase, plugin)
    log, show = recorder.started_node(node), plugin.on_log

    def both(line: str) -> None:
        show(line)
        log(line)

    plugin.on_log = both
    try:
        response = plugin.call("apply", req)
    except PluginError as exc:
        recorder.finished_node(node, False, str(exc))
        raise
    recorder.finished_node(node, response.ok, None if response.ok else "the plugin reported ok: false")
    return response


def _apply_phase(loaded: LoadedStack, phase: Phase, calls: list[tuple[Plugin, dict[str, Any]]],
                 state: dict[str, Any], options: ApplyOptions,
                 recorder: ApplyRecorder | None = None) -> tuple[dict[str, Any], PluginError | None]:
    """Ask every plugin with a ``plan`` about dangerous changes, then apply up to
    ``options.concurrency`` plugins at once; returns the merged result and the first breakage."""
    stack = loaded.stack.normalized()
    for plugin, part in calls:
        if plugin.info().plan and not options.allow_dangerous:
            _refuse_dangerous(plugin.name, plugin.call("plan", request(f"{phase}-plan", loaded.env, stack, part,
                                                                       state)))
    requests = []
    for _plugin, part in calls:
        apply_request = request(f"{phase}-apply", loaded.env, stack, part, state)
        apply_request["allowDangerous"] = options.allow_dangerous
        requests.append(apply_request)
    merged: dict[str, Any] = {"ok": True, "changes": [], "links": [], "artifacts": [], "outputs": {}, "errors": []}
    error: PluginError | None = None
    with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(calls) or 1))) as pool:
        futures = [pool.submit(_call_recorded, plugin, phase, req, recorder)
                   for (plugin, _part), req in zip(calls, requests, strict=True)]
    for future in futures:
        try:
            response = future.result()
        except PluginError as exc:
            merged["ok"] = False
            merged["errors"].append(str(exc))
            error = error or exc
            continue
        result = response.result()
        merged["ok"] = merged["ok"] and result["ok"]
        for key in ("changes", "links", "artifacts"):
            merged[key].extend(result[key])
        merged["outputs"].update(response.outputs)
    return merged, error


def _refuse_dangerous(name: str, response: PluginResponse) -> None:
    dangerous = [c.resource for c in response.changes if c.dangerous]
    if dangerous:
        raise UsageError(f"{name} would make dangerous change(s) to {', '.join(dangerous)}; review them and "
                         "pass --allow-dangerous to apply")


def _record(state: dict[str, Any], phase: str, result: dict[str, Any]) -> None:
    resources = state.setdefault("resources", {}).setdefault(phase, {})
    for change in result["changes"]:
        if change.get("action") in ("delete", "destroy", "remove"):
            resources.pop(change["resource"], None)
        else:
            resources[change["resource"]] = change.get("after")
    for target, values in result.get("outputs", {}).items():
        state.setdefault("outputs", {}).setdefault(target, {}).update(values)


def _public(result: dict[str, Any]) -> dict[str, Any]:
    """``{ok, changes[], links[], artifacts[]}``, plus ``errors[]`` when a plugin broke."""
    out = {k: result[k] for k in ("ok", "changes", "links", "artifacts")}
    if result.get("errors"):
        out["errors"] = result["errors"]
    return out


def _path(options: ApplyOptions) -> str | None:
    return None if options.environ is None else options.environ.get("PATH", "")
