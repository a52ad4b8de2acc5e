"""``stackflow.summary.md``: the plans (and apply results) as a reviewer reads them in CI."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).replace("|", "\\|").replace("\n", " ")


def plan_summary(stack: str, env: str, plans: dict[str, dict[str, Any]]) -> str:
    """Markdown for one ``plan`` command: a heading, the digest, one section per phase."""
    lines = [f"## StackFlow plan: {stack}" + (f" ({env})" if env else ""), ""]
    digests = {p["digest"] for p in plans.values()}
    lines += [f"Digest: `{d}`" for d in sorted(digests)] + [""]
    for phase, plan in plans.items():
        lines += [*_SECTIONS[phase](plan), ""]
    return "\n".join(lines)


def _dns(plan: dict[str, Any]) -> list[str]:
    g = plan["global"]
    out = [f"### dns: {len(plan['records'])} record(s) on {g['dns_provider']} under {g['domain']}", "",
           "| target | name | type | value | ttl | proxied |", "|---|---|---|---|---|---|"]
    for r in plan["records"]:
        value = r["value"] if "value" in r else f"from {r['valueFrom']}"
        out.append(f"| {_cell(r['target'])} | {_cell(r['name'])} | {r['type']} | {_cell(value)} "
                   f"| {r.get('ttl', '')} | {_cell(r.get('proxied', ''))} |")
    return out


def _iac(plan: dict[str, Any]) -> list[str]:
    s = plan["state"]
    out = [f"### iac: {len(plan['modules'])} module(s), state {s['backend']} workspace {s['workspace']}", ""]
    out += [f"- `{m['target']}`: {m['engine']} `{m['source']}` → {', '.join(m['outputs']) or 'no outputs'}"
            for m in plan["modules"]]
    return out


def _deploy(plan: dict[str, Any]) -> list[str]:
    out = [f"### deploy: {len(plan['actions'])} action(s)", ""]
    out += [f"- `{a['target']}` ({a['type']}): {a['mode']}" + (f" after {', '.join(a['requires'])}"
                                                             if a["requires"] else "") for a in plan["actions"]]
    return out


def _observe(plan: dict[str, Any]) -> list[str]:
    return [f"### observe: {len(plan['blackboxTargets'])} probe(s), {len(plan['scrapeJobs'])} scrape job(s), "
            f"{len(plan['alertRules'])} alert rule(s)", ""] + [f"- probe {b['url']} ({b['module']})"
                                                              for b in plan["blackboxTargets"]]


def apply_summary(stack: str, env: str, results: dict[str, dict[str, Any]]) -> str:
    lines = [f"## StackFlow apply: {stack}" + (f" ({env})" if env else ""), ""]
    for phase, result in results.items():
        changes = result.get("changes", [])
        lines.append(f"### {phase}: {'ok' if result.get('ok') else 'FAILED'}, "
                     f"{len(changes) or 'no'} change(s)")
        lines += [f"- {_cell(c.get('action'))} `{_cell(c.get('resource'))}`" for c in changes]
        lines += [f"- link: {_cell(link)}" for link in result.get("links", [])]
        lines.append("")
    return "\n".join(lines)


_SECTIONS = {"dns": _dns, "iac": _iac, "deploy": _deploy, "observe": _observe}
