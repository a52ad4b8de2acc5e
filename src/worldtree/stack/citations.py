"""Which skills a plan cites: those named after what the plan uses (``dns``, ``dns-cloudflare``, …).

Skills arrive as plain data (``{name, origin, version, sha256}``, loaded by :mod:`worldtree.skills`
in the interface), so this module only matches names. A phase that has nothing to do cites
nothing; the DNS skill is cited whenever the stack has DNS records for its provider.
"""

from __future__ import annotations

from typing import Any

from worldtree.stack.model import Stack


def terms(stack: Stack, plans: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Phase → the skill names it would cite."""
    out: dict[str, set[str]] = {}
    if "dns" in plans and plans["dns"]["records"]:
        provider = stack.global_.dns_provider
        out["dns"] = {"dns", f"dns-{provider}", provider}
    if "iac" in plans and plans["iac"]["modules"]:
        engines = {m["engine"] for m in plans["iac"]["modules"]}
        out["iac"] = {"iac", stack.global_.cloud, *engines, *(f"iac-{e}" for e in engines)}
    if "deploy" in plans and plans["deploy"]["actions"]:
        types = {a["type"] for a in plans["deploy"]["actions"]}
        out["deploy"] = {"deploy", *types, *(f"deploy-{t}" for t in types)}
    if "observe" in plans:
        plan = plans["observe"]
        if plan["blackboxTargets"] or plan["scrapeJobs"] or plan["alertRules"]:
            extra = stack.global_.model_extra or {}
            name = str(extra.get("observe") or "prometheus")
            out["observe"] = {"observe", name, f"observe-{name}"}
    return out


def cite(stack: Stack, plans: dict[str, dict[str, Any]], skills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{phase, name, origin, version, sha256}]`` for every skill a phase's terms name."""
    by_name = {s["name"].lower(): s for s in skills}
    cited = []
    for phase, names in terms(stack, plans).items():
        for name in sorted(n.lower() for n in names):
            if name in by_name:
                s = by_name[name]
                cited.append({"phase": phase, "name": s["name"], "origin": s["origin"], "version": s["version"],
                              "sha256": s["sha256"]})
    return cited


def summary_section(cited: list[dict[str, Any]]) -> str:
    lines = ["### Skills cited", "", "| phase | skill | origin | version | sha256 |", "|---|---|---|---|---|"]
    for c in cited:
        lines.append(f"| {c['phase']} | {c['name']} | {c['origin']} | {c['version'][:12]} | {c['sha256'][:12]} |")
    return "\n".join(lines) + "\n"
