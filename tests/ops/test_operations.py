"""Every operation end to end on this machine: changed, then no change; check; rollback; plans."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from ops_cases import BLOB, CASES, setup_all, write_playbook
from ops_helpers import run_playbook, tree

from worldtree.ops.connection import PathState
from worldtree.ops.files import Before, FileDirectory, FileLine
from worldtree.ops.operation import OpContext, Operation

ALL = list(CASES)


@pytest.mark.parametrize("case", ALL)
async def test_each_operation_changes_then_reports_no_change(tmp_path: Path, case: str) -> None:
    root = tmp_path / "root"
    setup_all(root, [case])
    book = write_playbook(tmp_path, [case], root=root)
    plan, outcome = await run_playbook(book)
    assert [s.planned.kind for s in plan.steps() if s.planned] == ["change"]
    assert outcome is not None and (outcome.changed, outcome.failed) == (1, 0)
    first = tree(root)
    plan, outcome = await run_playbook(book)
    step = plan.steps()[0]
    assert step.planned is not None and step.planned.kind == "none", step.planned
    assert outcome is not None and (outcome.changed, outcome.ok) == (0, 1)
    assert tree(root) == first


async def test_operations_leave_what_they_say(tmp_path: Path) -> None:
    root = tmp_path / "root"
    setup_all(root, ALL)
    _, outcome = await run_playbook(write_playbook(tmp_path, ALL, root=root))
    assert outcome is not None and outcome.changed == len(ALL)
    assert (root / "d" / "e").is_dir() and (root / "d" / "e").stat().st_mode & 0o777 == 0o750
    assert (root / "f.txt").read_text() == "hi\n" and (root / "f.txt").stat().st_mode & 0o777 == 0o600
    assert (root / "blob.bin").read_bytes() == BLOB
    assert (root / "app.conf").read_text() == f"# demo\nport=8080\nos={os.uname().sysname}\n"
    assert (root / "app.conf").stat().st_mode & 0o777 == 0o644
    assert (root / "features").read_text() == "a=1\ncache=on\nz=9\n"
    assert (root / "features").stat().st_mode & 0o777 == 0o640  # a line edit keeps the mode
    assert not (root / "victim").exists()
    assert os.readlink(root / "current") == str(root / "d")
    assert (root / "ran").read_text() == "ran\n"
    assert not [p for p in root.rglob(".*wt-*")]  # no temporary file left behind


async def test_check_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    setup_all(root, ALL)
    before = tree(root)
    plan, outcome = await run_playbook(write_playbook(tmp_path, ALL, root=root), check=True)
    assert outcome is None and plan.count("change") == len(ALL)
    assert tree(root) == before


async def test_rollback_restores_the_tree_byte_for_byte(tmp_path: Path) -> None:
    root = tmp_path / "root"
    setup_all(root, ALL)
    before = tree(root)
    assert before  # the cases start from real files, a link and modes
    fail = "  - name: boom\n    op: command\n    with: {run: \"echo no >&2; exit 7\"}\n"
    plan, outcome = await run_playbook(write_playbook(tmp_path, ALL, root=root, extra_tasks=fail),
                                       on_failure="rollback")
    assert outcome is not None and outcome.failed == 1, outcome
    assert [s.rollback for s in plan.steps() if s.rollback != "rolled back" and s.rollback] == []
    boom = plan.steps()[-1]
    assert boom.error is not None and "exited 7" in boom.error and "no" in boom.error
    assert tree(root) == before


async def test_stop_skips_the_rest_and_continue_runs_what_does_not_need_the_failure(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tasks = ("  - name: boom\n    op: command\n    with: {run: \"exit 1\"}\n"
             "  - name: after\n    op: file.file\n    with: {path: \"{{ root }}/after\", content: x}\n"
             "    needs: [boom]\n"
             "  - name: independent\n    op: file.file\n    with: {path: \"{{ root }}/indep\", content: x}\n")
    book = write_playbook(tmp_path, [], root=root, extra_tasks=tasks)
    plan, outcome = await run_playbook(book, on_failure="stop")
    assert outcome is not None and [s.status for s in plan.steps()] == ["failed", "skipped", "skipped"]
    assert not (root / "indep").exists()
    plan, outcome = await run_playbook(book, on_failure="continue")
    assert [s.status for s in plan.steps()] == ["failed", "skipped", "changed"]
    assert (root / "indep").exists() and not (root / "after").exists()


async def test_a_path_changed_by_an_earlier_task_is_unknown_until_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tasks = ("  - name: write\n    op: file.file\n    with: {path: \"{{ root }}/x\", content: \"a=1\\n\"}\n"
             "  - name: edit\n    op: file.line\n    with: {path: \"{{ root }}/x\", line: a=2, match: \"^a=\"}\n")
    plan, outcome = await run_playbook(write_playbook(tmp_path, [], root=root, extra_tasks=tasks))
    kinds = [s.planned.kind for s in plan.steps() if s.planned]
    assert kinds[0] == "change" and kinds[1] == "unknown"
    assert outcome is not None and outcome.changed == 2 and (root / "x").read_text() == "a=2\n"


async def test_handlers_run_once_per_host_when_notified(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tasks = ("  - name: one\n    op: file.file\n    with: {path: \"{{ root }}/1\", content: x}\n    notify: [h]\n"
             "  - name: two\n    op: file.file\n    with: {path: \"{{ root }}/2\", content: x}\n    notify: [h]\n"
             "handlers:\n  - name: h\n    op: command\n    with: {run: \"echo x >> {{ root }}/log\"}\n")
    book = write_playbook(tmp_path, [], root=root, extra_tasks=tasks)
    await run_playbook(book)
    await run_playbook(book)  # nothing changed: the handler is not notified
    assert (root / "log").read_text() == "x\n"


def _line_op(match: str | None) -> FileLine:
    args = FileLine.args_model.model_validate({"path": "/etc/f", "line": "k=v", "match": match})
    return FileLine(args, OpContext(Path(".")))


@pytest.mark.parametrize(("before", "match", "kind", "after"), [
    (b"a\nk=1\n", "^k=", "change", b"a\nk=v\n"),
    (b"k=v\n", "^k=", "none", b"k=v\n"),
    (b"a", None, "change", b"a\nk=v\n"),
    (b"k=v\nb\n", None, "none", b"k=v\nb\n"),
    (b"k=1\nk=2\n", "^k=", "change", b"k=1\nk=v\n"),
])
def test_line_plans_from_facts(before: bytes, match: str | None, kind: str, after: bytes) -> None:
    op = _line_op(match)
    planned = op.plan(Before(PathState("file", 0o644, len(before)), before))
    assert planned.kind == kind
    assert op.edit(before) == after


def test_directory_plans_from_facts() -> None:
    op = FileDirectory(FileDirectory.args_model.model_validate({"path": "/srv/x", "mode": "0700"}),
                       OpContext(Path(".")))
    assert op.plan(PathState("absent")).render() == "change: create directory /srv/x (mode 0700)"
    assert op.plan(PathState("dir", 0o755)).render() == "change: chmod /srv/x 0755 -> 0700"
    assert op.plan(PathState("dir", 0o700)).kind == "none"
    with pytest.raises(Exception, match="is a file, not a directory"):
        op.plan(PathState("file", 0o644))


async def test_a_flooding_command_keeps_a_bounded_part_of_its_output(tmp_path: Path) -> None:
    from worldtree.ops.command import sh
    from worldtree.ops.connection import OUTPUT_LIMIT, LocalConnection

    result = await LocalConnection().run(sh("head -c 5000000 /dev/zero; echo done >&2; exit 3"), timeout=30)
    assert (result.exit_status, len(result.stdout), result.stderr) == (3, OUTPUT_LIMIT, "done\n")
    started = time.monotonic()
    slow = await LocalConnection().run(sh("sleep 5; echo late"), timeout=0.2)
    assert slow.exit_status == 124 and "timed out" in slow.stderr
    assert time.monotonic() - started < 2  # the shell's child is killed too


def _op(cls: type[Operation], **args: object) -> Operation:
    return cls(cls.args_model.model_validate(args), OpContext(Path(".")))


def test_file_absent_link_and_command_plan_from_facts() -> None:
    from worldtree.ops.commands import Command, Guard
    from worldtree.ops.files import FileAbsent, FileFile, FileLink

    absent = _op(FileAbsent, path="/x")
    assert isinstance(absent, FileAbsent)
    assert absent.plan(Before(PathState("absent"))).render() == "no change: /x does not exist"
    assert absent.plan(Before(PathState("file", 0o644, 3), b"abc")).render() == "change: remove file /x (3 bytes)"
    assert absent.plan(Before(PathState("dir", 0o755))).render() == \
        "change: remove directory tree /x; rollback: unavailable"
    link = _op(FileLink, path="/l", target="/t")
    assert isinstance(link, FileLink)
    assert link.plan(Before(PathState("link", 0o777, None, "/t"))).kind == "none"
    assert link.plan(Before(PathState("link", 0o777, None, "/old"))).render() == "change: retarget /l: /old -> /t"
    file = _op(FileFile, path="/f", content="new\n", mode="0600")
    assert isinstance(file, FileFile)
    planned = file.plan(Before(PathState("file", 0o644, 4), b"old\n"))
    assert planned.kind == "change" and "mode 0644 -> 0600" in planned.text
    assert planned.diff is not None and "-old\n+new\n" in planned.diff
    command = _op(Command, run="make", creates="/done")
    assert isinstance(command, Command)
    assert command.plan(Guard("/done exists")).render() == "no change: /done exists"
    assert command.plan(Guard(None)).render() == "change: run `make`; rollback: unavailable"
