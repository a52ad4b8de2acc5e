"""The docker-compose subset worldtree brings up itself (seed 003 §7.1). Pure: parse and convert.

Why not a compose library: the maintained implementations are the Go ``docker compose`` plugin
(a binary; the backend must not shell out) and the unmaintained Python ``docker-compose`` v1.
The common subset is small, so we implement it on the Engine API:

``image``, ``environment`` (map or ``K=V`` list), ``command``, ``entrypoint`` (string or
list), ``working_dir``, ``ports`` (short ``[ip:][host:]container[/proto]`` and long syntax),
``healthcheck`` (``test`` as ``CMD``/``CMD-SHELL``/string, ``interval``, ``timeout``,
``retries``, ``start_period``, ``disable``), ``depends_on`` (list, or map with
``condition: service_started | service_healthy``). Other keys are reported as warnings and
ignored. ``${VAR}`` is interpolated from the step environment, as compose does from its own.

Health checks are run by worldtree (an ``exec`` of the test in the container), not by the
engine: Podman runs engine health checks through systemd timers, which many hosts lack.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from worldtree.backends.docker.convert import LABEL_NODE, LABEL_ROLE, LABEL_RUN
from worldtree.errors import BackendError
from worldtree.model.durations import parse_duration
from worldtree.model.graph import slug
from worldtree.model.refs import NAME

LABEL_SERVICE = "worldtree.service"
LABEL_VERSION = "worldtree.service.version"
LABEL_KEEP = "worldtree.service.keep"
SUPPORTED = {"image", "environment", "command", "entrypoint", "working_dir", "ports", "healthcheck",
             "depends_on", "container_name", "restart"}


@dataclass(frozen=True)
class HealthCheck:
    test: list[str]  # argv to exec in the container; exit 0 = healthy
    interval: float | None = None  # None: not declared
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Port:
    container: int
    protocol: str = "tcp"
    host: str = ""  # "" = any free port
    host_ip: str = ""


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str
    environment: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    working_dir: str | None = None
    ports: list[Port] = field(default_factory=list)
    healthcheck: HealthCheck | None = None
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition


@dataclass(frozen=True)
class ComposeProject:
    services: list[ComposeService]  # in start order (dependencies first)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Deployment:
    """Who owns a set of service containers: one run, or (``keep``) a named, versioned deployment."""

    name: str
    version: str
    keep: bool
    run_id: str
    node_id: str
    #: variables every container of the deployment gets beneath its own ``environment``
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def network(self) -> str | None:
        """Kept deployments own a network; run-scoped services join the run's network."""
        return f"wt-svc-{slug(self.name)}" if self.keep else None

    def container_name(self, service: str) -> str:
        if self.keep:
            return f"wt-svc-{slug(self.name)}-{slug(service)}"
        return f"wt-{slug(self.run_id)[:16]}-svc-{slug(self.name)}-{slug(service)}"

    def labels(self) -> dict[str, str]:
        out = {LABEL_SERVICE: self.name, LABEL_VERSION: self.version, LABEL_ROLE: "service"}
        if self.keep:
            out[LABEL_KEEP] = "true"
        else:
            out[LABEL_RUN] = self.run_id
            out[LABEL_NODE] = self.node_id
        return out


