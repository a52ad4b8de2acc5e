"""The text a step runs remotely (pure), and that a POSIX shell evaluates it as intended."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

from worldtree.backends.ssh.remote import CHANNEL_COMMAND, build_script, kill_command, parse_pid


def _run_locally(script: str) -> subprocess.CompletedProcess[str]:
    # what sshd does: the login shell runs CHANNEL_COMMAND with the script on stdin
    return subprocess.run(["sh", "-c", CHANNEL_COMMAND], input=script, capture_output=True, text=True,
                          check=False)


def test_environment_is_quoted_and_not_on_the_command_line() -> None:
    env = {"A": "it's \"q\" $HOME `x` \\", "B": "line1\nline2", "bad-name": "skipped"}
    script = build_script('printf "%s|%s\\n" "$A" "$B"', env, run_workdir="/")
    assert "it's" not in CHANNEL_COMMAND
    result = _run_locally(script)
    lines = result.stdout.splitlines()
    assert parse_pid(lines[0]) is not None
    assert lines[1:] == ["it's \"q\" $HOME `x` \\|line1", "line2"]


def test_exit_code_and_shell() -> None:
    assert _run_locally(build_script("exit 7", {}, run_workdir="/")).returncode == 7
    stopped = _run_locally(build_script("false\necho after", {}, run_workdir="/"))
    assert stopped.returncode == 1 and "after" not in stopped.stdout  # sh -e, as on the host
    out = _run_locally(build_script("echo $0", {}, shell="bash", run_workdir="/")).stdout
    assert out.splitlines()[1] == "bash"


def test_workdir_rules(tmp_path) -> None:
    missing = tmp_path / "nope"
    out = _run_locally(build_script("pwd", {"HOME": str(tmp_path)}, run_workdir=str(missing))).stdout
    assert out.splitlines()[1] == str(tmp_path)  # run dir absent remotely: home
    made = tmp_path / "a b" / "c"
    out = _run_locally(build_script("pwd", {}, node_workdir=str(made))).stdout
    assert out.splitlines()[1] == str(made) and made.is_dir()


def test_parse_pid_and_kill_command() -> None:
    assert parse_pid("WORLDTREE-PID:123") == 123
    assert parse_pid("WORLDTREE-PID:x") is None and parse_pid("hello") is None
    cmd = kill_command(42, 2.0)
    assert "kill -TERM -$p" in cmd and "kill -KILL -$p" in cmd and "-ge 20" in cmd


def _group(script: str) -> subprocess.Popen[bytes]:
    """A process group like sshd makes for a step: the leader's PID is the group id. A thread
    reaps the leader as sshd would (a zombie would still count as alive)."""
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    threading.Thread(target=proc.wait, daemon=True).start()
    time.sleep(0.2)  # let it set its traps and start its child
    return proc


def test_kill_command_terms_the_group_and_returns_when_it_is_gone() -> None:
    proc = _group("sleep 30 & wait")
    started = time.monotonic()
    subprocess.run(["sh", "-c", kill_command(proc.pid, 5.0)], check=True, timeout=10)
    assert time.monotonic() - started < 2.0  # did not sit out the grace period
    assert proc.wait(timeout=2) == -signal.SIGTERM


def test_kill_command_kills_a_group_that_ignores_term_after_the_grace() -> None:
    proc = _group("trap '' TERM; sleep 30 & wait")  # sleep inherits the ignored TERM
    started = time.monotonic()
    subprocess.run(["sh", "-c", kill_command(proc.pid, 0.5)], check=True, timeout=10)
    assert time.monotonic() - started >= 0.45
    assert proc.wait(timeout=2) == -signal.SIGKILL
