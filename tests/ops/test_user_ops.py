"""Operations users add: a local ``ops/`` folder beside the playbook, and the
``worldtree.operations`` entry-point group (a distribution on PYTHONPATH, found by
importlib.metadata as an installed one would be). Both through ``worldtree apply``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OP = '''
from worldtree.ops.operation import Args, Operation, Planned


class StampArgs(Args):
    path: str


class Stamp(Operation):
    name = "{name}"
    args_model = StampArgs

    async def precheck(self, conn):
        state = await conn.stat(self.args.path)
        return (await conn.read(self.args.path)) if state.exists else None

    def plan(self, state):
        if state == b"{name}":
            return Planned("none", "already stamped")
        return Planned("change", f"stamp {{self.args.path}}")

    async def run(self, conn, state):
        await conn.write(self.args.path, b"{name}", 0o644)
        return state

    async def rollback(self, conn, record):
        await conn.remove(self.args.path)
'''


def apply(cwd: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(pythonpath)
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "apply", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_local_ops_folder_and_entry_point(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "stamp.py").write_text(OP.format(name="site.stamp"))
    plugin = tmp_path / "plugin"
    (plugin / "wt_plugin_ops-1.0.dist-info").mkdir(parents=True)
    (plugin / "wt_plugin_ops.py").write_text(OP.format(name="plugin.stamp"))
    (plugin / "wt_plugin_ops-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: wt-plugin-ops\nVersion: 1.0\n")
    (plugin / "wt_plugin_ops-1.0.dist-info" / "entry_points.txt").write_text(
        "[worldtree.operations]\nstamp = wt_plugin_ops:Stamp\n")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    (tmp_path / "play.yaml").write_text(
        f"hosts: local\ntasks:\n  - {{name: a, op: site.stamp, with: {{path: {a}}}}}\n"
        f"  - {{name: b, op: plugin.stamp, with: {{path: {b}}}}}\n")
    first = apply(tmp_path, "play.yaml", "--detailed-exitcode", pythonpath=plugin)
    assert first.returncode == 3, first.stdout + first.stderr
    assert f"change: stamp {a}" in first.stdout and f"change: stamp {b}" in first.stdout
    assert a.read_bytes() == b"site.stamp" and b.read_bytes() == b"plugin.stamp"
    second = apply(tmp_path, "play.yaml", "--detailed-exitcode", pythonpath=plugin)
    assert second.returncode == 0 and "No changes." in second.stdout, second.stdout + second.stderr
    # without the distribution the entry-point operation is an unknown one, located
    missing = apply(tmp_path, "play.yaml")
    assert missing.returncode == 2 and "play.yaml:4:19: error: unknown operation 'plugin.stamp'" in missing.stderr, \
        missing.stderr
    # a broken local file is an error at its own line, not a traceback
    (tmp_path / "ops" / "stamp.py").write_text("import nothing_here_zz\n")
    broken = apply(tmp_path, "play.yaml", pythonpath=plugin)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert broken.stderr.startswith(f"{tmp_path / 'ops' / 'stamp.py'}:1:1: error: cannot import this operations "
                                    "file: ModuleNotFoundError"), broken.stderr


def test_builtin_names_cannot_be_replaced(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "evil.py").write_text(OP.format(name="file.file"))
    (tmp_path / "play.yaml").write_text("hosts: local\ntasks:\n  - {name: a, op: command, with: {run: 'true'}}\n")
    proc = apply(tmp_path, "play.yaml")
    assert proc.returncode == 2
    assert "operation 'file.file' is built into worldtree; give yours another name" in proc.stderr, proc.stderr
