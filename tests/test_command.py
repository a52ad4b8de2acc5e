"""One way to build a step's command (backends.command), and the load-time checks of `shell:`
and `engine:` (model.shell, model.engines) as the loader reports them."""

from __future__ import annotations

import os
import subprocess

import pytest

from command_cases import CASES, EXPECTED
from worldtree.backends.command import StepCommand, _which
from worldtree.compile.loader import load_pipeline_text
from worldtree.errors import SpecError
from worldtree.model.engines import check_engine, split_ssh_url
from worldtree.model.shell import check_shell

PATH = os.environ["PATH"]


def test_argv_adds_e_only_to_a_posix_shell_named_alone() -> None:
    assert StepCommand("sh", "x").argv() == ["sh", "-e", "-c", "x"]
    assert StepCommand("/bin/bash", "x").argv() == ["/bin/bash", "-e", "-c", "x"]
    assert StepCommand("bash -eo pipefail", "x").argv() == ["bash", "-eo", "pipefail", "-c", "x"]
    assert StepCommand("python3", "x").argv() == ["python3", "-c", "x"]
    assert StepCommand("", "x").argv() == ["sh", "-e", "-c", "x"]


def test_shell_line_is_the_same_argv_for_a_posix_shell() -> None:
    step = StepCommand("bash -eo pipefail", "echo 'a b' \"$X\"; false")
    assert subprocess.run(["sh", "-c", f"printf '%s\\n' {step.shell_line().replace('bash', '', 1)}"],
                          capture_output=True, text=True, check=True).stdout.splitlines() == step.argv()[1:]


def test_display_masks_each_word_before_quoting() -> None:
    class Masker:  # quoting the word first would split the secret: `'echo "p'"'"'w"'`
        def mask(self, text: str) -> str:
            return text.replace("p'w", "***")

    shown = StepCommand("sh", "echo \"p'w\"").display(Masker())
    assert shown == "sh -e -c 'echo \"***\"'"


def test_plain_commands_skip_the_shell_and_others_keep_it() -> None:
    assert StepCommand("sh", "true").direct_argv(PATH) == [_which("true", PATH)]
    assert StepCommand("sh", "make -j4 build").direct_argv(PATH) is not None
    for needs_shell in ("echo hi", "cd /tmp", "A=1 env", "ls *.py", "true\nfalse", "exit 3", "x && y",
                        "cat 'a b'", "echo $HOME", "./script.sh", "no-such-program-xyz"):
        assert StepCommand("sh", needs_shell).direct_argv(PATH) is None, needs_shell
    assert StepCommand("bash -eo pipefail", "true").direct_argv(PATH) is None
    assert StepCommand("python3", "true").direct_argv(PATH) is None


@pytest.mark.parametrize("command", ["ls -d /", "env -i A=1 env", "false", "sh -c exit\\ 3", "uname -s",
                                     "ls /no/such/dir", "seq 3", "expr 6 + 7", "expr 6 * 7"])
def test_direct_and_shell_agree(command: str) -> None:
    """Each command run both ways: without a shell (the fast path) and under ``sh -e -c``."""
    step = StepCommand("sh", command)
    direct = step.direct_argv(PATH)
    if command in ("sh -c exit\\ 3", "expr 6 * 7"):
        assert direct is None  # a backslash, a glob: only a shell knows what they mean
        return
    assert direct is not None and direct != step.argv()
    runs = [subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/")
            for argv in (direct, step.argv())]
    assert (runs[0].returncode, runs[0].stdout) == (runs[1].returncode, runs[1].stdout)
    assert bool(runs[0].stderr) == bool(runs[1].stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_host_runs_the_shared_cases_as_expected(case) -> None:  # type: ignore[no-untyped-def]
    """The cases docker and ssh are compared against (tests/docker, tests/ssh)."""
    proc = subprocess.run(StepCommand(case.shell, case.command).argv(), capture_output=True, text=True,
                          check=False, cwd="/", env={"PATH": PATH, **case.env})
    assert (proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines()) == EXPECTED[case.name]


def test_check_shell() -> None:
    assert check_shell("bash -eo pipefail") is None and check_shell("python3") is None
    assert "balance its quotes" in (check_shell("bash -c 'x") or "")


@pytest.mark.parametrize(("engine", "problem"), [
    ("ftp://host", "unknown engine scheme 'ftp://'"),
    ("podman", "unknown engine 'podman'"),
    ("ssh://", "no host name"),
    ("ssh://deploy@", "no host name"),
    ("ssh://host:abc", "port must be a number"),
    ("ssh://host:0", "port must be a number"),
    ("ssh://[::1", "unbalanced brackets"),
    ("ssh://::1]:22", "unbalanced brackets"),
    ("ssh://[::1]x", "only :port may follow"),
    ("ssh://host/path", "a path after the host"),
    ("ssh://host?colour=red", "unknown query parameter 'colour'"),
])
def test_bad_engines_are_named(engine: str, problem: str) -> None:
    assert problem in (check_engine(engine) or "")


@pytest.mark.parametrize("engine", ["host", "docker", "ssh://h", "ssh://u:${PW}@[::1]:${PORT}", "ssh://u:p@ss@h:22/",
                                    "idps://agent", "ssh://private_key:${K}@h?user=x&connect_timeout=3"])
def test_good_engines_pass(engine: str) -> None:
    assert check_engine(engine) is None


def test_password_with_at_and_brackets_stays_in_the_password() -> None:
    parts = split_ssh_url("ssh://u:p@[x]@host:22")
    assert (parts.host, parts.user, parts.password, parts.port) == ("host", "u", "p@[x]", "22")


def test_loader_reports_engines_and_shells_at_their_line() -> None:
    text = """\
engine: ssh://[::1
jobs:
  j:
    shell: "bash -c 'x"
    steps:
      - {name: a, command: "true", engine: "ftp://host"}
      - {name: b, command: "true", engine: "ssh://host:abc"}
      - {name: c, command: "true"}
"""
    with pytest.raises(SpecError) as caught:
        load_pipeline_text(text, "p.yaml")
    found = {(d.line, d.code) for d in caught.value.diagnostics}
    assert found == {(1, "engine"), (4, "shell"), (6, "engine"), (7, "engine")}


def test_every_engine_kind_has_a_backend_or_a_reason() -> None:
    from worldtree.backends.registry import BACKENDS, NOT_YET
    from worldtree.model.engines import KINDS

    assert set(BACKENDS) | set(NOT_YET) == set(KINDS)
