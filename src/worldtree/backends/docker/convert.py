"""StepRequest + run facts -> the body of ``POST /containers/create``. Pure: no daemon, no clock.

One function per concern (image, environment, command, resources, mounts), composed by
:func:`step_container`. Every container and network worldtree creates carries
``worldtree.run_id`` so that ``close()`` can find what a run left, even after a crash.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from worldtree.backends.base import StepRequest
from worldtree.backends.command import StepCommand
from worldtree.errors import BackendError
from worldtree.model.graph import Node, Target, slug
from worldtree.model.refs import expand, expand_required

LABEL_RUN = "worldtree.run_id"
LABEL_NODE = "worldtree.node"
LABEL_ROLE = "worldtree.role"  # step | service
DEFAULT_PLUGIN_ENTRYPOINT = "/pipeline/plugin/run"
SCRIPT_DIR = "/.worldtree/script"
RUN_ID_VAR = "WORLDTREE_RUN_ID"


@dataclass(frozen=True)
class RunFacts:
    """What a conversion needs to know about the run besides the request itself."""

    run_id: str
    workdir: str
    config: Mapping[str, Any]
    allow_env: list[str] = field(default_factory=list)
    allow_all_env: bool = False
    host_env: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None  # the run's network when it has services; else the engine's default


@dataclass(frozen=True)
class ContainerPlan:
    """One container to create: the API body, files to copy in before start, pull credentials."""

    image: str
    name: str
    body: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    auth: dict[str, str] | None = None


# --- image ---------------------------------------------------------------------------------

def step_image(node: Node, config: Mapping[str, Any]) -> str:
    """The image a docker node runs in: plugin image, language image, own/inherited ``image``."""
    target = node.target
    if target.plugin:
        image = target.plugin.get("image")
        if not image:
            raise BackendError(f"step {node.path}: `plugin` needs an `image`")
        return str(image)
    if target.language:
        return language_entry(target.language, config)[0]
    if target.image:
        return target.image
    default = (config.get("docker") or {}).get("default_image")
    if default:
        return str(default)
    raise BackendError(f"step {node.path} runs on docker but names no `image` (set one on the step, "
                       "its job, stage or pipeline)")


def language_entry(language: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(image, entry)`` for a ``language: {name, version}`` from the config's ``languages`` map."""
    name = str(language.get("name", ""))
    version = str(language.get("version", "latest"))
    table = config.get("languages") or {}
    entry = table.get(name)
    if not isinstance(entry, Mapping) or not entry.get("image"):
        known = ", ".join(sorted(table)) or "none"
        raise BackendError(f"language {name!r} has no image configured (known: {known}); "
                           "add it under `languages:` in worldtree.yaml")
    return str(entry["image"]).format(name=name, version=version), dict(entry)