#: compose's forms around the one variable-name grammar (:mod:`worldtree.model.refs`)
_INTERPOLATION = re.compile(rf"\$(?:(\$)|\{{({NAME})(?:(:?-)([^}}]*))?\}}|({NAME}))")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: ``$$`` is ``$``; ``${VAR}``, ``$VAR``, ``${VAR:-default}``, ``${VAR-default}``."""

    def one(match: re.Match[str]) -> str:
        escaped, name, op, default, bare = match.groups()
        if escaped:
            return "$"
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    return _INTERPOLATION.sub(one, text)


def _argv(value: Any, env: Mapping[str, str], where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(expand(value, env))
    if isinstance(value, list):
        return [expand(str(v), env) for v in value]
    raise BackendError(f"{where} must be a string or a list")


def _environment(value: Any, env: Mapping[str, str], where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        pairs = [str(item).split("=", 1) for item in value]
        return {p[0]: expand(p[1], env) if len(p) > 1 else env.get(p[0], "") for p in pairs}
    if isinstance(value, dict):
        return {str(k): "" if v is None else expand(str(v).lower() if isinstance(v, bool) else str(v), env)
                for k, v in value.items()}
    raise BackendError(f"{where}.environment must be a mapping or a list of NAME=value")


def _port(value: Any, where: str) -> Port:
    if isinstance(value, dict):
        if "target" not in value:
            raise BackendError(f"{where}: a long-syntax port needs `target`")
        return Port(container=int(value["target"]), protocol=str(value.get("protocol", "tcp")),
                    host=str(value.get("published", "") or ""), host_ip=str(value.get("host_ip", "") or ""))
    text = str(value)
    text, _, proto = text.partition("/")
    parts = text.rsplit(":", 2)
    try:
        container = int(parts[-1])
    except ValueError:
        raise BackendError(
            f"{where}: port {value!r} must look like 8080:80, 127.0.0.1:8080:80 or 80") from None
    host = parts[-2] if len(parts) >= 2 else ""
    host_ip = parts[0] if len(parts) == 3 else ""
    return Port(container=container, protocol=proto or "tcp", host=host, host_ip=host_ip)


def _seconds(value: Any, default: float, where: str) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BackendError(f"{where}: {exc}") from None


def _healthcheck(value: Any, where: str) -> HealthCheck | None:
    if not value or value.get("disable"):
        return None
    test = value.get("test")
    if isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    elif isinstance(test, list) and test and test[0] == "CMD":
        argv = [str(t) for t in test[1:]]
    elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(str(t) for t in test[1:])]
    elif isinstance(test, list) and test and test[0] == "NONE":
        return None
    else:
        raise BackendError(f"{where}.healthcheck.test must be a string or [CMD, ...] / [CMD-SHELL, ...]")
    interval = value.get("interval")
    return HealthCheck(test=argv, interval=None if interval is None else _seconds(interval, 0.0, where),
                       timeout=_seconds(value.get("timeout"), 30.0, where),
                       retries=int(value.get("retries", 3)),
                       start_period=_seconds(value.get("start_period"), 0.0, where))


def _depends_on(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(v): "service_started" for v in value}
    if isinstance(value, dict):
        return {str(k): str((v or {}).get("condition", "service_started")) for k, v in value.items()}
    raise BackendError(f"{where}.depends_on must be a list or a mapping")


def parse_compose(config: str | Mapping[str, Any], env: Mapping[str, str]) -> ComposeProject:
    """Parse a compose document (YAML text or mapping) into services in start order."""
    data: Any = config
    if isinstance(config, str):
        try:
            data = yaml.safe_load(config)
        except yaml.YAMLError as exc:
            raise BackendError(f"service config is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("services"), Mapping) or not data["services"]:
        raise BackendError("service config needs a `services:` mapping with at least one service")
    warnings = [f"compose key `{k}` is ignored by worldtree"
                for k in data if k not in {"version", "services", "name"}]
    services: dict[str, ComposeService] = {}
    for name, spec in data["services"].items():
        where = f"services.{name}"
        if not isinstance(spec, Mapping) or not spec.get("image"):
            raise BackendError(f"{where} needs an `image` (worldtree does not build images)")
        warnings += [f"{where}.{k} is ignored by worldtree" for k in spec if k not in SUPPORTED]
        services[str(name)] = ComposeService(
            name=str(name), image=expand(str(spec["image"]), env),
            environment=_environment(spec.get("environment"), env, where),
            command=_argv(spec.get("command"), env, f"{where}.command"),
            entrypoint=_argv(spec.get("entrypoint"), env, f"{where}.entrypoint"),
            working_dir=spec.get("working_dir"),
            ports=[_port(p, f"{where}.ports") for p in spec.get("ports") or []],
            healthcheck=_healthcheck(spec.get("healthcheck"), where),
            depends_on=_depends_on(spec.get("depends_on"), where))
    return ComposeProject(services=start_order(services), warnings=warnings)


def start_order(services: Mapping[str, ComposeService]) -> list[ComposeService]:
    """Dependencies first (stable: file order otherwise); unknown or cyclic ``depends_on`` raise."""
    order: list[ComposeService] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise BackendError(f"services depend on each other in a cycle: {' -> '.join((*trail, name))}")
        state[name] = "visiting"
        for dep in services[name].depends_on:
            if dep not in services:
                raise BackendError(f"services.{name}.depends_on names {dep!r}, which is not a service")
            visit(dep, (*trail, name))
        state[name] = "done"
        order.append(services[name])

    for name in services:
        visit(name, ())
    return order


def service_container(svc: ComposeService, deployment: Deployment,
                      network: str) -> tuple[str, dict[str, Any]]:
    """``(name, create body)`` of one service container on ``network``, reachable as ``svc.name``."""
    exposed: dict[str, dict[str, Any]] = {f"{p.container}/{p.protocol}": {} for p in svc.ports}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in svc.ports:
        binding = {"HostIp": p.host_ip, "HostPort": p.host}
        bindings.setdefault(f"{p.container}/{p.protocol}", []).append(binding)
    body: dict[str, Any] = {
        "Image": svc.image,
        "Env": [f"{k}={v}" for k, v in {**deployment.env, **svc.environment}.items()],
        "Labels": {**deployment.labels(), "worldtree.compose.service": svc.name},
        "ExposedPorts": exposed,
        "HostConfig": {"NetworkMode": network, "PortBindings": bindings, "Init": True},
        "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [svc.name]}}},
    }
    if svc.command is not None:
        body["Cmd"] = svc.command
    if svc.entrypoint is not None:
        body["Entrypoint"] = svc.entrypoint
    if svc.working_dir:
        body["WorkingDir"] = svc.working_dir
    return deployment.container_name(svc.name), body
