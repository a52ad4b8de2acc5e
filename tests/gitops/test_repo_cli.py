"""``worldtree repo add|list|remove`` on the store, secrets from named environment variables only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "repo", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_repo_add_list_remove_keeps_secrets_encrypted(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    secrets = {"HOOK_SECRET": "hook-value-1234", "STATUS_TOKEN": "ghp_status-value-5678"}
    added = _cli("add", "acme/app", "--provider", "github", "--clone-url", "https://github.com/acme/app.git",
                 "--webhook-secret-env", "HOOK_SECRET", "--status-token-env", "STATUS_TOKEN",
                 "--api-url", "https://ghe.example/api/v3", "--ci-file", ".ci/pipeline.yaml", "--data-dir", data,
                 env=secrets)
    assert added.returncode == 0, added.stderr
    assert "registered acme/app" in added.stderr
    listed = _cli("list", "--json", "--data-dir", data)
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert item["api_url"] == "https://ghe.example/api/v3" and item["ci_file"] == ".ci/pipeline.yaml"
    assert item["status_token"] is True
    everything = added.stdout + added.stderr + listed.stdout + listed.stderr
    engine = create_engine(f"sqlite:///{data}/worldtree.db")
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM git_repositories")) for v in row)
    engine.dispose()
    for value in secrets.values():
        assert value not in everything and value not in stored  # encrypted at rest, never printed
    assert (Path(data) / "secret.key").stat().st_mode & 0o777 == 0o600

    dup = _cli("add", "acme/app", "--provider", "github", "--clone-url", "x", "--webhook-secret-env", "HOOK_SECRET",
               "--data-dir", data, env=secrets)
    assert dup.returncode != 0 and "already registered" in dup.stderr and "Traceback" not in dup.stderr
    missing = _cli("add", "acme/other", "--provider", "github", "--clone-url", "x", "--webhook-secret-env", "NOPE",
                   "--data-dir", data)
    assert missing.returncode == 2 and "NOPE" in missing.stderr
    leaky = _cli("add", "acme/other", "--provider", "github", "--clone-url", "https://bot:ghp_abc@github.com/a/b.git",
                 "--webhook-secret-env", "HOOK_SECRET", "--data-dir", data, env=secrets)
    assert leaky.returncode == 2 and "deploy key" in leaky.stderr and "ghp_abc" not in leaky.stderr
    bad = _cli("add", "acme/other", "--provider", "svn", "--clone-url", "x", "--webhook-secret-env", "HOOK_SECRET",
               "--data-dir", data, env=secrets)
    assert bad.returncode == 2 and "github, gitlab, gitea" in bad.stderr

    removed = _cli("remove", "acme/app", "--data-dir", data)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(_cli("list", "--json", "--data-dir", data).stdout) == []
    assert _cli("remove", "acme/app", "--data-dir", data).returncode == 2
