"""service.* operations.

This machine has ``systemctl`` but no systemd as PID 1: the "no systemd" error path is tested
for real. The plan and the commands are tested against a fake ``systemctl`` script put first on
the PATH the operations' shell sees: a real subprocess that keeps unit states in files and
records every call (what it cannot do is start a real unit).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import run_playbook

FAKE = r"""#!/bin/sh
# fake systemctl: unit states in $FAKE_SYSTEMD/<unit>.{active,enabled}; calls appended to calls.log
d="$FAKE_SYSTEMD"
echo "$*" >> "$d/calls.log"
case "$1" in
  is-system-running) echo running; exit 0;;
  show)
    unit="$4"
    if [ ! -f "$d/$unit.active" ]; then echo "LoadState=not-found"; echo "ActiveState=inactive"; exit 0; fi
    echo "LoadState=loaded"; echo "ActiveState=$(cat "$d/$unit.active")"
    echo "UnitFileState=$(cat "$d/$unit.enabled")"; exit 0;;
  start|restart) echo active > "$d/$3.active";;
  stop) echo inactive > "$d/$3.active";;
  enable) echo enabled > "$d/$3.enabled";;
  disable) echo disabled > "$d/$3.enabled";;
  *) echo "fake systemctl: $1?" >&2; exit 1;;
esac
"""


@pytest.fixture
def fake_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "systemd"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "systemctl").write_text(FAKE)
    (bin_dir / "systemctl").chmod(0o755)
    (state / "app.active").write_text("inactive\n")
    (state / "app.enabled").write_text("disabled\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SYSTEMD", str(state))
    return state


def book(tmp_path: Path, tasks: str) -> Path:
    path = tmp_path / "play.yaml"
    path.write_text("hosts: local\ntasks:\n" + tasks)
    return path


def calls(state: Path) -> list[str]:
    return [c for c in (state / "calls.log").read_text().splitlines() if not c.startswith(("is-system", "show"))]


async def test_started_and_enabled_change_then_no_change_then_rollback(tmp_path: Path, fake_systemd: Path) -> None:
    path = book(tmp_path, "  - {name: up, op: service.started, with: {name: app}}\n"
                          "  - {name: boot, op: service.enabled, with: {name: app}}\n")
    plan, outcome = await run_playbook(path, check=True)
    assert [s.planned.render() for s in plan.steps() if s.planned] == [
        "change: systemctl start app (now inactive)", "change: systemctl enable app (now disabled)"]
    assert outcome is None and calls(fake_systemd) == []  # --check ran nothing that changes
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 2
    assert calls(fake_systemd) == ["start -- app", "enable -- app"]
    plan, outcome = await run_playbook(path)
    assert outcome is not None and (outcome.changed, outcome.ok) == (0, 2)
    assert [s.applied.render() for s in plan.steps() if s.applied] == ["no change: app is active",
                                                                       "no change: app is enabled"]
    # rollback: stop and disable again after a later failure
    (fake_systemd / "app.active").write_text("inactive\n")
    (fake_systemd / "app.enabled").write_text("disabled\n")
    (fake_systemd / "calls.log").unlink()
    failing = book(tmp_path, "  - {name: up, op: service.started, with: {name: app}}\n"
                             "  - {name: boot, op: service.enabled, with: {name: app}}\n"
                             "  - {name: boom, op: command, with: {run: 'false'}}\n")
    plan, outcome = await run_playbook(failing, on_failure="rollback")
    assert outcome is not None and outcome.failed == 1 and outcome.rolled_back == 2
    assert calls(fake_systemd) == ["start -- app", "enable -- app", "disable -- app", "stop -- app"]
    assert (fake_systemd / "app.active").read_text() == "inactive\n"


async def test_stopped_restarted_and_unknown_unit(tmp_path: Path, fake_systemd: Path) -> None:
    (fake_systemd / "app.active").write_text("active\n")
    path = book(tmp_path, "  - {name: down, op: service.stopped, with: {name: app}}\n"
                          "  - {name: bounce, op: service.restarted, with: {name: app}}\n")
    plan, _ = await run_playbook(path)
    rendered = [s.planned.render() for s in plan.steps() if s.planned]
    assert rendered == ["change: systemctl stop app (now active)",
                        "change: systemctl restart app (now active); rollback: unavailable"]
    assert calls(fake_systemd) == ["stop -- app", "restart -- app"]
    from worldtree.errors import SpecError

    with pytest.raises(SpecError) as info:
        await run_playbook(book(tmp_path, "  - {name: x, op: service.started, with: {name: nosuch}}\n"))
    assert "service.started: unit nosuch not found on local; install its package first" in str(info.value)


def test_no_systemd_is_a_clear_error_before_any_change(tmp_path: Path) -> None:
    """The real systemctl of this machine (systemd is not PID 1 here): exit 2 at planning, nothing run."""
    if Path("/run/systemd/system").exists():
        pytest.skip("this machine runs systemd; the no-systemd path needs one that does not")
    marker = tmp_path / "marker"
    path = book(tmp_path, f"  - {{name: m, op: file.file, with: {{path: {marker}, content: x}}}}\n"
                          "  - {name: up, op: service.started, with: {name: ssh}}\n")
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "apply", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "service.started: local is not run by systemd (systemctl says 'offline'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not marker.exists()
