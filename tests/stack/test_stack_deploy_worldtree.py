"""The reference deploy plugin applies a vhost target through `worldtree apply` (a local playbook here):
first apply deploys, a second one changes nothing, plan --refine asks with --check."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow


def test_vhost_deploys_through_a_playbook_then_no_changes(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "www"
    site.mkdir()
    (tmp_path / "site.yaml").write_text(textwrap.dedent(f"""\
        name: site
        hosts: local
        tasks:
          - name: index
            op: file.file
            with: {{path: {site}/index.html, content: "hello {{{{ release }}}}\\n"}}
        vars: {{release: v1}}
        """))
    (tmp_path / "stack.yaml").write_text(textwrap.dedent("""\
        kind: StackFlow
        metadata: {name: web}
        global: {domain: example.com, dns_provider: none, cloud: gcp}
        targets:
          - id: web
            type: vhost
            domains: [www.example.com]
            deploy: {plugin: worldtree, playbook: site.yaml}
            observe: {blackbox: false}
        """))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    wrapper = plugins / "stackflow-plugin-deploy-worldtree"
    wrapper.write_text(f"#!{sys.executable}\nfrom worldtree.stack.deploy_worldtree import main\nmain()\n")
    wrapper.chmod(0o755)

    refined = cli("plan", "deploy", "stack.yaml", "--out", "p", "--refine")
    assert refined.returncode == 0, refined.stderr
    (entry,) = json.loads((tmp_path / "p" / "stackflow.deploy-changes.json").read_text())["plugins"]
    assert [c["resource"] for c in entry["changes"]] == ["web site.yaml"]
    assert not (site / "index.html").exists()  # --check changed nothing

    first = cli("apply", "deploy", "stack.yaml", "--plan", "p", "--approve")
    assert first.returncode == 0, first.stderr
    assert [c["resource"] for c in json.loads(first.stdout)["deploy"]["changes"]] == ["web site.yaml"]
    assert (site / "index.html").read_text() == "hello v1\n"

    assert cli("plan", "deploy", "stack.yaml", "--out", "p").returncode == 0
    second = cli("apply", "deploy", "stack.yaml", "--plan", "p", "--approve")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["deploy"]["changes"] == []

    (tmp_path / "site.yaml").write_text((tmp_path / "site.yaml").read_text().replace("nope", "x").replace(
        "op: file.file", "op: file.nonsense"))
    assert cli("plan", "deploy", "stack.yaml", "--out", "p").returncode == 0
    broken = cli("apply", "deploy", "stack.yaml", "--plan", "p", "--approve")
    assert broken.returncode == 1
    assert "unknown operation 'file.nonsense'" in broken.stderr