def registry_auth(target: Target, env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """X-Registry-Auth for a pull, from ``image_registry*``; None when no credentials are given.

    ``${NAME}`` is expanded from the step environment ``env`` (where a job's ``secrets:`` arrive,
    masked), so a password need not be written, and stored, in clear text.
    """
    if not target.image_registry_username and not target.image_registry_password:
        return None
    env = env or {}
    auth = {"username": expand_required(target.image_registry_username or "", env, "`image_registry_username`"),
            "password": expand_required(target.image_registry_password or "", env, "`image_registry_password`")}
    if target.image_registry:
        auth["serveraddress"] = expand_required(target.image_registry, env, "`image_registry`")
    return auth


# --- environment ---------------------------------------------------------------------------

def _expand_deep(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return expand(value, env)
    if isinstance(value, list):
        return [_expand_deep(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand_deep(v, env) for k, v in value.items()}
    return value


def plugin_settings_env(settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Seed 003 §5.2: ``{key: value}`` -> ``PIPELINE_PLUGIN_SETTINGS_KEY=value``.

    Keys are upper-cased (other characters than letters and digits become ``_``); strings get
    ``${VAR}`` expansion from the step environment; booleans are ``true``/``false``; lists and
    mappings are JSON (expanded inside first); ``null`` is empty.
    """
    out: dict[str, str] = {}
    for key, value in settings.items():
        name = "PIPELINE_PLUGIN_SETTINGS_" + re.sub(r"[^A-Za-z0-9]", "_", str(key)).upper()
        expanded = _expand_deep(value, env)
        if expanded is None:
            text = ""
        elif isinstance(expanded, bool):
            text = "true" if expanded else "false"
        elif isinstance(expanded, dict | list):
            text = json.dumps(expanded, separators=(",", ":"))
        else:
            text = str(expanded)
        out[name] = text
    return out


def plugin_command_env(node: Node) -> dict[str, str]:
    """``PIPELINE_PLUGIN_COMMAND``: the step's ``command``, base64 (plugins written for the seed
    003 tool read it). Empty when the step has none: the compiler then puts the plugin's
    entrypoint in ``node.command``, which is not the user's command."""
    plugin = node.target.plugin or {}
    entry = str(plugin.get("entrypoint") or DEFAULT_PLUGIN_ENTRYPOINT)
    command = "" if node.command == entry else node.command
    return {"PIPELINE_PLUGIN_COMMAND": base64.b64encode(command.encode()).decode()}


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """``PIPELINE_SERVICE_TYPE``/``_NAME``/``_VERSION`` of a service step (seed 003 §7): for
    interpolation in its compose file and in every container it starts."""
    return {"PIPELINE_SERVICE_TYPE": str(service.get("type") or "docker-compose"),
            "PIPELINE_SERVICE_NAME": str(service.get("name") or ""),
            "PIPELINE_SERVICE_VERSION": str(service.get("version") or "latest")}


def container_env(req_env: Mapping[str, str], facts: RunFacts) -> dict[str, str]:
    """Seed 003 §15.2: the pipeline's environment only, plus host variables ``allow-env`` lets
    through (names or globs; ``allow-all-env`` for all). The pipeline's values win. The run id
    is always present so the nested-pipeline guard (§15.1) works inside containers too."""
    env: dict[str, str] = {}
    if facts.allow_all_env:
        env.update(facts.host_env)
    elif facts.allow_env:
        for name, value in facts.host_env.items():
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in facts.allow_env):
                env[name] = value
    env.update(req_env)
    env.setdefault(RUN_ID_VAR, facts.run_id)
    return env


# --- resources, mounts, labels -------------------------------------------------------------

_MEM_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
              "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
              "kb": 1024, "mb": 1024**2, "gb": 1024**3, "b": 1}


def parse_memory(value: Any) -> int:
    """``16Gi``/``512Mi`` (Kubernetes), ``1g``/``512m`` (Docker) or bytes -> bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _MEM_UNITS:
        raise BackendError(f"memory {value!r} is not a quantity like 512Mi, 16Gi or 1g")
    return int(float(match.group(1)) * _MEM_UNITS[unit])


def parse_cpu(value: Any) -> int:
    """``4``/``0.5``/``500m`` CPUs -> Docker NanoCpus."""
    text = str(value).strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise BackendError(f"cpu {value!r} is not a quantity like 2, 0.5 or 500m") from None
    return int(cores * 1_000_000_000)


def runner_resources(runner: str | None, config: Mapping[str, Any]) -> dict[str, int]:
    """HostConfig limits for ``runner`` from the config's ``runners`` size map (seed 002)."""
    if not runner:
        return {}
    sizes = config.get("runners") or {}
    size = sizes.get(runner)
    if not isinstance(size, Mapping):
        known = ", ".join(sorted(sizes)) or "none"
        raise BackendError(f"runner {runner!r} is not a configured size (known: {known}); "
                           "add it under `runners:` in worldtree.yaml")
    out: dict[str, int] = {}
    if size.get("cpu") is not None:
        out["NanoCpus"] = parse_cpu(size["cpu"])
    if size.get("memory") is not None:
        out["Memory"] = parse_memory(size["memory"])
    return out


def binds(run_workdir: str, step_workdir: str) -> list[str]:
    """The run's workdir at the same path in every container (files pass between steps and jobs);
    a step workdir outside it is mounted too."""
    out = [f"{run_workdir}:{run_workdir}"]
    inside = PurePosixPath(step_workdir).is_relative_to(PurePosixPath(run_workdir))
    if not inside:
        out.append(f"{step_workdir}:{step_workdir}")
    return out


def labels(run_id: str, node_id: str, role: str) -> dict[str, str]:
    return {LABEL_RUN: run_id, LABEL_NODE: node_id, LABEL_ROLE: role}


def container_name(run_id: str, node_id: str, try_number: int, purpose: str, suffix: str) -> str:
    """Readable and unique: ``wt-<run>-<node>-<try>[-<purpose>]-<suffix>``."""
    tail = "" if purpose == "run" else f"-{purpose}"
    return f"wt-{slug(run_id)[:16]}-{slug(node_id)[:60]}-{try_number}{tail}-{suffix}"


# --- the container -------------------------------------------------------------------------

def step_command(req: StepRequest,
                 config: Mapping[str, Any]) -> tuple[list[str], list[str], dict[str, bytes]]:
    """``(entrypoint, cmd, files)``: plugin entrypoint, language script, or the step's
    :class:`~worldtree.backends.command.StepCommand` (``sh -e -c``, as on every backend)."""
    target = req.node.target
    if target.plugin and req.purpose == "run":
        entrypoint = str(target.plugin.get("entrypoint") or DEFAULT_PLUGIN_ENTRYPOINT)
        return shlex.split(entrypoint), [], {}
    if target.language and req.purpose == "run":
        _, entry = language_entry(target.language, config)
        script = f"{SCRIPT_DIR}/{PurePosixPath(str(entry.get('file') or 'script')).name}"
        argv = [str(a).replace("{script}", script) for a in entry.get("command") or ["{script}"]]
        return argv[:1], argv[1:], {script: req.command.encode()}
    argv = StepCommand(req.node.shell, req.command).argv()
    return argv[:1], argv[1:], {}


def step_container(req: StepRequest, facts: RunFacts, *, name: str) -> ContainerPlan:
    """The container that runs ``req``: see the module docstring."""
    node = req.node
    image = step_image(node, facts.config)
    env = container_env(req.env, facts)
    if node.target.plugin and req.purpose == "run":
        env.update(plugin_settings_env(node.target.plugin.get("settings") or {}, env))
        env.update(plugin_command_env(node))
    entrypoint, cmd, files = step_command(req, facts.config)
    host_config: dict[str, Any] = {
        "Binds": binds(facts.workdir, req.workdir),
        "Init": bool((facts.config.get("docker") or {}).get("init", True)),
        **runner_resources(node.target.runner, facts.config),
    }
    body: dict[str, Any] = {
        "Image": image,
        "Entrypoint": entrypoint,
        "Cmd": cmd,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": req.workdir,
        "Labels": labels(facts.run_id, node.id, "step"),
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "OpenStdin": False,
        "HostConfig": host_config,
    }
    if facts.network:
        host_config["NetworkMode"] = facts.network
        body["NetworkingConfig"] = {"EndpointsConfig": {facts.network: {"Aliases": [slug(node.name)]}}}
    return ContainerPlan(image=image, name=name, body=body, files=files, auth=registry_auth(node.target, req.env))
