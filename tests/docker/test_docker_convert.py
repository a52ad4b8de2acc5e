"""StepRequest -> container create body, without a daemon."""

from __future__ import annotations

import json

import pytest
from docker_support import BUSYBOX, make_ctx, make_node, request

from worldtree.backends.docker.convert import (
    RunFacts,
    container_env,
    container_name,
    parse_cpu,
    parse_memory,
    plugin_settings_env,
    registry_auth,
    runner_resources,
    service_env,
    step_container,
)
from worldtree.errors import BackendError
from worldtree.model.graph import Target
from worldtree.model.refs import expand
from worldtree.ops.config import DEFAULTS


def facts(**kw):
    base = {"run_id": "r1", "workdir": "/runs/r1", "config": DEFAULTS}
    return RunFacts(**{**base, **kw})


def plan_for(node, env=None, workdir=None, **kw):
    ctx = make_ctx("/runs/r1", [node])  # type: ignore[arg-type]
    req = request(node, ctx, env=env, workdir=workdir or "/runs/r1")
    return step_container(req, facts(**kw), name="n")


def test_shell_command_workspace_and_labels():
    plan = plan_for(make_node(command="echo hi", shell="bash"), workdir="/runs/r1/sub")
    body = plan.body
    assert plan.image == BUSYBOX
    assert body["Entrypoint"] == ["bash"] and body["Cmd"] == ["-e", "-c", "echo hi"]
    assert body["WorkingDir"] == "/runs/r1/sub"
    assert body["HostConfig"]["Binds"] == ["/runs/r1:/runs/r1"]
    assert body["Labels"]["worldtree.run_id"] == "r1" and body["Labels"]["worldtree.node"] == "job/step"
    assert "NetworkMode" not in body["HostConfig"]


def test_workdir_outside_the_run_is_mounted_too():
    plan = plan_for(make_node(), workdir="/srv/app")
    assert plan.body["HostConfig"]["Binds"] == ["/runs/r1:/runs/r1", "/srv/app:/srv/app"]


def test_env_is_the_pipelines_only_plus_allowed_host_vars():
    host = {"HOME": "/root", "CI_TOKEN": "t", "CI_USER": "u", "PATH": "/bin"}
    assert container_env({"A": "1"}, facts(host_env=host)) == {"A": "1", "WORLDTREE_RUN_ID": "r1"}
    allowed = container_env({"A": "1", "CI_USER": "mine"}, facts(host_env=host, allow_env=["CI_*"]))
    assert allowed == {"CI_TOKEN": "t", "CI_USER": "mine", "A": "1", "WORLDTREE_RUN_ID": "r1"}
    everything = container_env({}, facts(host_env=host, allow_all_env=True))
    assert everything["HOME"] == "/root" and everything["WORLDTREE_RUN_ID"] == "r1"
    assert container_env({"WORLDTREE_RUN_ID": "x"}, facts())["WORLDTREE_RUN_ID"] == "x"


def test_plugin_entrypoint_and_settings():
    node = make_node(command="/bin/env", image=None, plugin={
        "image": BUSYBOX, "entrypoint": "/bin/env",
        "settings": {"username": "test", "token": "${TOKEN}", "deep": {"a": [1, "${TOKEN}"]}, "dry-run": True}})
    plan = plan_for(node, env={"TOKEN": "s3"})
    env = dict(item.split("=", 1) for item in plan.body["Env"])
    assert plan.body["Entrypoint"] == ["/bin/env"] and plan.body["Cmd"] == []
    assert env["PIPELINE_PLUGIN_SETTINGS_USERNAME"] == "test"
    assert env["PIPELINE_PLUGIN_SETTINGS_TOKEN"] == "s3"
    assert json.loads(env["PIPELINE_PLUGIN_SETTINGS_DEEP"]) == {"a": [1, "s3"]}
    assert env["PIPELINE_PLUGIN_SETTINGS_DRY_RUN"] == "true"


def test_plugin_default_entrypoint():
    plan = plan_for(make_node(image=None, plugin={"image": "x/y:1"}))
    assert plan.image == "x/y:1" and plan.body["Entrypoint"] == ["/pipeline/plugin/run"]


def test_language_image_and_script_come_from_config():
    node = make_node(command="console.log(1)", image=None, language={"name": "node", "version": "16"})
    plan = plan_for(node)
    assert plan.image == "node:16"
    assert plan.body["Entrypoint"] == ["node"] and plan.body["Cmd"] == ["/.worldtree/script/script.js"]
    assert plan.files == {"/.worldtree/script/script.js": b"console.log(1)"}
    custom = {**DEFAULTS, "languages": {"node": {"image": "my/node:{version}-slim", "command": ["n", "{script}"]}}}
    assert plan_for(node, config=custom).image == "my/node:16-slim"


