"""The four phase plans, built from a checked stack alone: pure, no credentials, no network.

Shapes follow the reference implementation (dns) and its phase docs (iac, deploy, observe):

* dns: ``{stack, env, global:{domain, dns_provider}, records:[{name, type, value|valueFrom,
  ttl?, proxied?, target}]}``
* iac: ``{stack, env, modules:[{target, engine, source, inputs, outputs[]}], state:{backend,
  workspace, lock}}``
* deploy: ``{stack, env, actions:[{target, type, mode, repo, ref, payload, requires[]}]}``
* observe: ``{stack, env, blackboxTargets[], scrapeJobs[], alertRules[]}``

Each plan also carries ``phase`` and ``digest`` (see :mod:`worldtree.stack.digest`), added by
:func:`build_plan`.
"""

from __future__ import annotations

from typing import Any

from worldtree.stack.model import Phase, Stack, Target

#: Remote state backend per cloud when ``global.state_backend`` does not say.
_STATE_BACKENDS = {"gcp": "gcs", "aws": "s3", "azure": "azurerm", "alicloud": "oss"}
#: Keys of ``resources`` that steer the plan rather than being module inputs.
_RESOURCE_META = {"module", "engine", "source", "outputs"}


def build_plan(stack: Stack, env: str, phase: Phase, digest: str) -> dict[str, Any]:
    """The plan for one phase, stamped with the digest it is valid for."""
    body = _BUILDERS[phase](stack, env)
    return {"stack": stack.name, "env": env, "phase": phase, "digest": digest, **body}


def dns_plan(stack: Stack, env: str = "") -> dict[str, Any]:
    records = []
    for target in stack.targets:
        for rec in target.dns.records:
            out: dict[str, Any] = {"name": rec.name, "type": rec.type}
            if rec.value_from is not None:
                out["valueFrom"] = rec.value_from
            else:
                out["value"] = rec.value
            if rec.ttl is not None:
                out["ttl"] = rec.ttl
            if rec.proxied is not None:
                out["proxied"] = rec.proxied
            out["target"] = target.id
            records.append(out)
    return {"global": {"domain": stack.global_.domain, "dns_provider": stack.global_.dns_provider},
            "records": records}


def iac_engine(stack: Stack, target: Target | None = None) -> str:
    """``resources.engine``, else ``global.iac_engine``, else ``global.cloud`` (picks the plugin)."""
    if target is not None and target.resources and isinstance(target.resources.get("engine"), str):
        return str(target.resources["engine"])
    extra = stack.global_.model_extra or {}
    return str(extra.get("iac_engine") or stack.global_.cloud)


def iac_plan(stack: Stack, env: str = "") -> dict[str, Any]:
    g = stack.global_
    modules = []
    for target in stack.targets:
        if target.resources is None:
            continue
        res = target.resources
        module = str(res.get("module", "compute-instance"))
        base = (g.iac_modules or "iac_modules").rstrip("/")
        inputs = {k: v for k, v in res.items() if k not in _RESOURCE_META}
        if g.cloud == "gcp" and g.gcp_project and "project" not in inputs:
            inputs["project"] = g.gcp_project
        wanted = {value_from_source(r.value_from, t.id)[1] for t in stack.targets for r in t.dns.records
                  if r.value_from and value_from_source(r.value_from, t.id)[0] == target.id}
        outputs = sorted(wanted | {o for o in _list(res.get("outputs")) if isinstance(o, str)})
        modules.append({"target": target.id, "engine": iac_engine(stack, target),
                        "source": str(res.get("source", f"{base}/{g.cloud}/{module}")),
                        "inputs": dict(sorted(inputs.items())), "outputs": outputs})
    extra = g.model_extra or {}
    backend = str(extra.get("state_backend") or _STATE_BACKENDS.get(g.cloud, "local"))
    workspace = f"{stack.name}-{env}" if env else stack.name
    return {"modules": modules, "state": {"backend": backend, "workspace": workspace, "lock": True}}


def value_from_source(ref: str, own: str) -> tuple[str, str]:
    """(target whose IaC outputs ``ref`` reads, output name); the loader checked both exist."""
    if ref.startswith("endpoints."):
        return own, ref
    owner, _, output = ref.partition(".")
    return owner, output


def deploy_plan(stack: Stack, env: str = "") -> dict[str, Any]:
    actions = [_deploy_action(stack, target) for target in stack.targets]
    return {"actions": actions}


def _deploy_action(stack: Stack, target: Target) -> dict[str, Any]:
    spec = dict(target.deploy or {})
    requires = (["dns"] if target.dns.records else []) + (["iac"] if target.resources is not None else [])
    action: dict[str, Any] = {"target": target.id, "type": target.type}
    if target.type == "vhost":
        action.update(mode="playbook", repo=spec.get("repo") or stack.global_.playbooks, ref=spec.get("ref", "main"),
                      payload={"playbook": spec.get("playbook", f"{target.id}.yaml"),
                               "inventory": spec.get("inventory"), "vars": spec.get("vars", {}),
                               "hosts": target.domains})
    elif target.type == "cloud-run":
        mode = spec.get("mode", "workflow_call")
        inputs = {k: v for k, v in spec.items() if k not in ("repo", "ref", "mode", "workflow")}
        inputs.setdefault("service", target.id)
        payload: dict[str, Any] = ({"event_type": "stackflow-deploy", "client_payload": inputs}
                                   if mode == "repository_dispatch"
                                   else {"workflow": spec.get("workflow", "deploy.yaml"), "inputs": inputs})
        action.update(mode=mode, repo=spec.get("repo"), ref=spec.get("ref", "main"), payload=payload)
    elif target.type == "vercel":
        action.update(mode="domain-binding", repo=spec.get("repo"), ref=spec.get("ref"),
                      payload={"project": spec.get("project", target.id), "domains": target.domains})
    else:
        action.update(mode=spec.get("mode", "plugin"), repo=spec.get("repo"), ref=spec.get("ref"), payload=spec)
    action["requires"] = requires
    return action


def observe_plan(stack: Stack, env: str = "") -> dict[str, Any]:
    blackbox: list[dict[str, Any]] = []
    scrape: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for target in stack.targets:
        spec = target.observe or {}
        if spec.get("blackbox", True) is not False:
            path = str(spec.get("path", "/"))
            module = str(spec.get("module", "http_2xx"))
            for domain in target.domains:
                blackbox.append({"target": target.id, "url": f"https://{domain}{path}", "module": module})
            alerts.append({"alert": f"StackflowProbeFailed:{target.id}",
                           "expr": f'probe_success{{stackflow_target="{target.id}"}} == 0',
                           "for": str(spec.get("for", "5m")), "severity": str(spec.get("severity", "critical"))})
        for job in _list(spec.get("scrape")):
            if isinstance(job, dict):
                scrape.append({"target": target.id, "job_name": job.get("job_name", target.id),
                               "metrics_path": job.get("metrics_path", "/metrics"),
                               "targets": job.get("targets", target.domains)})
        for rule in _list(spec.get("alerts")):
            if isinstance(rule, dict):
                alerts.append({"target": target.id, **rule})
    return {"blackboxTargets": blackbox, "scrapeJobs": scrape, "alertRules": alerts}


def _list(value: Any) -> list[Any]:
    """Free-form sections may hold anything; a list is read, anything else is nothing."""
    return value if isinstance(value, list) else []


_BUILDERS = {"dns": dns_plan, "iac": iac_plan, "deploy": deploy_plan, "observe": observe_plan}
