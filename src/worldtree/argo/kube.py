"""Create, watch and stop Argo Workflows through the Kubernetes API (the ``kubernetes`` client).

Argo's resources are custom objects (``argoproj.io/v1alpha1``, plurals ``workflows`` and
``cronworkflows``). :meth:`ArgoClient.follow` reads the Workflow once, then watches it by name
from that ``resourceVersion`` (re-reading it when the watch times out or the version is gone,
HTTP 410) until its phase is final or the deadline passes. Stopping is a merge patch of
``spec.shutdown: Stop``: Argo stops running pods, schedules nothing new and still runs exit
handlers. The client is imported only here, so exporting needs no Kubernetes libraries loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worldtree.errors import BackendError, UsageError

__all__ = ["FINAL_PHASES", "GROUP", "VERSION", "ArgoClient", "PhaseTracker"]

GROUP = "argoproj.io"
VERSION = "v1alpha1"
FINAL_PHASES = ("Succeeded", "Failed", "Error")
PLURALS = {"Workflow": "workflows", "CronWorkflow": "cronworkflows"}
#: Longest single watch request; the watch is renewed until the overall deadline.
WATCH_SECONDS = 60


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


class ArgoClient:
    """One cluster, from a kubeconfig file (its current context unless ``context`` names one)."""

    def __init__(self, kubeconfig: str, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except (ConfigException, OSError, ValueError) as exc:
            raise UsageError(f"{kubeconfig}: cannot use this kubeconfig: {exc}") from None
        ctx = (active or {}).get("context") or {}
        self.default_namespace = str(ctx.get("namespace") or "default")
        self.api = client.CustomObjectsApi(self.api_client)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            reason = exc.reason or ""
            try:
                import json

                reason = json.loads(exc.body or "{}").get("message") or reason
            except ValueError:
                pass
            raise BackendError(f"Kubernetes API: {what}: HTTP {exc.status}: {reason}") from None
        except HTTPError as exc:
            raise BackendError(f"Kubernetes API: {what}: {exc}; is the cluster in the kubeconfig reachable?") from None

    def create(self, manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
        plural = PLURALS[manifest["kind"]]
        return dict(self._call(f"create {manifest['kind']}", self.api.create_namespaced_custom_object,
                               GROUP, VERSION, namespace, plural, manifest))

    def get(self, name: str, namespace: str, kind: str = "Workflow") -> dict[str, Any]:
        return dict(self._call(f"get {kind} {name}", self.api.get_namespaced_custom_object,
                               GROUP, VERSION, namespace, PLURALS[kind], name))

    def stop(self, name: str, namespace: str) -> dict[str, Any]:
        """Ask Argo to stop the Workflow (``spec.shutdown: Stop``, a JSON merge patch)."""
        return dict(self._call(f"stop Workflow {name}", self.api.patch_namespaced_custom_object,
                               GROUP, VERSION, namespace, "workflows", name, {"spec": {"shutdown": "Stop"}}))

    def follow(self, name: str, namespace: str, report: Callable[[dict[str, Any]], None],
               timeout: float) -> dict[str, Any]:
        """Watch the Workflow until its phase is final; ``report`` sees every version. Returns the last."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        obj = self.get(name, namespace)
        report(obj)
        while _phase(obj) not in FINAL_PHASES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BackendError(f"Workflow {name} is still {_phase(obj)} after {timeout:g} s of watching; "
                                   "it goes on in the cluster")
            w = watch.Watch()
            version = (obj.get("metadata") or {}).get("resourceVersion")
            try:
                for event in w.stream(self.api.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                      "workflows", field_selector=f"metadata.name={name}",
                                      resource_version=version, timeout_seconds=max(1, int(min(WATCH_SECONDS,
                                                                                                remaining)))):
                    kind, item = event.get("type"), event.get("object")
                    if kind == "DELETED":
                        raise BackendError(f"Workflow {name} was deleted while being watched")
                    if kind == "ERROR":  # e.g. 410 Gone: our version is too old; read it again below
                        obj = self.get(name, namespace)
                        report(obj)
                        w.stop()
                        break
                    if kind in ("ADDED", "MODIFIED") and isinstance(item, dict):
                        obj = item
                        report(obj)
                        if _phase(obj) in FINAL_PHASES:
                            w.stop()
                            break
            except ApiException as exc:
                if exc.status != 410:
                    raise BackendError(f"Kubernetes API: watch Workflow {name}: HTTP {exc.status}: "
                                       f"{exc.reason}") from None
                obj = self.get(name, namespace)  # our version is too old: start again from now
                report(obj)
            except BackendError:
                raise
            except Exception as exc:  # urllib3 read timeouts and dropped connections: read again
                if time.monotonic() >= deadline:
                    raise BackendError(f"Kubernetes API: watch Workflow {name}: {exc}") from None
                time.sleep(0.5)
                obj = self.get(name, namespace)
                report(obj)
        return obj


class PhaseTracker:
    """Turns successive Workflow versions into lines: the workflow's phase and each node's, when they change."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.workflow_phase: str | None = None
        self.nodes: dict[str, str] = {}

    def __call__(self, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name", "?")
        status = obj.get("status") or {}
        nodes = status.get("nodes") or {}
        for node_id, node in sorted(nodes.items(), key=lambda kv: (str(kv[1].get("startedAt") or ""), kv[0])):
            if node_id == name or not isinstance(node, dict):  # the workflow's own root node
                continue
            phase = str(node.get("phase") or "Pending")
            if self.nodes.get(node_id) != phase:
                self.nodes[node_id] = phase
                message = node.get("message")
                label = node.get("displayName") or node.get("name") or node_id
                self.echo(f"{label}: {phase}" + (f" ({message})" if message and phase != "Succeeded" else ""))
        phase = _phase(obj)
        if phase != self.workflow_phase:
            self.workflow_phase = phase
            message = status.get("message")
            self.echo(f"workflow {name}: {phase}" + (f" ({message})" if message else ""))