def test_unknown_language_names_the_config_key():
    with pytest.raises(BackendError, match=r"language 'cobol'.*worldtree\.yaml"):
        plan_for(make_node(image=None, language={"name": "cobol", "version": "85"}))


def test_runner_sizes():
    assert runner_resources("large", DEFAULTS) == {"NanoCpus": 4_000_000_000, "Memory": 16 * 1024**3}
    assert runner_resources(None, DEFAULTS) == {}
    with pytest.raises(BackendError, match=r"runner 'huge'.*large"):
        runner_resources("huge", DEFAULTS)
    plan = plan_for(make_node(runner="small"))
    assert plan.body["HostConfig"]["NanoCpus"] == 1_000_000_000


@pytest.mark.parametrize(("text", "expected"), [("512Mi", 512 * 1024**2), ("1g", 1000**3), ("100", 100),
                                                ("1.5Gi", int(1.5 * 1024**3))])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


def test_parse_cpu_and_errors():
    assert parse_cpu("500m") == 500_000_000 and parse_cpu(2) == 2_000_000_000
    with pytest.raises(BackendError):
        parse_cpu("lots")
    with pytest.raises(BackendError):
        parse_memory("12 bananas")


def test_registry_auth():
    assert registry_auth(Target(kind="docker", image="x")) is None
    auth = registry_auth(Target(kind="docker", image="r.io/x", image_registry="r.io",
                                image_registry_username="u", image_registry_password="p"))
    assert auth == {"username": "u", "password": "p", "serveraddress": "r.io"}


def test_no_image_is_a_clear_error():
    with pytest.raises(BackendError, match="names no `image`"):
        plan_for(make_node(image=None))


def test_run_network_alias():
    plan = plan_for(make_node(name="Build App"), network="wt-r1")
    assert plan.body["HostConfig"]["NetworkMode"] == "wt-r1"
    assert plan.body["NetworkingConfig"]["EndpointsConfig"]["wt-r1"]["Aliases"] == ["build-app"]


def test_expand_and_names():
    assert expand("a${X}b${NOPE}c$Y", {"X": "1", "Y": "2"}) == "a1bc$Y"
    assert plugin_settings_env({"n": None, "i": 3}, {}) == {"PIPELINE_PLUGIN_SETTINGS_N": "",
                                                            "PIPELINE_PLUGIN_SETTINGS_I": "3"}
    assert container_name("Run 1", "build/compile", 2, "precheck", "ab12") == "wt-run-1-build-compile-2-precheck-ab12"


def test_precheck_of_a_plugin_step_is_a_shell_command():
    node = make_node(image=None, plugin={"image": BUSYBOX, "entrypoint": "/bin/env"})
    ctx = make_ctx("/runs/r1", [node])  # type: ignore[arg-type]
    req = request(node, ctx, workdir="/runs/r1", purpose="precheck")
    req.command = "test -f done"
    body = step_container(req, facts(), name="n").body
    assert body["Entrypoint"] == ["sh"] and body["Cmd"] == ["-e", "-c", "test -f done"]


@pytest.mark.parametrize(("shell", "cmd"), [
    ("sh", ["-e", "-c", "x"]), ("bash -eo pipefail", ["-eo", "pipefail", "-c", "x"]), ("python3", ["-c", "x"])])
def test_command_is_the_step_command_of_every_backend(shell: str, cmd: list[str]) -> None:
    body = plan_for(make_node("n", "x", shell=shell)).body
    assert [*body["Entrypoint"], *body["Cmd"]] == [shell.split()[0], *cmd]


def test_plugin_command_and_service_variables() -> None:
    plugin = make_node("p", "make it", image=None, plugin={"image": BUSYBOX, "entrypoint": "/bin/env"})
    env = dict(e.split("=", 1) for e in plan_for(plugin).body["Env"])
    assert env["PIPELINE_PLUGIN_COMMAND"] == "bWFrZSBpdA=="  # base64 of "make it"
    bare = make_node("p", "/pipeline/plugin/run", image=None, plugin={"image": BUSYBOX})
    env = dict(e.split("=", 1) for e in plan_for(bare).body["Env"])
    assert env["PIPELINE_PLUGIN_COMMAND"] == ""  # no command: the entrypoint is not one
    assert service_env({"type": "docker-compose", "name": "db", "version": 3}) == {
        "PIPELINE_SERVICE_TYPE": "docker-compose", "PIPELINE_SERVICE_NAME": "db", "PIPELINE_SERVICE_VERSION": "3"}
