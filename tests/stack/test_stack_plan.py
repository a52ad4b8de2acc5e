"""plan: the documented JSON shapes (golden files), one digest per stack/env/state, the step summary."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from worldtree.stack import load_stack
from worldtree.stack.digest import plan_digest
from worldtree.stack.service import make_plans

Cli = Callable[..., subprocess.CompletedProcess[str]]
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "stack"
FILES = ["stackflow.dns-plan.json", "stackflow.iac-plan.json", "stackflow.deploy-plan.json",
         "stackflow.observe-plan.json"]


@pytest.mark.parametrize("name", ["svc-plus", "svc-plus.dev", "vercel-www"])
def test_plan_all_writes_the_golden_plans_and_summary(cli: Cli, tmp_path: Path, name: str) -> None:
    example, _, env = name.partition(".")
    proc = cli("plan", "all", str(EXAMPLES / f"{example}.yaml"), *(["--env", env] if env else []), "--out", "o")
    assert proc.returncode == 0, proc.stderr
    golden = HERE / "golden" / name
    for file in FILES:
        assert json.loads((tmp_path / "o" / file).read_text()) == json.loads((golden / file).read_text()), file
    assert (tmp_path / "o" / "stackflow.summary.md").read_text() == (golden / "stackflow.summary.md").read_text()


def test_dns_plan_has_the_reference_shape() -> None:
    plan = make_plans(load_stack(EXAMPLES / "vercel-www.yaml"), "dns", {})["dns"]
    assert plan["records"] == [{"name": "www", "type": "CNAME", "value": "cname.vercel-dns.com.", "proxied": False,
                                "target": "vercel-console"}]
    assert plan["global"] == {"domain": "svc.plus", "dns_provider": "cloudflare"}
    assert (plan["stack"], plan["env"]) == ("svc-plus", "")


def test_iac_and_deploy_plans_follow_the_targets() -> None:
    plans = make_plans(load_stack(EXAMPLES / "svc-plus.yaml", "dev"), "all", {})
    (module,) = plans["iac"]["modules"]
    assert module["target"] == "vhost-api" and module["outputs"] == ["endpoints.public_ipv4"]
    assert module["inputs"]["project"] == "svc-plus-dev"
    assert plans["iac"]["state"] == {"backend": "gcs", "workspace": "svc-plus-dev", "lock": True}
    modes = {a["target"]: (a["mode"], a["requires"]) for a in plans["deploy"]["actions"]}
    assert modes == {"vercel-console": ("domain-binding", ["dns"]), "vhost-api": ("playbook", ["dns", "iac"]),
                     "run-docs": ("repository_dispatch", ["dns"])}


def test_one_phase_writes_one_plan(cli: Cli, tmp_path: Path) -> None:
    proc = cli("plan", "dns", str(EXAMPLES / "svc-plus.yaml"), "--out", "o")
    assert proc.returncode == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["stackflow.dns-plan.json", "stackflow.summary.md"]


def test_unknown_phase_and_missing_env_exit_2(cli: Cli) -> None:
    bad = cli("plan", "network", str(EXAMPLES / "svc-plus.yaml"))
    assert bad.returncode == 2 and "unknown phase 'network'" in bad.stderr
    env = cli("plan", "dns", str(EXAMPLES / "svc-plus.yaml"), "--env", "prod")
    assert env.returncode == 2 and "env not found in global.environments: prod" in env.stderr


def test_digest_changes_with_stack_env_and_state() -> None:
    base = load_stack(EXAMPLES / "svc-plus.yaml")
    dev = load_stack(EXAMPLES / "svc-plus.yaml", "dev")
    d0 = plan_digest(base.stack, "", {})
    assert d0 == plan_digest(load_stack(EXAMPLES / "svc-plus.yaml").stack, "", {})
    assert d0 != plan_digest(dev.stack, "dev", {})
    assert d0 != plan_digest(base.stack, "", {"resources": {"dns": {"www": "x"}}})
    edited = base.stack.model_copy(deep=True)
    edited.targets[0].dns.records[0].ttl = 60
    assert d0 != plan_digest(edited, "", {})


def test_summary_is_appended_to_github_step_summary(cli: Cli, tmp_path: Path) -> None:
    summary = tmp_path / "step.md"
    summary.write_text("# earlier step\n")
    proc = cli("plan", "all", str(EXAMPLES / "svc-plus.yaml"), "--out", "o", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n## StackFlow plan: svc-plus")
    assert "| vercel-console | www | CNAME | cname.vercel-dns.com. |  | false |" in text
