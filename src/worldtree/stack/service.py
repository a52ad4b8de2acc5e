"""validate and plan as one call each: what the CLI (and later MCP and the server) run.

Both write their artifacts into ``out`` and return the data they wrote, so an interface can
print it without reading the files back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldtree.stack import artifacts
from worldtree.stack.digest import plan_digest
from worldtree.stack.loader import LoadedStack
from worldtree.stack.model import PHASES, Phase
from worldtree.stack.plans import build_plan
from worldtree.stack.summary import plan_summary

if TYPE_CHECKING:
    from worldtree.stack.apply import ApplyOptions
    from worldtree.store.api import RunStore


def validation_result(loaded: LoadedStack) -> dict[str, Any]:
    """``stackflow.validate.json``: ``{ok, stack, domain, dns_provider, cloud, targets, env}``."""
    s = loaded.stack
    return {"ok": True, "stack": s.name, "domain": s.global_.domain, "dns_provider": s.global_.dns_provider,
            "cloud": s.global_.cloud, "targets": len(s.targets), "env": loaded.env}


def phases_of(phase: str) -> tuple[Phase, ...]:
    """``all`` or one phase name, in apply order."""
    if phase == "all":
        return PHASES
    for known in PHASES:
        if phase == known:
            return (known,)
    from worldtree.errors import UsageError

    raise UsageError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)} or all")


def make_plans(loaded: LoadedStack, phase: str, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plans for ``phase`` (or all four), all stamped with one digest."""
    digest = plan_digest(loaded.stack, loaded.env, state)
    return {p: build_plan(loaded.stack, loaded.env, p, digest) for p in phases_of(phase)}


def write_plans(loaded: LoadedStack, phase: str, out: Path,
                refine_with: ApplyOptions | None = None, store: RunStore | None = None,
                skills: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Plan against the applied state (the store's, else the one recorded in ``out``); write each
    plan and the summary in ``out``.

    ``skills`` (``{name, origin, version, sha256}``) that the plans' providers, engines and types
    name are cited in the summary and ``stackflow.skills.json``. With ``refine_with``, each phase's
    plugins are also asked what would change at the provider (``stackflow.<phase>-changes.json``;
    see :mod:`worldtree.stack.refine`).
    """
    from worldtree.stack.state import read_state

    state = read_state(loaded, out, store)
    plans = make_plans(loaded, phase, state)
    for name, plan in plans.items():
        artifacts.write_json(artifacts.plan_path(out, name), plan)
    summary = plan_summary(loaded.stack.name, loaded.env, plans)
    if skills:  # skills the interface loaded (plain data): cited by name, listed in stackflow.skills.json
        from worldtree.stack.citations import cite, summary_section

        cited = cite(loaded.stack, plans, skills)
        artifacts.write_json(out / "stackflow.skills.json", {"stack": loaded.stack.name, "env": loaded.env,
                                                             "skills": cited})
        if cited:
            summary += "\n" + summary_section(cited)
    if refine_with is not None:
        from worldtree.stack.refine import refine, refine_summary

        refined = refine(loaded, plans, state, refine_with)
        for name, data in refined.items():
            artifacts.write_json(out / f"stackflow.{name}-changes.json", data)
        summary += "\n" + refine_summary(refined)
    artifacts.write_text(out / artifacts.SUMMARY_FILE, summary)
    artifacts.append_step_summary(summary)
    return plans
