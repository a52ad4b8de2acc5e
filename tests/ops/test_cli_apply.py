"""``worldtree apply`` as a user runs it: plan output, detailed exit codes, located errors, nothing changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops_cases import CASES, setup_all, write_playbook
from ops_helpers import tree

ALL = list(CASES)


def wt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "apply", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_detailed_exit_codes_check_apply_and_second_apply(tmp_path: Path) -> None:
    root = tmp_path / "root"
    setup_all(root, ALL)
    write_playbook(tmp_path, ALL, root=root)
    before = tree(root)
    check = wt(tmp_path, "playbook.yaml", "--check", "--diff", "--detailed-exitcode")
    assert check.returncode == 3, check.stderr
    assert "-cache=off\n    +cache=on" in check.stdout and "change: remove file" in check.stdout
    assert "Plan: 8 to change" in check.stdout and tree(root) == before
    first = wt(tmp_path, "playbook.yaml", "--detailed-exitcode")
    assert first.returncode == 3 and "Apply: 8 changed, 0 unchanged, 0 failed" in first.stdout
    second = wt(tmp_path, "playbook.yaml", "--detailed-exitcode")
    assert second.returncode == 0 and "Plan: 0 to change, 0 unknown until run, 8 unchanged" in second.stdout
    assert "No changes." in second.stdout
    assert wt(tmp_path, "playbook.yaml", "--check", "--detailed-exitcode").returncode == 0
    assert wt(tmp_path, "playbook.yaml").returncode == 0  # without the flag: 0 whether or not it changed


def test_missing_template_variable_fails_at_its_line_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    setup_all(root, ALL)
    book = write_playbook(tmp_path, ALL, root=root)
    (tmp_path / "templates" / "app.conf.j2").write_text("a={{ port }}\n\nb={{ nope }}\n")
    before = tree(root)
    proc = wt(tmp_path, str(book))
    assert proc.returncode == 2
    assert proc.stderr.startswith("templates/app.conf.j2:3:1: error: 'nope' is undefined"), proc.stderr
    assert "Traceback" not in proc.stderr and tree(root) == before


def test_input_errors_are_located_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "p.yaml").write_text(
        "hosts: local\ntasks:\n  - name: a\n    op: file.directroy\n    with: {path: /tmp/x}\n"
        "  - name: b\n    op: file.file\n    with: {path: relative, content: x, colour: red}\n"
        "  - name: c\n    op: command\n    with: {run: \"{{ undefined_thing }}\"}\n    needs: [zz]\n")
    proc = wt(tmp_path, "p.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == ("p.yaml:4:9: error: unknown operation 'file.directroy'; did you mean "
                        "'file.directory'?"), lines
    assert any(line.startswith("p.yaml:12:13: error: needs unknown task 'zz'") for line in lines), lines
    assert not list(root.iterdir())
    (tmp_path / "p.yaml").write_text(
        "hosts: local\ntasks:\n  - name: b\n    op: file.file\n    with: {path: relative, content: x, colour: red}\n"
        "  - name: c\n    op: command\n    with: {run: \"{{ undefined_thing }}\"}\n")
    lines = wt(tmp_path, "p.yaml").stderr.splitlines()
    assert "p.yaml:5:18: error: task 'b' on local: 'relative' is not an absolute path; write the full path on " \
        "the host" in lines, lines
    assert any("p.yaml:5:" in line and "unknown argument 'colour'" in line for line in lines), lines
    assert any(line.startswith("p.yaml:8:17: error: 'undefined_thing' is undefined") for line in lines), lines


def test_a_failed_task_exits_1_and_names_the_host(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("hosts: local\ntasks:\n  - name: boom\n    op: command\n"
                                     "    with: {run: \"echo bad >&2; exit 4\"}\n")
    proc = wt(tmp_path, "p.yaml", "--detailed-exitcode")
    assert proc.returncode == 1 and "local  boom  FAILED: `echo bad >&2; exit 4` exited 4: bad" in proc.stdout
    assert wt(tmp_path, "p.yaml", "--on-failure", "sideways").returncode == 2


def test_unreachable_host_is_an_error_before_any_change(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("hosts:\n  dead: {address: 127.0.0.1, port: 1}\n")
    (tmp_path / "p.yaml").write_text("hosts: [dead]\ntasks:\n  - name: a\n    op: command\n"
                                     "    with: {run: \"true\"}\n")
    proc = wt(tmp_path, "p.yaml", "-i", "inv.yaml")
    assert proc.returncode == 2 and proc.stderr.startswith("p.yaml:1:8: error: ssh dead: connection refused"), \
        proc.stderr
    (tmp_path / "p.yaml").write_text("tasks: []\nhosts: [deda]\n")
    proc = wt(tmp_path, "p.yaml", "-i", "inv.yaml")
    assert proc.returncode == 2 and proc.stderr.startswith("p.yaml:2:8: error: 'deda' is neither"), proc.stderr
    assert "did you mean 'dead'?" in proc.stderr


def test_secrets_in_with_are_substituted_and_masked_everywhere(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "s.env").write_text("DB_PASSWORD=hunter2-very-secret\n")
    (tmp_path / "p.yaml").write_text(
        f"hosts: local\ntasks:\n"
        f"  - name: conf\n    op: file.file\n    with: {{path: {root}/db.conf, content: \"pw=${{DB_PASSWORD}}\\n\"}}\n"
        f"  - name: use\n    op: command\n    with: {{run: \"echo $${{HOME}} ${{DB_PASSWORD}} >&2; exit 5\"}}\n")
    proc = wt(tmp_path, "p.yaml", "--diff", "--secrets-file", "s.env")
    assert proc.returncode == 1
    assert (root / "db.conf").read_text() == "pw=hunter2-very-secret\n"  # the host gets the value
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "+pw=***" in proc.stdout and "run `echo ${HOME} *** >&2; exit 5`" in proc.stdout, proc.stdout
    assert f"exited 5: {Path.home()} ***" in proc.stdout  # $${HOME} reached the shell as ${HOME}
    unset = wt(tmp_path, "p.yaml")
    assert unset.returncode == 2 and "p.yaml:5:11: error: task 'conf' uses ${DB_PASSWORD}, which is not set" \
        in unset.stderr, unset.stderr
