"""worldtree's own config file: defaults, file discovery, merging."""

from __future__ import annotations

import pytest

from worldtree.errors import UsageError
from worldtree.ops.config import DEFAULTS, load_config, merge_config


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLDTREE_CONFIG", raising=False)
    assert load_config() == DEFAULTS
    assert load_config()["runners"]["large"] == {"cpu": "4", "memory": "16Gi"}


def test_file_merges_over_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLDTREE_CONFIG", raising=False)
    (tmp_path / "worldtree.yaml").write_text("runners:\n  xl: {cpu: '8', memory: 32Gi}\n"
                                            "languages:\n  node: {image: 'mirror/node:{version}'}\n")
    config = load_config()
    assert config["runners"]["xl"]["cpu"] == "8" and "large" in config["runners"]
    assert config["languages"]["node"]["image"] == "mirror/node:{version}"
    assert config["languages"]["node"]["command"] == ["node", "{script}"]


def test_env_var_and_explicit_path(tmp_path, monkeypatch):
    other = tmp_path / "other.yaml"
    other.write_text("docker: {init: false}\n")
    monkeypatch.setenv("WORLDTREE_CONFIG", str(other))
    assert load_config()["docker"]["init"] is False
    with pytest.raises(UsageError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    other.write_text("- a list\n")
    with pytest.raises(UsageError, match="must be a mapping"):
        load_config()


def test_merge_does_not_touch_inputs():
    base = {"a": {"b": 1}}
    merged = merge_config(base, {"a": {"c": 2}})
    assert merged == {"a": {"b": 1, "c": 2}} and base == {"a": {"b": 1}}
