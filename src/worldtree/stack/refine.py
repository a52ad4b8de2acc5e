"""``plan --refine``: ask each phase's plugins what would change at the provider (read-only).

A plan made from the stack alone says what the stack wants; a plugin's ``plan`` subcommand
compares that with the provider's current state (and needs the plugin's credentials, so it is
opt-in and never part of a credential-free CI plan). The answers go to
``stackflow.<phase>-changes.json`` and the summary, not into the plan file: the plan stays what
the stack gives, so its digest and apply's checks are unchanged.
"""

from __future__ import annotations

from typing import Any

from worldtree.plugins import request
from worldtree.stack.apply import ApplyOptions, plugins_for
from worldtree.stack.loader import LoadedStack
from worldtree.stack.model import PHASES


def refine(loaded: LoadedStack, plans: dict[str, dict[str, Any]], state: dict[str, Any],
           options: ApplyOptions) -> dict[str, dict[str, Any]]:
    """Per phase: ``{plugins: [{plugin, changes, planned}]}``; a plugin without ``plan`` says so."""
    stack = loaded.stack.normalized()
    out: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        if phase not in plans:
            continue
        plan = plans[phase]
        entries = []
        for plugin, part in plugins_for(loaded, phase, plan, options):
            if not plugin.info().plan:
                entries.append({"plugin": plugin.name, "planned": False, "changes": []})
                continue
            response = plugin.call("plan", request(f"{phase}-plan", loaded.env, stack, part, state))
            entries.append({"plugin": plugin.name, "planned": True,
                            "changes": [c.model_dump() for c in response.changes]})
        out[phase] = {"stack": loaded.stack.name, "env": loaded.env, "phase": phase, "digest": plan["digest"],
                      "plugins": entries}
    return out


def refine_summary(refined: dict[str, dict[str, Any]]) -> str:
    lines = ["### What the providers say (plan --refine)", ""]
    for phase, data in refined.items():
        for entry in data["plugins"]:
            if not entry["planned"]:
                lines.append(f"- {phase}: `{entry['plugin']}` has no plan subcommand")
                continue
            changes = entry["changes"]
            lines.append(f"- {phase}: `{entry['plugin']}`: {len(changes) or 'no'} change(s)")
            lines += [f"  - {c['action']} `{c['resource']}`" + (" **dangerous**" if c.get("dangerous") else "")
                      for c in changes]
    return "\n".join(lines) + "\n"
