"""``use:`` modules: a folder of tasks, defaults and templates, parameterised by ``with:``."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_helpers import run_playbook

from worldtree.errors import SpecError
from worldtree.ops.playbook import load_playbook


def _module(folder: Path) -> None:
    (folder / "modules" / "web" / "templates").mkdir(parents=True)
    (folder / "modules" / "web" / "defaults.yaml").write_text("server_name: default.example\nworkers: 2\n")
    (folder / "modules" / "web" / "templates" / "site.j2").write_text(
        "server_name {{ server_name }};\nworkers {{ workers }};\n")
    (folder / "modules" / "web" / "tasks.yaml").write_text(
        "- name: dir\n  op: file.directory\n  with: {path: \"{{ root }}/web\"}\n"
        "- name: site\n  op: file.template\n  with: {src: templates/site.j2, dest: \"{{ root }}/web/site.conf\"}\n"
        "  needs: [dir]\n")


async def test_a_module_expands_to_its_tasks_with_parameters_over_defaults(tmp_path: Path) -> None:
    _module(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "p.yaml").write_text(f"hosts: local\nvars: {{root: {root}}}\ntasks:\n"
                                     "  - use: modules/web\n    with: {server_name: example.org}\n")
    book = load_playbook(tmp_path / "p.yaml")
    assert [t.name for t in book.tasks] == ["web/dir", "web/site"] and book.tasks[1].needs == ["web/dir"]
    plan, outcome = await run_playbook(tmp_path / "p.yaml")
    assert outcome is not None and outcome.changed == 2
    assert (root / "web" / "site.conf").read_text() == "server_name example.org;\nworkers 2;\n"
    plan, outcome = await run_playbook(tmp_path / "p.yaml")
    assert plan.count("none") == 2


def test_a_module_error_is_located_in_the_module(tmp_path: Path) -> None:
    _module(tmp_path)
    (tmp_path / "modules" / "web" / "tasks.yaml").write_text("- name: x\n  op: file.nope\n")
    (tmp_path / "p.yaml").write_text("hosts: local\ntasks:\n  - use: modules/web\n  - use: modules/missing\n")
    with pytest.raises(SpecError) as info:
        load_playbook(tmp_path / "p.yaml")
    shown = [d.render() for d in info.value.diagnostics]
    assert any("modules/web/tasks.yaml:2:7: error: unknown operation 'file.nope'" in s for s in shown), shown
    assert any("p.yaml:4:10: error: module 'modules/missing': no" in s for s in shown), shown
