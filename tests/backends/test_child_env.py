"""Host steps never see worldtree's own variables; "allowlist" passes only a login's basics."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldtree.backends import child_env
from worldtree.backends.base import RunContext, StepRequest
from worldtree.backends.host import HostBackend
from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.testing import run_pipeline_text

SECRET_STORE = "postgresql+psycopg://wt:hunter2@db/wt"


def test_policy() -> None:
    env = {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "WORLDTREE_STORE": SECRET_STORE,
           "WORLDTREE_RUN_ID": "outer", "AWS_SECRET_ACCESS_KEY": "k", "TERM": "xterm"}
    assert child_env.inherited(env, "all") == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C",
                                               "AWS_SECRET_ACCESS_KEY": "k", "TERM": "xterm"}
    assert child_env.inherited(env, "allowlist") == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "TERM": "xterm"}


def test_host_steps_do_not_inherit_worldtree_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDTREE_STORE", SECRET_STORE)
    monkeypatch.setenv("WORLDTREE_CONFIG", "/etc/wt.yaml")
    monkeypatch.setenv("SOME_USER_VAR", "kept")
    state, rec = run_pipeline_text("jobs:\n  j: {steps: [{run: env}]}", workdir=str(tmp_path))
    env = dict(line.split("=", 1) for line in rec.output("j/step-1") if "=" in line)
    assert SECRET_STORE not in "\n".join(rec.output()), state
    assert "WORLDTREE_STORE" not in env and "WORLDTREE_CONFIG" not in env
    assert env["SOME_USER_VAR"] == "kept"
    assert env["WORLDTREE_NODE"] == "j/step-1" and env["WORLDTREE_ATTEMPT"] == "1" and env["WORLDTREE_RUN_ID"]


async def test_allowlist_passes_only_basics_and_the_request(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOME_USER_VAR", "dropped")
    monkeypatch.setenv("LC_TIME", "C")
    graph = compile_pipeline(load_pipeline_text("jobs:\n  j: {steps: [{run: env}]}").spec)
    backend = HostBackend(RunContext(run_id="r", attempt=1, workdir=str(tmp_path), graph=graph,
                                     inherit_env="allowlist"))
    lines: list[str] = []
    try:
        code = await backend.execute(StepRequest(node=graph.nodes[0], command="env", env={"DECLARED": "yes"},
                                                 workdir=str(tmp_path)), lambda _s, line: lines.append(line))
    finally:
        await backend.close()
    assert code == 0
    names = {line.split("=", 1)[0] for line in lines}
    assert "DECLARED" in names and "LC_TIME" in names and "PATH" in names
    assert "SOME_USER_VAR" not in names
    assert names <= child_env.ALLOWLIST | {"DECLARED", "LC_TIME", "PWD", "SHLVL", "_", "OLDPWD"}, names
